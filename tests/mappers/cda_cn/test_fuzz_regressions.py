"""Inputs bench/fuzz found crashing the China CDA reader and writer (issue 12), under regressions/ (a sample with the
one hostile value, or a minimised Bundle): each is now converted with a warning or refused with the mappers'
documented error, through the registry as `$convert` and `helixgate convert` run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

REGRESSIONS = Path(__file__).parent / "regressions"
# input → (target format, details of the first issue)
CASES = {
    "encounter-location-display-as-list.json": ("cda-cn", "fhir-bad-shape"),  # was a TypeError from lxml
}
# input → (source format, target format, details): converted to FHIR, then written
THROUGH = {
    "ws445-method-with-control-character.json": ("ws445", "cda-cn", "fhir-not-xml-text"),  # was lxml's ValueError
}
# CDA input → the warning it converts with
READ = {
    "age-5000-digits.xml": "cn-age-mismatch",  # was a ValueError: int() of more than 4,300 digits
    "age-superscript-two.xml": "cn-bad-age",  # was a ValueError: '²'.isdigit() but int('²') raises
}


def test_every_regression_input_has_a_case() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted({**CASES, **READ, **THROUGH})


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_a_mapping_error(name: str) -> None:
    target, details = CASES[name]
    with pytest.raises(MappingError) as e:
        bundle = get("fhir").to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions()).bundle
        get(target).from_fhir(bundle, ConvertOptions())
    assert e.value.issues[0].details == details


@pytest.mark.parametrize("name", sorted(READ))
def test_read_with_a_warning(name: str) -> None:
    conv = get("cda-cn").to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions())
    assert READ[name] in [i.details for i in conv.issues]


@pytest.mark.parametrize("name", sorted(THROUGH))
def test_refused_on_the_way_through_fhir(name: str) -> None:
    source, target, details = THROUGH[name]
    with pytest.raises(MappingError) as e:
        bundle = get(source).to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions()).bundle
        get(target).from_fhir(bundle, ConvertOptions())
    assert e.value.issues[0].details == details
