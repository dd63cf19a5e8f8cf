"""What common callers write, as a user expects it converted: tumour/normal pairs (sample roles from the header,
somatic calls without GT, allele fractions by each caller's documented rule), gVCF reference blocks of both
conventions, copy numbers of no-call records, END of sequence alleles, VCF versions, what was not mapped, and the
refusal of an input none of whose calls could be mapped. Inputs are authored here (data/ and inline)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mappers.exceptions import ParseError, UnsupportedMessage
from mappers.toolkit.bundle import bundle as toolkit_bundle
from mappers.toolkit.registry import ConvertOptions, get
from mappers.vcf import Converter, Options, iter_lines, ndjson, to_fhir
from mappers.vcf.context import MAPPER_VERSION
from mappers.vcf.unmapped import MAX_TRACKED
from tests.mappers.vcf.facts import DATA, location, resources, value, variants

SOMATIC, GERMLINE, HET = "LA6684-0", "LA6683-2", "LA6706-1"
HEAD = "##fileformat=VCFv4.2\n##reference=GRCh38\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{samples}\n"


def vcf(*records: str, samples: str = "S", head: str = HEAD) -> bytes:
    return (head.format(samples=samples) + "".join(r + "\n" for r in records)).encode()


def errors(validator: Any, bundle: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(i.expression, i.message) for i in validator.validate(bundle) if i.severity in ("error", "fatal")]


def details(conv: Any, code: str) -> list[Any]:
    return [i for i in conv.issues if i.details == code]


def not_mapped(conv: Any) -> dict[str, str]:
    return {i.expression: i.message for i in details(conv, "vcf-key-not-mapped") if i.expression}


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


# -- tumour/normal pairs ---------------------------------------------------------------------------------------


def test_mutect2_pair_converts_the_tumour_named_by_the_header(validator) -> None:  # type: ignore[no-untyped-def]
    """##tumor_sample/##normal_sample (Mutect2): the tumour is the second column; FORMAT AF is its allele
    fraction (0.243, not AD 25/DP 100); the weak_evidence record is filtered."""
    conv = to_fhir(data("mutect2-tumor-normal.vcf"))
    got = {location(o)[0] + 1: o for o in variants(conv.bundle)}
    assert sorted(got) == [55174772, 55191822]
    egfr = got[55191822]
    assert value(egfr, "81258-6") == pytest.approx(0.243) and value(egfr, "82121-5") == 25
    assert value(egfr, "48002-0") == SOMATIC and value(egfr, "53034-5") is None
    assert value(egfr, "FORMAT/GT") == "0/1"
    specimen = next(r for r in resources(conv.bundle) if r["resourceType"] == "Specimen")
    assert specimen["identifier"][0]["value"] == "PATIENT7_tumour"
    roles = [i.message for i in details(conv, "vcf-sample-role")]
    assert "sample PATIENT7_blood is the normal of a tumour/normal pair (##normal_sample=PATIENT7_blood); " \
           "not converted" in roles
    assert set(not_mapped(conv)) == {"INFO/DP", "INFO/TLOD", "FORMAT/F1R2"}
    assert errors(validator, conv.bundle) == []
    germline = to_fhir(data("mutect2-tumor-normal.vcf"), Options(genomic_source="germline"))
    assert {value(o, "48002-0") for o in variants(germline.bundle)} == {GERMLINE}


def test_the_normal_of_a_pair_with_genotypes_is_a_negative_report() -> None:
    """The normal column's calls are all 0/0: a valid report without variants, not a refusal."""
    conv = to_fhir(data("mutect2-tumor-normal.vcf"), Options(sample="PATIENT7_blood"))
    assert variants(conv.bundle) == [] and conv.summary.skipped["reference-genotype"] == 2


def test_strelka_indels_take_the_fraction_from_tier1_tir_and_tar(validator) -> None:  # type: ignore[no-untyped-def]
    """Strelka indels: TIR 10 / (TIR 10 + TAR 30) and 11 / (11 + 33), from the tier-1 values."""
    conv = to_fhir(data("strelka-somatic-indels.vcf"))
    got = {location(o)[2:]: o for o in variants(conv.bundle)}
    assert value(got[("CG", "C")], "81258-6") == 0.25 and value(got[("CG", "C")], "82121-5") == 10
    assert value(got[("A", "AT")], "81258-6") == 0.25 and value(got[("A", "AT")], "82121-5") == 11
    assert value(got[("A", "AT")], "FORMAT/DP") == 44
    unmapped = not_mapped(conv)
    assert "INFO/SOMATIC" not in unmapped
    assert [i.message for i in details(conv, "vcf-key-not-mapped") if i.expression == "INFO/QSI"] == [
        "INFO/QSI on 1 deletion record not mapped (first: line 14)",
        "INFO/QSI on 1 insertion record not mapped (first: line 15)"]
    assert "FORMAT/TOR" in unmapped and "FORMAT/TAR" not in unmapped
    assert errors(validator, conv.bundle) == []


@pytest.mark.parametrize(("meta", "samples", "tumour"), [
    ("##SAMPLE=<ID=NORMAL,SampleName=blood1>\n##SAMPLE=<ID=TUMOR,SampleName=biopsy1>\n", "blood1\tbiopsy1",
     "biopsy1"),  # Mutect2 before GATK 4.1
    ('##SAMPLE=<ID=Blood,Genomes=Germline,Mixture=1.,Description="Patient germline genome">\n'
     '##SAMPLE=<ID=TissueSample,Genomes=Germline;Tumor,Mixture=.3;.7,Description="tumour">\n',
     "Blood\tTissueSample", "TissueSample"),  # the VCF 4.1-4.3 specification's cancer example
    ("", "NORMAL\tTUMOR", "TUMOR"),  # Strelka
    ("", "Normal1\tNormal2", None),  # a cohort, not a pair: no tumour column
])
def test_sample_roles_from_the_header(meta: str, samples: str, tumour: str | None) -> None:
    head = HEAD.replace("#CHROM", meta + "#CHROM")
    conv = to_fhir(vcf("chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t0/1", samples=samples, head=head))
    specimen = next(r for r in resources(conv.bundle) if r["resourceType"] == "Specimen")
    assert specimen["identifier"][0]["value"] == (tumour or samples.split("\t")[0])
    assert value(variants(conv.bundle)[0], "48002-0") == (SOMATIC if tumour else None)


def test_calls_without_gt_and_without_roles_are_refused_saying_why() -> None:
    with pytest.raises(UnsupportedMessage) as err:
        to_fhir(vcf("chr1\t100\t.\tA\tG\t.\tPASS\t.\tDP\t30", "chr1\t200\t.\tC\tT\t.\tPASS\t.\tDP\t31"))
    issue = err.value.issues[0]
    assert issue.details == "vcf-nothing-converted" and issue.expression == "line 3"
    assert issue.message == ("no variant converted from 2 records: 2 records have no GT for sample S and the "
                             "header names no tumour/normal roles that would say whose calls they are")


def test_somatic_flag_gives_the_source_class_when_no_option_does() -> None:
    conv = to_fhir(vcf("chr1\t100\t.\tA\tG\t.\tPASS\tSOMATIC\tGT\t0/1", "chr1\t200\t.\tC\tT\t.\tPASS\t.\tGT\t0/1"))
    assert [value(o, "48002-0") for o in variants(conv.bundle)] == [SOMATIC, None]
    forced = to_fhir(vcf("chr1\t100\t.\tA\tG\t.\tPASS\tSOMATIC\tGT\t0/1"), Options(genomic_source="germline"))
    assert value(variants(forced.bundle)[0], "48002-0") == GERMLINE
    assert "INFO/SOMATIC" in not_mapped(forced)  # the record's claim is reported, not silently overridden


# -- gVCF, copy numbers, END -----------------------------------------------------------------------------------


def test_gvcf_reference_blocks_of_both_conventions() -> None:
    text = vcf("chr1\t1\t.\tN\t.\t0\tLowGQX\tEND=99\tGT:DP\t0/0:3",  # Illumina gvcftools / Isaac / DRAGEN
               "chr1\t100\t.\tA\t<NON_REF>\t.\t.\tEND=180\tGT:DP\t0/0:30",  # GATK
               "chr1\t181\t.\tC\tT,<NON_REF>\t50\tPASS\t.\tGT:AD:DP\t0/1:10,12,0:22",
               "chr1\t182\t.\tG\t<*>\t.\t.\tEND=220\tGT\t0/0",  # bcftools
               "chr1\t221\t.\tG\t.\t.\tPASS\t.\tGT\t0/0")
    conv = to_fhir(text)
    assert dict(conv.summary.skipped) == {"gvcf-reference-block": 3, "no-alt": 1}
    (obs,) = variants(conv.bundle)
    assert location(obs) == (180, 181, "C", "T")
    only_blocks = to_fhir(vcf("chr1\t1\t.\tN\t.\t0\tPASS\tEND=99\tGT\t0/0"))
    assert variants(only_blocks.bundle) == []  # a reference-only gVCF is a report without variants
    with pytest.raises(ParseError, match="INFO END=5 is before POS 10"):
        to_fhir(vcf("chr1\t10\t.\tN\t.\t0\tPASS\tEND=5\tGT\t0/0"))


def test_copy_number_of_no_call_records_is_kept(validator) -> None:  # type: ignore[no-untyped-def]
    text = vcf("chr1\t1000\t.\tN\t<CN0>,<CN3>\t.\tPASS\tEND=5000\tGT:CN\t./.:3",
               "chr1\t9000\t.\tN\t<DEL>\t.\tPASS\tSVLEN=-400\tCN\t1",  # no GT at all, a copy number
               "chr1\t20000\t.\tN\t<INV>\t.\tPASS\tEND=21000\tGT:CN\t./.:2",  # an inversion is not a copy number
               "chr1\t30000\t.\tN\t<DUP>\t.\tPASS\tEND=31000\tGT\t./.")  # no call and no copy number
    conv = to_fhir(text)
    got = {location_of(o): o for o in variants(conv.bundle)}
    assert sorted(got) == [(999, 5000), (8999, 9400)]
    for obs, copies in ((got[(999, 5000)], 3), (got[(8999, 9400)], 1)):
        assert value(obs, "48019-4") == "SO:0001019" and value(obs, "82155-3") == copies
    assert value(got[(999, 5000)], "ALT") == "<CN0>,<CN3>"
    assert dict(conv.summary.skipped) == {"no-call": 2}
    assert conv.summary.copy_number_calls == 2
    assert errors(validator, conv.bundle) == []


def location_of(obs: dict[str, Any]) -> tuple[int, int]:
    return value(obs, "81302-2")  # type: ignore[return-value]


def test_end_of_a_sequence_allele_is_set_aside_with_a_warning() -> None:
    conv = to_fhir(vcf("chr1\t100\t.\tACG\tA\t.\tPASS\tEND=101\tGT\t0/1"))
    assert location(variants(conv.bundle)[0]) == (99, 102, "ACG", "A")
    (warning,) = details(conv, "vcf-end-ignored")
    assert warning.expression == "line 4" and warning.severity == "warning"
    assert "INFO END=101 disagrees with REF, which spans 100-102" in warning.message


# -- versions --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["4.4", "4.5", "5.0", "4.3.1"])
def test_unsupported_versions_are_refused_at_line_1_before_anything_is_read(version: str) -> None:
    read = []

    def lines() -> Any:
        for line in vcf("chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1").decode().splitlines():
            read.append(line)
            yield line.replace("VCFv4.2", f"VCFv{version}").encode()

    with pytest.raises(UnsupportedMessage) as err:
        Converter(lines())
    assert err.value.issues[0].details == "vcf-version" and err.value.issues[0].expression == "line 1"
    assert len(read) == 1
    if version == "4.4":
        assert "4.4 redefined END and SVLEN" in err.value.issues[0].message


def test_vcf_4_0_is_read_as_4_1() -> None:
    conv = to_fhir(vcf("chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1").replace(b"VCFv4.2", b"VCFv4.0"))
    assert conv.summary.variants == 1


# -- the conversion report -------------------------------------------------------------------------------------


def test_unmapped_keys_are_listed_per_record_class_and_bounded() -> None:
    many = ";".join(f"K{i}={i}" for i in range(MAX_TRACKED + 50))
    conv = to_fhir(vcf("chr1\t100\t.\tAT\tA\t.\tPASS\tDB\tGT:XX\t0/1:.",  # XX has no value here
                       f"chr1\t200\t.\tA\tG\t.\tPASS\t{many}\tGT:XX\t0/1:7",
                       "chr1\t300\t.\tC\tT\t.\tLowQual\tZZ\tGT:XX\t0/1:1"))  # filtered: not converted
    issues = details(conv, "vcf-key-not-mapped")
    assert len(issues) == MAX_TRACKED + 1
    listed = {i.expression: i.message for i in issues[:-1]}
    assert listed["INFO/DB"] == "INFO/DB on 1 deletion record not mapped (first: line 4)"
    assert listed["INFO/K0"] == "INFO/K0 on 1 SNV record not mapped (first: line 5)"
    # past the bound: K199..K249 and FORMAT/XX of line 5 are counted, not listed
    assert issues[-1].message == f"52 more INFO/FORMAT values of keys beyond the first {MAX_TRACKED} not mapped " \
                                 "(not listed)"
    assert "INFO/ZZ" not in listed
    small = to_fhir(vcf("chr1\t100\t.\tAT\tA\t.\tPASS\t.\tGT:XX:YY\t0/1:.:3"))
    assert set(not_mapped(small)) == {"FORMAT/YY"}


def test_all_filtered_is_a_report_with_a_warning() -> None:
    conv = to_fhir(vcf("chr1\t100\t.\tA\tG\t.\tLowQual\t.\tGT\t0/1"))
    assert variants(conv.bundle) == []
    assert details(conv, "vcf-all-filtered")[0].message.startswith("no variant converted: the 1 records")


def test_only_unconvertible_alleles_are_refused() -> None:
    with pytest.raises(UnsupportedMessage, match="1 record with only breakend alleles, which are not converted"):
        to_fhir(vcf("chr1\t100\t.\tA\tA[chr2:300[\t.\tPASS\t.\tGT\t0/1"))


def test_lenient_refusal_names_the_first_malformed_record() -> None:
    with pytest.raises(UnsupportedMessage, match=r"1 record malformed \(skipped; the first: line 4: FORMAT DP "):
        to_fhir(vcf("chr1\t100\t.\tA\tG\t.\tPASS\t.\tGT:DP\t0/1:1e309"), Options(lenient=True))


# -- toolkit: Bundle policy, Provenance, determinism -----------------------------------------------------------


def test_transaction_bundle_is_the_toolkit_bundle_of_the_same_resources() -> None:
    """The streamed Bundle follows mappers.toolkit.bundle: same id, entries and conditional creates."""
    text = data("mutect2-tumor-normal.vcf")
    collection = to_fhir(text).bundle
    transaction = to_fhir(text, Options(bundle_type="transaction")).bundle
    key = Converter(iter_lines([text])).ctx.key  # the bundle type is not part of resource ids
    assert transaction == toolkit_bundle(resources(collection), "transaction", (key,))
    assert collection == toolkit_bundle(resources(collection), "collection", (key,))
    for e in transaction["entry"]:
        assert e["request"]["method"] == "POST" and e["request"]["ifNoneExist"].startswith("identifier=")


def test_provenance_only_when_the_caller_states_the_instant(validator) -> None:  # type: ignore[no-untyped-def]
    text = data("strelka-somatic-indels.vcf")
    recorded = "2024-05-01T10:00:00+02:00"
    conv = get("vcf").to_fhir(text, ConvertOptions(recorded=recorded))
    by_type = {r["resourceType"]: r for r in resources(conv.bundle)}
    prov, device, report = by_type["Provenance"], by_type["Device"], by_type["DiagnosticReport"]
    assert prov["recorded"] == recorded and device["version"] == [{"value": MAPPER_VERSION}]
    assert prov["target"] == [{"reference": f"urn:uuid:{report['id']}"}]
    assert prov["agent"][0]["who"] == {"reference": f"urn:uuid:{device['id']}"}
    assert errors(validator, conv.bundle) == []
    assert "Provenance" not in {r["resourceType"] for r in resources(get("vcf").to_fhir(text, ConvertOptions())
                                                                      .bundle)}
    lines = [orjson.loads(x) for x in b"".join(ndjson(Converter(iter_lines([text]), Options(recorded=recorded),
                                                                 relative_refs=True))).splitlines()]
    prov = next(r for r in lines if r["resourceType"] == "Provenance")
    assert prov["target"][0]["reference"].startswith("DiagnosticReport/")
    with pytest.raises(ParseError, match="recorded '2024-05-01' is not a FHIR instant"):
        Options(recorded="2024-05-01")


@pytest.mark.parametrize("name", ["mutect2-tumor-normal.vcf", "strelka-somatic-indels.vcf"])
def test_same_input_same_bytes(name: str) -> None:
    first = get("vcf").to_fhir(data(name), ConvertOptions())
    second = get("vcf").to_fhir(data(name), ConvertOptions())
    assert orjson.dumps(first.bundle) == orjson.dumps(second.bundle)
    assert [i.to_fhir() for i in first.issues] == [i.to_fhir() for i in second.issues]

