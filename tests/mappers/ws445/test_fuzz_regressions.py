"""Inputs crashing the FHIR → WS 445 writer (issue 12), probed after bench/fuzz found the same class of crash (int() of
'²' or of 5,000 digits) in the China CDA reader, minimised under regressions/: each is now refused with the mappers'
documented error, through the registry as `$convert` and `helixgate convert` run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

REGRESSIONS = Path(__file__).parent / "regressions"
# input → (target format, details of the first issue)
CASES = {
    "patient-age-superscript-two.json": ("ws445", "ws445-schema"),  # was a ValueError: int("²")
    "patient-age-5000-digits.json": ("ws445", "ws445-schema"),  # was a ValueError: int() of 5,000 digits
}


def test_every_regression_input_has_a_case() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_a_mapping_error(name: str) -> None:
    target, details = CASES[name]
    with pytest.raises(MappingError) as e:
        bundle = get("fhir").to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions()).bundle
        get(target).from_fhir(bundle, ConvertOptions())
    assert e.value.issues[0].details == details
