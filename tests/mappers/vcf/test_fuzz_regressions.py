"""Inputs bench/fuzz found crashing the VCF reader and writer (issue 12), minimised under regressions/: each is now
refused with the mappers' documented error (or written with a warning), through the registry as `$convert` and
`helixgate convert` run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

REGRESSIONS = Path(__file__).parent / "regressions"
# input → (target format, details of the first issue)
CASES = {
    "bundle-nested-300-deep.json": ("vcf", "fhir-too-deep"),  # was a TypeError from orjson
    "variant-meta-as-list.json": ("vcf", "fhir-wrong-type"),  # was an AttributeError in is_variant
    "entry-resource-as-list.json": ("vcf", "fhir-wrong-type"),  # was an AttributeError
    "exact-range-without-low.json": ("vcf", "vcf-no-variants"),  # was a KeyError: the variant is skipped
    "sv-outer-range-without-high.json": ("vcf", "vcf-no-variants"),  # was a KeyError
    "position-as-string.json": ("vcf", "fhir-wrong-type"),  # a string start
}
# VCF input → details of the first issue (read by the registry's vcf to_fhir)
READ = {
    "chrom-5000-digits.vcf": "vcf-unknown-contig",  # was a ValueError: int() of more than 4,300 digits
    "chrom-superscript.vcf": "vcf-unknown-contig",  # was a ValueError: '²'.isdigit() but int('²') raises
}
# input → (target format, details of the warning): written, what cannot be is left out and reported
WARNED = {
    "read-depth-as-period.json": ("vcf", "vcf-component-not-a-quantity"),  # was a KeyError (also stu1-report.json)
    "position-1e308.json": ("vcf", "vcf-bad-position"),  # was written as a 309-digit POS; the other variant is
}


def test_every_regression_input_has_a_case() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted({**CASES, **WARNED, **READ})


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_a_mapping_error(name: str) -> None:
    target, details = CASES[name]
    with pytest.raises(MappingError) as e:
        bundle = get("fhir").to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions()).bundle
        get(target).from_fhir(bundle, ConvertOptions())
    assert e.value.issues[0].details == details


@pytest.mark.parametrize("name", sorted(WARNED))
def test_written_with_a_warning(name: str) -> None:
    target, details = WARNED[name]
    bundle = get("fhir").to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions()).bundle
    out = get(target).from_fhir(bundle, ConvertOptions())
    assert out.data.startswith(b"##fileformat=VCF") and details in [i.details for i in out.issues]


@pytest.mark.parametrize("name", sorted(READ))
def test_read_refused_with_a_mapping_error(name: str) -> None:
    with pytest.raises(MappingError) as e:
        get("vcf").to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions())
    assert e.value.issues[0].details == READ[name]
