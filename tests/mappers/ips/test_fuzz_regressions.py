"""Bundles bench/fuzz/fuzz_fhir_to_ips.py and fuzz_fhir_to_eu_lab.py found crashing the IPS and EU Lab composition
(issue 12), minimised under regressions/: each is now refused with the mappers' documented error naming the element,
through the registry as `$convert` and `helixgate convert` run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

REGRESSIONS = Path(__file__).parent / "regressions"
# input → (details, expression) of the first issue, the same for both writers
CASES = {
    "entry-as-number.json": ("fhir-wrong-type", "Bundle.entry"),  # was a TypeError: 'int' object is not iterable
    "resource-type-as-object.json": ("fhir-not-a-resource", "Bundle.entry[1].resource"),  # was unhashable dict
}


def test_every_regression_input_has_a_case() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("target", ["ips", "eu-lab"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_a_mapping_error(name: str, target: str) -> None:
    bundle = get("fhir").to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions()).bundle
    writer = get(target).from_fhir
    assert writer is not None
    with pytest.raises(MappingError) as e:
        writer(bundle, ConvertOptions(recorded="2024-05-01T10:00:00+02:00"))
    assert (e.value.issues[0].details, e.value.issues[0].expression) == CASES[name]
