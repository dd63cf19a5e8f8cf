"""The VCF reader: headers of the corpus files, and bad input rejected with the line it is on (or skipped and
counted in lenient mode). Expected line numbers are found in the inputs, not typed in."""

from __future__ import annotations

import gzip

import pytest

from mappers.exceptions import ParseError, UnsupportedMessage
from mappers.vcf import Options, iter_lines, read_header, to_fhir
from mappers.vcf.bgzf import EOF_BLOCK
from mappers.vcf.parse import structured
from tests.mappers.vcf.facts import corpus_vcfs, read_text, vcf_file

HEAD = ("##fileformat=VCFv4.2\n##reference=GRCh38\n##contig=<ID=chr1,length=248956422>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n")
GOOD = "chr1\t100\t.\tA\tG\t50\tPASS\t.\tGT:AD:DP\t0/1:5,6:11\t1/1:0,9:9\n"


def line_of(text: str, needle: str) -> str:
    """'line N' of the first line containing `needle`."""
    return f"line {next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)}"


@pytest.mark.parametrize("name", corpus_vcfs())
def test_corpus_headers(name: str) -> None:
    path = vcf_file(name)
    text = read_text(path)
    header = read_header(iter_lines([path.read_bytes()]), None)
    chrom_line = next(line for line in text.splitlines() if line.startswith("#CHROM"))
    assert header.samples == tuple(chrom_line.split("\t")[9:])
    assert header.sample == header.samples[0]
    assert header.chrom_line == text.splitlines().index(chrom_line) + 1
    assert header.version == text.splitlines()[0].removeprefix("##fileformat=VCFv")
    assert len(header.contigs) == text.count("\n##contig=")


@pytest.mark.parametrize(("name", "assembly"), [
    ("HG00404_b37.vcf", "GRCh37"),  # ##reference=…/build37.fa.bz2
    ("HG00403A.vcf.gz", "GRCh37"),  # ##contig assembly=B37
    ("vcf_structural_variants.vcf", "GRCh38"),  # ##reference= is empty; the contig lengths are GRCh38's
    ("NB6TK328_filtered.vcf", "GRCh38"),
    ("vcf_example4.vcf", None),  # nothing in the header says
])
def test_assembly_from_the_header(name: str, assembly: str | None) -> None:
    assert read_header(iter_lines([vcf_file(name).read_bytes()]), None).assembly == assembly


def test_structured_meta_values_keep_quoted_commas() -> None:
    assert structured('<ID=AD,Number=R,Type=Integer,Description="ref, then alt">') == {
        "ID": "AD", "Number": "R", "Type": "Integer", "Description": "ref, then alt"}


def test_crlf_gzip_and_chunks_of_any_size_read_the_same() -> None:
    text = HEAD + GOOD + GOOD.replace("\t100\t", "\t200\t")
    plain = to_fhir(text.encode()).bundle
    crlf = text.replace("\n", "\r\n").encode()
    gz = gzip.compress(text.encode())
    for data in (crlf, gz, gz + EOF_BLOCK):
        assert to_fhir(data).bundle == plain
    pieces = [gz[i:i + 7] for i in range(0, len(gz), 7)]
    assert to_fhir(pieces).bundle == plain


def test_second_sample_by_name() -> None:
    conv = to_fhir((HEAD + GOOD).encode(), Options(sample="S2"))
    obs = next(e["resource"] for e in conv.bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    gt = next(c["valueString"] for c in obs["component"] if c["code"]["coding"][0]["code"] == "FORMAT/GT")
    assert gt == "1/1"


BAD = [
    # (what, text, needle locating the bad line, details, message fragment)
    ("not a VCF", "##fileformat=BED\n" + GOOD, "fileformat", "vcf-not-vcf", "not a VCF file"),
    ("truncated header", HEAD.rsplit("#CHROM", 1)[0], None, "vcf-truncated", "without a #CHROM line"),
    ("space separated header", HEAD.replace("#CHROM\tPOS", "#CHROM POS") + GOOD, "#CHROM", "vcf-bad-columns",
     "#CHROM line must start"),
    ("record before header", "##fileformat=VCFv4.2\n" + GOOD, "chr1\t100", "vcf-no-chrom-line", "before the #CHROM"),
    ("too few columns", HEAD + GOOD + "chr1\t300\t.\tA\tG\t50\tPASS\t.\tGT:AD:DP\t0/1\n", "\t300\t",
     "vcf-wrong-columns", "has 10 columns but the #CHROM line declares 11"),
    ("truncated last line", HEAD + GOOD + "chr1\t300\t.\tA", "\t300\t", "vcf-wrong-columns", "has 4 columns"),
    ("REF '.'", HEAD + GOOD.replace("\tA\tG\t", "\t.\tG\t"), "chr1\t100", "vcf-bad-ref", "REF '.' is not"),
    ("END before POS", HEAD + GOOD.replace("\tA\tG\t50\tPASS\t.", "\tA\t<DEL>\t50\tPASS\tEND=99"), "END=99",
     "vcf-bad-end", "INFO END=99 is before POS 100"),
    ("unknown contig", HEAD + GOOD.replace("chr1", "chr2"), "chr2\t100", "vcf-unknown-contig", "contig 'chr2'"),
    ("bad POS", HEAD + GOOD.replace("\t100\t", "\t1e5\t"), "1e5", "vcf-bad-pos", "POS '1e5' is not an integer"),
    ("bad ALT", HEAD + GOOD.replace("\tA\tG\t", "\tA\tX!\t"), "X!", "vcf-bad-alt", "ALT allele 'X!'"),
    ("GT beyond ALT", HEAD + GOOD.replace("0/1:5,6:11", "0/3:5,6:11"), "0/3", "vcf-bad-gt", "names allele 3"),
    ("symbolic without END", HEAD + GOOD.replace("\tA\tG\t", "\tA\t<DEL>\t"), "<DEL>", "vcf-sv-without-end",
     "needs INFO END or SVLEN"),
    ("unknown sample", HEAD + GOOD, "#CHROM", "vcf-sample-not-found", "sample 'NOPE' is not in the VCF"),
]


@pytest.mark.parametrize(("what", "text", "needle", "details", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_line(what: str, text: str, needle: str | None, details: str, message: str) -> None:
    options = Options(sample="NOPE") if details == "vcf-sample-not-found" else Options()
    with pytest.raises(ParseError) as err:
        to_fhir(text.encode(), options)
    issue = err.value.issues[0]
    assert issue.details == details and message in issue.message, issue.message
    expected = line_of(text, needle) if needle else f"line {len(text.splitlines()) + 1}"
    assert issue.expression == expected


HEADER_ERRORS = {"vcf-not-vcf", "vcf-truncated", "vcf-bad-columns", "vcf-no-chrom-line", "vcf-sample-not-found"}
RECORD_ERRORS = [b for b in BAD if b[3] not in HEADER_ERRORS]


@pytest.mark.parametrize(("what", "text", "needle", "details", "message"), RECORD_ERRORS,
                         ids=[b[0] for b in RECORD_ERRORS])
def test_lenient_mode_skips_and_counts_a_bad_record(what: str, text: str, needle: str, details: str,
                                                    message: str) -> None:
    head, _, body = text.partition("\nchr")
    text = f"{head}\n{KEPT}chr{body}"  # a good record too: a file of only bad records is refused (below)
    conv = to_fhir(text.encode(), Options(lenient=True))
    assert conv.summary.skipped["invalid-record"] == 1
    warning = next(i for i in conv.issues if i.details == details)
    assert warning.expression == line_of(text, needle) and message in warning.message
    assert conv.summary.records == text.count("\nchr") + text.startswith("chr")
    assert conv.summary.variants >= 1


KEPT = "chr1\t7\t.\tC\tT\t50\tPASS\t.\tGT\t0/1\t0/1\n"


def test_lenient_mode_refuses_a_file_of_only_bad_records() -> None:
    with pytest.raises(UnsupportedMessage) as err:
        to_fhir((HEAD + GOOD.replace("\tA\tG\t", "\t.\tG\t")).encode(), Options(lenient=True))
    assert err.value.issues[0].details == "vcf-nothing-converted"
    assert "1 record malformed (skipped; the first: line 5: REF '.' is not" in err.value.issues[0].message


def test_truncated_gzip_is_an_error_and_lenient_keeps_what_was_read() -> None:
    text = HEAD + "".join(GOOD.replace("\t100\t", f"\t{100 + i}\t") for i in range(2000))
    gz = gzip.compress(text.encode())
    cut = gz[: len(gz) // 2]
    with pytest.raises(ParseError, match="truncated") as err:
        to_fhir(cut)
    assert err.value.issues[0].details == "vcf-truncated"
    conv = to_fhir(cut, Options(lenient=True))
    assert 0 < conv.summary.variants < 2000
    assert conv.summary.skipped["truncated-input"] == 1


def test_sites_only_vcf_is_unsupported() -> None:
    text = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t1\t.\tA\tG\t.\t.\t.\n"
    with pytest.raises(UnsupportedMessage, match="no sample columns"):
        to_fhir(text.encode())


def test_bad_options_are_named() -> None:
    with pytest.raises(ParseError, match="genomic_source 'mixed' must be one of germline, somatic"):
        Options(genomic_source="mixed")
