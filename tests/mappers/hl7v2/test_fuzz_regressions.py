"""Inputs bench/fuzz found crashing the HL7 v2 reader (issue 12), kept under regressions/: each now converts with
the mappers' documented warnings (or is refused with a MappingError), through the registry as `$convert` and
`helixgate convert` run it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mappers.toolkit.registry import ConvertOptions, get

REGRESSIONS = Path(__file__).parent / "regressions"
# input → the issue the conversion reports instead of crashing
WARNED = {
    "range-past-64-bits.hl7": "hl7v2-bad-number",  # a range bound of -9223372036854775809: orjson's TypeError
}


def test_every_regression_input_has_a_case() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(WARNED)


@pytest.mark.parametrize("name", sorted(WARNED))
@pytest.mark.parametrize("timezone", [None, "+01:00"])
def test_converted_with_a_warning(name: str, timezone: str | None) -> None:
    conv = get("hl7v2").to_fhir((REGRESSIONS / name).read_bytes(), ConvertOptions(timezone=timezone))
    assert WARNED[name] in [i.details for i in conv.issues]
    orjson.dumps(conv.bundle)  # writable: no integer past 64 bits left in it
