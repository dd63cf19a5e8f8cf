"""VCF → FHIR output validates against the Genomics Reporting IG 3.0.0 profiles it claims (no error issues)."""

from __future__ import annotations

import pytest

from mappers.vcf import Options, parse_bed, to_fhir
from tests.conftest import ROOT
from tests.mappers.vcf.facts import vcf_file


def _regions(*names: tuple[str, str]) -> dict:
    return {role: parse_bed(vcf_file(n).read_bytes(), n, role) for role, n in names}


CASES = {  # read when the case runs: all but the first need the vcf corpus
    "example, germline male": lambda: ((ROOT / "examples" / "germline-grch38.vcf").read_bytes(),
                                       Options(genomic_source="germline", sex="male", patient="urn:oid:1.2.3|P1"), {}),
    "structural, somatic, transaction": lambda: (
        vcf_file("vcf_structural_variants.vcf").read_bytes(),
        Options(genomic_source="somatic", lenient=True, bundle_type="transaction"), {}),
    "regions": lambda: (
        vcf_file("vcf_example3.vcf").read_bytes(), Options(genomic_source="germline"),
        _regions(("convert", "RegionsToConvert_example3.bed"), ("studied", "RegionsStudied_example3.bed"),
                 ("uncallable", "NoncallableRegions_example3.bed"))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_output_validates_against_the_ig(validator, case: str) -> None:  # type: ignore[no-untyped-def]
    data, options, regions = CASES[case]()
    bundle = to_fhir(data, options, regions).bundle
    errors = [(i.expression, i.message) for i in validator.validate(bundle) if i.severity in ("error", "fatal")]
    assert errors == []
    profiles = {p for e in bundle["entry"] for p in e["resource"].get("meta", {}).get("profile", [])}
    assert {p.rsplit("/", 1)[1] for p in profiles} >= {"variant", "genomic-report", "genomic-study",
                                                       "genomic-study-analysis"}
