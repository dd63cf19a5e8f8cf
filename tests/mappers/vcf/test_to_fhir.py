"""VCF → FHIR on the corpus VCFs, checked against facts read from the VCFs themselves (tests/mappers/vcf/facts)."""

from __future__ import annotations

import base64
import functools
import re
from pathlib import Path

import orjson
import pytest

from mappers.ids import resource_id
from mappers.vcf import Converter, Options, iter_lines, ndjson, parse_bed, to_fhir
from tests.mappers.vcf.facts import (
    bed,
    called_alleles,
    component,
    location,
    norm,
    overlaps,
    records,
    resources,
    simple_convertible,
    value,
    variants,
    vcf_file,
)

HET, HOM, HEMI, HOMOPLASMIC, HETEROPLASMIC = "LA6706-1", "LA6705-3", "LA6707-9", "LA6704-6", "LA6703-8"
GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"


def chrom_of_refseq(accession: str) -> str:
    """NC_000007.13 → 7, NC_000023 → X, NC_000024 → Y, NC_012920 → MT (RefSeq's own numbering)."""
    if accession.startswith("NC_012920"):
        return "MT"
    n = int(accession[3:9])
    return {23: "X", 24: "Y"}.get(n, str(n))


def by_location(bundle: dict) -> dict[tuple[str, int, str, str], dict]:
    out = {}
    for obs in variants(bundle):
        if component(obs, "81254-5") is None:
            continue
        start, _, ref, alt = location(obs)
        out[(chrom_of_refseq(str(value(obs, "48013-7"))), start, ref, alt)] = obs
    return out


@functools.cache
def converted(name: str, **options: object) -> dict:
    """The Bundle of a corpus file, converted once per test session and options."""
    return to_fhir(vcf_file(name).read_bytes(), Options(**options)).bundle  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def hg00404() -> tuple[Path, dict]:
    return vcf_file("HG00404_b37.vcf"), converted("HG00404_b37.vcf", genomic_source="germline")


def test_every_called_allele_is_a_variant_located_as_in_the_vcf(hg00404) -> None:
    path, bundle = hg00404
    found = by_location(bundle)
    expected = [(r, a) for r in records(path) if simple_convertible(r) for a in called_alleles(r)]
    assert len(expected) > 1000 and len(found) == len(expected)
    for rec, a in expected:
        obs = found[(rec.norm, rec.pos - 1, rec.ref, rec.alts[a - 1])]
        assert location(obs)[1] == rec.pos - 1 + len(rec.ref)  # 0-based interval, end exclusive
        assert value(obs, "92822-6") == "LA30100-4"
        assert value(obs, "62374-4") == "LA14029-5"  # GRCh37, from ##reference=.../build37.fa.bz2
        assert value(obs, "48002-0") == "LA6683-2"
        assert value(obs, "FORMAT/GT") == rec.sample["GT"]
        state = None if None in rec.gt else HOM if all(g == a for g in rec.gt) else HET  # 1/. : unknown
        assert value(obs, "53034-5") == state, rec
        ad = [int(x) if x != "." else None for x in rec.sample.get("AD", ".").split(",")]
        if len(ad) == len(rec.alts) + 1 and ad[a] is not None:
            assert value(obs, "82121-5") == ad[a]
            dp = int(rec.sample["DP"])
            assert value(obs, "81258-6") == pytest.approx(ad[a] / dp, abs=1e-4)
        assert obs["meta"]["profile"] == [GR + "variant"]
        assert [c["coding"][0]["code"] for c in obs["category"]] == ["laboratory", "GE"]
        assert obs["valueCodeableConcept"]["coding"][0]["code"] == "LA9633-4"


def test_multi_allelic_records_split_into_one_variant_per_called_alt(hg00404) -> None:
    path, bundle = hg00404
    found = by_location(bundle)
    multi = [r for r in records(path) if len(called_alleles(r)) > 1 and simple_convertible(r)]
    assert multi
    for rec in multi:
        for a in called_alleles(rec):
            obs = found[(rec.norm, rec.pos - 1, rec.ref, rec.alts[a - 1])]
            assert value(obs, "ALT") == ",".join(rec.alts)  # kept so VCF output restores the record
            assert value(obs, "53034-5") == HET


def test_sample_allele_fraction_comes_from_ad_dp_not_info_af() -> None:
    path = vcf_file("NB6TK328_filtered.vcf")
    bundle = to_fhir(path.read_bytes()).bundle
    found = by_location(bundle)
    differs = 0
    for rec in records(path):
        obs = found[(rec.norm, rec.pos - 1, rec.ref, rec.alts[0])]
        ad, dp = [int(x) for x in rec.sample["AD"].split(",")], int(rec.sample["DP"])
        assert value(obs, "81258-6") == pytest.approx(ad[1] / dp, abs=1e-4)
        differs += abs(float(rec.info["AF"]) - ad[1] / dp) > 1e-3
    assert differs  # the file's INFO AF (cohort) is not what was reported
    assert value(variants(bundle)[0], "62374-4") == "LA26806-2"  # GRCh38, from the ##contig lengths


def expected_phase(path: Path) -> list[tuple[tuple[str, int], tuple[str, int], str]]:
    out, last = [], {}
    chrom = None
    for rec in records(path):
        if rec.norm != chrom:
            chrom, last = rec.norm, {}
        gt = rec.sample.get("GT", "")
        alleles = rec.gt
        # 1|. still places the ALT on the first haplotype, so it is phased against its neighbours
        if "|" not in gt or len(alleles) != 2 or rec.filter not in ("PASS", "."):
            continue
        for a in called_alleles(rec):
            if alleles.count(a) != 1 or not set(rec.alts[a - 1]) <= set("ACGTN"):
                continue
            ps = rec.sample.get("PS", ".")
            key = ps if ps != "." else "*"
            here = (rec.norm, rec.pos)
            if key in last:
                prev, hap = last[key]
                out.append((prev, here, "Cis" if hap == alleles.index(a) else "Trans"))
            last[key] = (here, alleles.index(a))
    return out


@pytest.mark.parametrize("name", ["vcf_example4.vcf", "HG00404_b37.vcf", "vcf_example1.vcf"])
def test_phased_genotypes_give_cis_and_trans_relationships(name: str) -> None:
    path = vcf_file(name)
    bundle = converted(name, genomic_source="germline", lenient=name == "vcf_example1.vcf")
    where = {}
    for obs in variants(bundle):
        where[obs["id"]] = (norm(str(value(obs, "48013-7"))) if value(obs, "48013-7") and not str(
            value(obs, "48013-7")).startswith("NC_") else chrom_of_refseq(str(value(obs, "48013-7"))),
                            location(obs)[0] + 1)
    got = []
    for res in resources(bundle):
        if res.get("meta", {}).get("profile") == [GR + "sequence-phase-relationship"]:
            first, second = (where[r["reference"].removeprefix("urn:uuid:")] for r in res["derivedFrom"])
            got.append((first, second, res["valueCodeableConcept"]["coding"][0]["code"]))
    assert got == expected_phase(path)
    assert got, "each of these files has phased calls"


def test_haploid_and_male_x_calls_outside_par_are_hemizygous() -> None:
    # GRCh38 PAR1 is X:10,001-2,781,479: 100000 is inside it, 5000000 outside.
    vcf = (b"##fileformat=VCFv4.2\n##reference=GRCh38\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
           b"chrX\t100000\t.\tA\tG\t.\tPASS\t.\tGT\t1/1\n"
           b"chrX\t100100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n"
           b"chrX\t5000000\t.\tA\tG\t.\tPASS\t.\tGT\t1/1\n"
           b"chrX\t5000100\t.\tA\tG\t.\tPASS\t.\tGT\t1\n"
           b"chrX\t5000200\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n"
           b"chr7\t5000200\t.\tA\tG\t.\tPASS\t.\tGT\t1/1\n")
    states = {}
    conv = to_fhir(vcf, Options(sex="male"))
    for obs in variants(conv.bundle):
        states[location(obs)[0] + 1, value(obs, "48000-4")] = value(obs, "53034-5")
    x, seven = "LA21276-3", "LA21260-7"
    assert states == {(100000, x): HOM, (100100, x): HET, (5000000, x): HEMI, (5000100, x): HEMI,
                      (5000200, x): HET, (5000200, seven): HOM}
    assert [i.expression for i in conv.issues if i.details == "vcf-heterozygous-male-xy"] == ["line 8"]
    female = {location(o)[0] + 1: value(o, "53034-5") for o in variants(to_fhir(vcf, Options(sex="female")).bundle)}
    assert female[5000000] == HOM
    assert to_fhir(vcf, Options(sex="male")).bundle["entry"][0]["resource"]["gender"] == "male"


def test_mitochondrial_calls_are_homoplasmic_or_heteroplasmic_by_allele_fraction() -> None:
    path = vcf_file("vcf_example3.vcf")
    found = by_location(to_fhir(path.read_bytes(), Options(genomic_source="somatic")).bundle)
    checked = 0
    for rec in records(path):
        if rec.norm != "MT" or not simple_convertible(rec):
            continue
        a = called_alleles(rec)[0]
        obs = found[("MT", rec.pos - 1, rec.ref, rec.alts[a - 1])]
        fraction = int(rec.sample["AD"].split(",")[a]) / int(rec.sample["DP"])
        assert value(obs, "53034-5") == (HOMOPLASMIC if fraction >= 0.99 else HETEROPLASMIC)
        assert value(obs, "48002-0") == "LA6684-0"
        checked += 1
    assert checked >= 3


SO = {"DEL": "SO:0000159", "DUP": "SO:1000035", "INV": "SO:1000036", "INS": "SO:0000667", "CNV": "SO:0001019"}


def test_structural_variants_get_change_type_and_outer_inner_ranges() -> None:
    path = vcf_file("vcf_structural_variants.vcf")
    conv = to_fhir(path.read_bytes(), Options(lenient=True))
    bad_end = [r for r in records(path) if not any(a.startswith("<") for a in r.alts) and "END" in r.info
               and int(r.info["END"]) != r.pos + len(r.ref) - 1]
    # END places symbolic alleles only (VCF 4.3 §1.6.1): sequence alleles are placed by REF, the END warned about
    assert conv.summary.skipped["invalid-record"] == 0 and len(bad_end) == 3
    assert [i.expression for i in conv.issues if i.details == "vcf-end-ignored"] == [f"line {r.line}" for r in bad_end]
    placed = {(chrom_of_refseq(str(value(o, "48013-7"))), location(o)[0]): o for o in variants(conv.bundle)
              if component(o, "81254-5")}
    for rec in bad_end:
        assert location(placed[(rec.norm, rec.pos - 1)])[1] == rec.pos - 1 + len(rec.ref)
    svs = {(norm(str(v)), lo): obs for obs in variants(conv.bundle)
           if (rng := value(obs, "81301-4") or value(obs, "81302-2"))
           for v, lo in [(chrom_of_refseq(str(value(obs, "48013-7"))), rng[0])]}
    checked = 0
    for rec in records(path):
        alt = rec.alts[called_alleles(rec)[0] - 1] if called_alleles(rec) else ""
        kind = alt[1:-1].split(":")[0]
        if not alt.startswith("<") or kind not in SO or rec.filter != "PASS":
            continue
        end = int(rec.info.get("END", rec.pos))
        cipos = [int(x) for x in rec.info.get("CIPOS", "0,0").split(",")]
        ciend = [int(x) for x in rec.info.get("CIEND", "0,0").split(",")]
        outer = (rec.pos - 1 + cipos[0], end + ciend[1])
        obs = svs[(rec.norm, outer[0] if "CIPOS" in rec.info or "CIEND" in rec.info else rec.pos - 1)]
        so = SO["INS"] if alt.startswith("<INS") else SO[kind]
        if alt == "<DUP:TANDEM>":
            so = "SO:1000173"
        assert value(obs, "48019-4") == (so if not alt.startswith("<INS:ME") else "SO:0001837")
        if "CIPOS" in rec.info or "CIEND" in rec.info:
            assert value(obs, "81301-4") == outer
            inner = (rec.pos - 1 + cipos[1], end + ciend[0])
            assert value(obs, "81302-2") == (inner if inner[0] < inner[1] else None)  # no empty range
        else:
            assert value(obs, "81302-2") == (rec.pos - 1, end)
        assert component(obs, "81254-5") is None and component(obs, "69551-0") is None
        if "CN" in rec.sample:
            assert value(obs, "82155-3") == int(rec.sample["CN"])
        checked += 1
    assert checked >= 10


GVCF = (b"##fileformat=VCFv4.2\n##reference=GRCh38\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
        b"chr1\t100\t.\tA\t<NON_REF>\t.\t.\tEND=180\tGT:DP\t0/0:30\n"
        b"chr1\t181\t.\tC\tT,<NON_REF>\t50\tPASS\t.\tGT:AD:DP\t0/1:10,12,0:22\n"
        b"chr1\t190\t.\tG\tA\t50\tLowQual\t.\tGT:AD:DP\t0/1:10,12:22\n"
        b"chr1\t200\t.\tG\t<*>\t.\t.\tEND=220\tGT\t0/0\n")


def test_gvcf_blocks_and_filtered_records_are_skipped_and_counted() -> None:
    conv = to_fhir(GVCF)
    assert conv.summary.records == 4 and conv.summary.variants == 1
    assert dict(conv.summary.skipped) == {"gvcf-reference-block": 2, "filtered": 1}
    (obs,) = variants(conv.bundle)
    assert location(obs) == (180, 181, "C", "T") and value(obs, "81258-6") == pytest.approx(12 / 22, abs=1e-4)
    kept = to_fhir(GVCF, Options(keep_filtered=True))
    assert kept.summary.variants == 2
    assert value(variants(kept.bundle)[1], "FILTER") == "LowQual"
    assert "gvcf-reference-block 2" in conv.summary.text()


def test_conversion_region_filters_and_regions_are_reported_as_the_ig_expects(hg00404) -> None:
    path = vcf_file("HG00404_b37.vcf")
    beds = {role: vcf_file(f"HG00404_b37_{name}.bed") for role, name in
            (("convert", "convert"), ("studied", "studied"), ("uncallable", "noncallable"))}
    regions = {role: parse_bed(p.read_bytes(), p.name, role) for role, p in beds.items()}
    conv = to_fhir(path.read_bytes(), Options(genomic_source="germline"), regions)
    keep = bed(beds["convert"])
    expected = [(r, a) for r in records(path) if simple_convertible(r) and overlaps(keep, r.chrom, r.pos - 1,
                r.pos - 1 + len(r.ref)) for a in called_alleles(r)]
    found = by_location(conv.bundle)
    assert 0 < len(found) == len(expected) < len(by_location(hg00404[1]))
    for (chrom, start, ref, _alt) in found:
        assert overlaps(keep, chrom, start, start + len(ref))
    res = resources(conv.bundle)
    analysis = next(r for r in res if r.get("meta", {}).get("profile") == [GR + "genomic-study-analysis"])
    ext = next(e for e in analysis["extension"] if e["url"] == GR + "genomic-study-analysis-regions")
    docs = {f"urn:uuid:{r['id']}": r for r in res if r["resourceType"] == "DocumentReference"}
    for role, url in (("studied", "studied"), ("uncallable", "uncalled")):
        (ref,) = [e["valueReference"]["reference"] for e in ext["extension"] if e["url"] == url]
        attachment = docs[ref]["content"][0]["attachment"]
        assert base64.b64decode(attachment["data"]) == beds[role].read_bytes()
        assert docs[ref]["meta"]["profile"] == [GR + "genomic-data-file"]
    assert any(e["url"] == "description" and beds["convert"].name in e["valueString"] for e in ext["extension"])
    assert conv.summary.skipped["outside-conversion-region"] > 0


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "reference"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_report_lists_every_result_and_no_reference_dangles(hg00404) -> None:
    _, bundle = hg00404
    urls = {e["fullUrl"] for e in bundle["entry"]}
    assert set(_refs(bundle)) <= urls
    res = resources(bundle)
    report = res[-1]
    assert report["resourceType"] == "DiagnosticReport" and report["meta"]["profile"] == [GR + "genomic-report"]
    assert report["code"]["coding"][0]["code"] == "51969-4"
    observations = {f"urn:uuid:{r['id']}" for r in res if r["resourceType"] == "Observation"}
    assert [r["reference"] for r in report["result"]] == [f"urn:uuid:{r['id']}" for r in res
                                                          if r["resourceType"] == "Observation"]
    assert len(observations) == len(report["result"])
    study = next(r for r in res if r.get("meta", {}).get("profile") == [GR + "genomic-study"])
    assert report["extension"][0]["valueReference"]["reference"] == f"urn:uuid:{study['id']}"
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])  # ids unique


def test_ids_are_deterministic_and_follow_the_patient_identifier() -> None:
    data = vcf_file("vcf_example4.vcf").read_bytes()
    a = to_fhir(data, Options(patient="urn:oid:2.16.840.1.113883.19|HG00628")).bundle
    b = to_fhir(data, Options(patient="urn:oid:2.16.840.1.113883.19|HG00628")).bundle
    assert a == b
    patient = resources(a)[0]
    assert patient["id"] == resource_id("Patient", "urn:oid:2.16.840.1.113883.19", "HG00628")  # as HL7 v2 does
    assert patient["identifier"] == [{"system": "urn:oid:2.16.840.1.113883.19", "value": "HG00628"}]
    c = to_fhir(data, Options(patient="HG00628", genomic_source="somatic")).bundle
    assert {r["id"] for r in resources(c)[2:]}.isdisjoint({r["id"] for r in resources(a)[2:]})
    default = resources(to_fhir(data).bundle)[0]
    assert default["identifier"] == [{"system": "urn:helixgate:vcf-sample", "value": "Sample"}]


def test_ndjson_has_relative_references_and_the_report_last() -> None:
    data = vcf_file("vcf_example4.vcf").read_bytes()
    conv = Converter(iter_lines([data]), Options(), relative_refs=True)
    lines = b"".join(ndjson(conv)).splitlines()
    docs = [orjson.loads(line) for line in lines]
    known = {f"{d['resourceType']}/{d['id']}" for d in docs}
    assert set(_refs(docs)) <= known
    assert docs[-1]["resourceType"] == "DiagnosticReport"
    assert len(docs[-1]["result"]) == conv.summary.variants + conv.summary.phase_relationships == 12


def test_unknown_assembly_keeps_contig_names_and_says_so() -> None:
    conv = to_fhir(vcf_file("vcf_example4.vcf").read_bytes())
    obs = variants(conv.bundle)[0]
    assert value(obs, "48013-7") == "X" and component(obs, "62374-4") is None
    assert any(i.details == "vcf-assembly-unknown" for i in conv.issues)
    pinned = to_fhir(vcf_file("vcf_example4.vcf").read_bytes(), Options(assembly="GRCh38"))
    assert value(variants(pinned.bundle)[0], "48013-7") == "NC_000023.11"


def test_input_is_read_lazily_and_only_result_ids_are_kept() -> None:
    """Streaming: resources come out while the input is still unread, and per result the converter keeps
    only its 16-byte id (the peak RSS on 1M records is measured by bench/bench_vcf.py)."""
    head = b"##fileformat=VCFv4.2\n##reference=GRCh38\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
    pulled = 0

    def chunks():
        nonlocal pulled
        yield head
        for i in range(200):
            pulled += 1
            yield b"".join(b"chr1\t%d\t.\tA\tG\t50\tPASS\t.\tGT:AD:DP\t0/1:10,12:22\n" % (1000 + 10 * (i * 50 + j))
                           for j in range(50))

    conv = Converter(iter_lines(chunks()), Options(), relative_refs=True)
    out = ndjson(conv)
    first = [next(out) for _ in range(2 + 120)]  # Patient, Specimen, 120 variants
    assert pulled <= 4, pulled
    total = sum(len(p) for p in first) + sum(len(p) for p in out)
    assert pulled == 200 and conv.summary.variants == 10_000 and total > 20 * 2**20
    assert len(conv._results) == 16 * 10_000


def test_summary_text_counts_by_reason() -> None:
    conv = to_fhir(vcf_file("vcf_example1.vcf").read_bytes(), Options(lenient=True))
    text = conv.summary.text()
    assert re.match(r"read 14 records: converted \d+ \(\d+ variants, 1 phase relationships\); skipped \d+ \(", text)
    assert "invalid-record 3" in text and "filtered 1" in text
