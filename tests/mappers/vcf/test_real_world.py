"""VCFs written by other projects' callers (corpus real-world/vcf) → FHIR, the way the edge runs them (the `vcf`
format of the registry, default options). Each file states what it must give — variants, positions, allele
fractions, what the report says was not mapped — and every output validates with 0 errors and is the same bytes
when converted twice. Expected values are read from the files (tests/mappers/vcf/facts.py) or worked out by hand
from the caller's documented rule, never taken from the converter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.exceptions import UnsupportedMessage
from mappers.toolkit.registry import ConvertOptions, get
from mappers.vcf import Options, to_fhir
from tests import corpora
from tests.mappers.vcf.facts import called_alleles, location, records, resources, value, variants

pytestmark = corpora.needs("real-world")

SOMATIC, GERMLINE, HET, HOM = "LA6684-0", "LA6683-2", "LA6706-1", "LA6705-3"
CNV_SO, DEL_SO, INS_ME_SO = "SO:0001019", "SO:0000159", "SO:0001837"


def path(name: str) -> Path:
    return corpora.corpus("real-world") / "vcf" / name


def convert(name: str, **params: str) -> Any:
    """The conversion the edge makes: the registry's vcf format with request options."""
    return get("vcf").to_fhir(path(name).read_bytes(), ConvertOptions(params=tuple(sorted(params.items()))))


def errors(validator: Any, bundle: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(i.expression, i.message) for i in validator.validate(bundle) if i.severity in ("error", "fatal")]


def by_details(conv: Any, details: str) -> list[Any]:
    return [i for i in conv.issues if i.details == details]


def not_mapped(conv: Any) -> dict[str, str]:
    return {i.expression: i.message for i in by_details(conv, "vcf-key-not-mapped")}


def analysis(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in resources(bundle) if r["resourceType"] == "Procedure" and "note" in r)


FILES = ["strelka-somatic-tumor-normal.vcf", "isaac-gvcf-refblocks.vcf", "vcf41-spec-structural-variants.vcf",
         "freebayes-7-samples-chr22.vcf", "vcf43-spec-example.vcf.gz"]


def test_every_vcf_of_the_corpus_is_tested() -> None:
    assert {p.name for p in (corpora.corpus("real-world") / "vcf").iterdir()} == set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_output_validates_and_is_the_same_bytes_twice(validator, name: str) -> None:  # type: ignore[no-untyped-def]
    first, second = convert(name), convert(name)
    assert orjson.dumps(first.bundle) == orjson.dumps(second.bundle)
    assert errors(validator, first.bundle) == []
    transaction = get("vcf").to_fhir(path(name).read_bytes(), ConvertOptions(bundle_type="transaction"))
    assert errors(validator, transaction.bundle) == []
    bundle = first.bundle
    assert "timestamp" not in bundle  # a VCF states no instant; the mapper reads no clock
    report = resources(bundle)[-1]
    assert report["resourceType"] == "DiagnosticReport" and "issued" not in report
    assert not [r for r in resources(bundle) if r["resourceType"] in ("Provenance", "Device")]
    for res in resources(bundle):  # every resource says where in the input it came from
        assert first.origins.get(res["id"]), res["resourceType"]
    for obs in variants(bundle):
        assert first.origins[obs["id"]].startswith("line ")


def test_strelka_somatic_calls_without_gt_are_the_tumour_s_variants(validator) -> None:  # type: ignore[no-untyped-def]
    """Strelka writes no GT: each PASS record is a somatic SNV of the TUMOR column, with tier-1,2 base counts.
    The Strelka user guide's rule: tier-1 {ALT}U / ({ALT}U + {REF}U). Line 55 (C>T): TU 14, CU 45 → 14/59;
    line 56 (G>A): AU 6, GU 90 → 6/96; line 57 (G>A): AU 6, GU 126 → 6/132."""
    conv = convert("strelka-somatic-tumor-normal.vcf")
    found = {location(o)[0] + 1: o for o in variants(conv.bundle)}
    assert sorted(found) == [1666175, 3750492, 9117626]
    expected = {1666175: ("C", "T", 14 / 59, 14, 59), 3750492: ("G", "A", 6 / 96, 6, 96),
                9117626: ("G", "A", 6 / 132, 6, 132)}
    for pos, (ref, alt, fraction, depth, dp) in expected.items():
        obs = found[pos]
        assert location(obs)[2:] == (ref, alt)
        assert value(obs, "81258-6") == pytest.approx(fraction, abs=1e-4)
        assert value(obs, "82121-5") == depth and value(obs, "FORMAT/DP") == dp
        assert value(obs, "48002-0") == SOMATIC
        assert value(obs, "53034-5") is None and value(obs, "FORMAT/GT") is None  # no genotype was called
        assert value(obs, "48013-7") == "NC_000001.10"  # GRCh37, from ##reference=file:///b37.fasta
    specimen = next(r for r in resources(conv.bundle) if r["resourceType"] == "Specimen")
    assert specimen["identifier"][0]["value"] == "TUMOR.variant"
    note = analysis(conv.bundle)["note"][0]["text"]
    assert "sample TUMOR.variant (tumour)" in note and "NORMAL.variant (normal" in note
    roles = {i.message.split()[1]: i.message for i in by_details(conv, "vcf-sample-role")}
    assert set(roles) == {"NORMAL.variant", "NORMAL.variant2", "TUMOR.variant", "TUMOR.variant2"}
    assert "is the normal" in roles["NORMAL.variant"] and roles["TUMOR.variant"].endswith("; converted")
    assert conv.summary.somatic_calls == 3 and conv.summary.variants == 3
    unmapped = not_mapped(conv)
    assert unmapped["INFO/QSS"] == "INFO/QSS on 3 SNV records not mapped (first: line 55)"
    assert unmapped["FORMAT/SDP"].startswith("FORMAT/SDP on 3 SNV records")
    assert "INFO/SOMATIC" not in unmapped  # it says somatic, which every variant states
    assert errors(validator, conv.bundle) == []


def test_strelka_normal_sample_is_refused_naming_the_tumour() -> None:
    with pytest.raises(UnsupportedMessage) as err:
        convert("strelka-somatic-tumor-normal.vcf", sample="NORMAL.variant")
    issue = err.value.issues[0]
    assert issue.details == "vcf-nothing-converted"
    assert "3 records have no GT for sample NORMAL.variant" in issue.message
    assert "convert the tumour sample TUMOR.variant" in issue.message


def test_isaac_gvcf_reference_blocks_are_counted_and_the_variant_converted() -> None:
    """ALT '.' with END (gvcftools blocks, several of them LowGQX or HighDepth) are reference blocks; the one
    SNV (line 86: G>C, GT 0/1, AD 16,6, DP 22) converts."""
    recs = records(path("isaac-gvcf-refblocks.vcf"))
    blocks = [r for r in recs if r.alts == ["."] and "END" in r.info]
    singles = [r for r in recs if r.alts == ["."] and "END" not in r.info]
    conv = convert("isaac-gvcf-refblocks.vcf")
    assert dict(conv.summary.skipped) == {"gvcf-reference-block": len(blocks), "no-alt": len(singles)}
    assert (len(blocks), len(singles), conv.summary.records) == (28, 2, 31)
    (obs,) = variants(conv.bundle)
    assert location(obs) == (85, 86, "G", "C")
    assert value(obs, "53034-5") == HET and value(obs, "82121-5") == 6
    assert value(obs, "81258-6") == pytest.approx(6 / 22, abs=1e-4)
    assert value(obs, "48013-7") == "NC_000022.10"  # human_g1k_v37
    assert set(not_mapped(conv)) == {"INFO/SNVHPOL", "INFO/SNVSB", "FORMAT/DPF", "FORMAT/GQ", "FORMAT/GQX"}


def test_vcf41_spec_sv_example_converts_every_record() -> None:
    """Line 30 is a 66-base deletion written as sequence, with an END (2827680) before its POS (2827693): END
    places symbolic alleles only, so REF places it (warned). Lines 34-35 are <DUP> calls with GT ./. and
    FORMAT CN 3 and 5: kept as copy-number variants."""
    conv = convert("vcf41-spec-structural-variants.vcf")
    assert conv.summary.variants == 6 and sum(conv.summary.skipped.values()) == 0
    (warning,) = by_details(conv, "vcf-end-ignored")
    assert warning.expression == "line 30" and "END=2827680" in warning.message
    obs = {o["id"]: o for o in variants(conv.bundle)}
    line = {conv.origins[i]: o for i, o in obs.items()}
    deletion = line["line 30"]
    ref = records(path("vcf41-spec-structural-variants.vcf"))[0].ref
    assert location(deletion) == (2827692, 2827692 + len(ref), ref, "C")
    assert value(deletion, "48019-4") == DEL_SO and value(deletion, "53034-5") == HOM
    assert value(line["line 31"], "48019-4") == DEL_SO and value(line["line 31"], "81301-4") == (321625, 321949)
    assert value(line["line 33"], "48019-4") == INS_ME_SO
    for n, copies, start in (("line 34", 3, 12665099), ("line 35", 5, 18665127)):
        cnv = line[n]
        assert value(cnv, "48019-4") == CNV_SO and value(cnv, "82155-3") == copies
        assert value(cnv, "FORMAT/GT") == "./." and value(cnv, "53034-5") is None
        assert value(cnv, "81301-4")[0] < start < value(cnv, "81302-2")[0]  # type: ignore[index]
    assert conv.summary.copy_number_calls == 2
    (unknown,) = by_details(conv, "vcf-assembly-unknown")
    assert unknown.message.startswith("the header's ##reference=1000GenomesPilot-NCBI36 is neither GRCh37 nor GRCh38")


def test_freebayes_first_sample_with_allele_fractions_from_observation_counts() -> None:
    """freeBayes writes AO/RO (no AD): the fraction is AO/(RO+sum(AO)). The first column, BLANK, converts; the
    six others are listed as not converted."""
    file = path("freebayes-7-samples-chr22.vcf")
    recs = records(file)
    conv = convert("freebayes-7-samples-chr22.vcf")
    expected = [(r, a) for r in recs if called_alleles(r) for a in called_alleles(r)]
    assert conv.summary.variants == len(expected) == 79
    assert dict(conv.summary.skipped) == {"reference-genotype": 17, "no-call": 11}
    found = {(location(o)[0] + 1, location(o)[3]): o for o in variants(conv.bundle)}
    for rec, a in expected:
        obs = found[(rec.pos, rec.alts[a - 1])]
        ao = [int(x) for x in rec.sample["AO"].split(",")]
        total = int(rec.sample["RO"]) + sum(ao)
        assert value(obs, "82121-5") == ao[a - 1]
        if total:
            assert value(obs, "81258-6") == pytest.approx(ao[a - 1] / total, abs=1e-4)
        assert value(obs, "FORMAT/GT") == rec.sample["GT"]
    (others,) = by_details(conv, "vcf-sample-not-converted")
    assert others.message.startswith("6 other sample columns not converted: NA12878, NA12891")
    assert "FORMAT/GL" in not_mapped(conv) and "INFO/TYPE" in not_mapped(conv)
    second = to_fhir(file.read_bytes(), Options(sample="NA12878"))
    assert second.summary.variants > 0 and second.bundle != conv.bundle


def test_vcf43_spec_example_bgzip() -> None:
    """NA00001: 1|2 at 1110696 (two variants in trans), 0/1 GTC>G at 1234567; 0|0, a q10-filtered record and
    ALT '.' are skipped."""
    conv = convert("vcf43-spec-example.vcf.gz")
    got = sorted(location(o) for o in variants(conv.bundle))
    assert got == [(1110695, 1110696, "A", "G"), (1110695, 1110696, "A", "T"), (1234566, 1234569, "GTC", "G")]
    assert dict(conv.summary.skipped) == {"reference-genotype": 1, "filtered": 1, "no-alt": 1}
    assert conv.summary.phase_relationships == 1
    phase = next(r for r in resources(conv.bundle) if r.get("code", {}).get("coding", [{}])[0].get("code") ==
                 "82120-7")
    assert phase["valueCodeableConcept"]["coding"][0]["code"] == "Trans"
    assert {value(o, "81252-9") for o in variants(conv.bundle)} == {"rs6040355", None}
    assert analysis(conv.bundle)["performedDateTime"] == "2009-08-05"
    assert "INFO/AA" in not_mapped(conv) and "FORMAT/HQ" in not_mapped(conv)
