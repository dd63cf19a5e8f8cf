"""Documents bench/fuzz/fuzz_ehdsi_cda.py found crashing the eHDSI CDA reader (issue 12), under regressions/
(examples/ehdsi-ps-all-sections.xml with the one hostile value): each now converts with a warning naming the element,
and its Bundle can be written as JSON."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mappers.toolkit.registry import ConvertOptions, get

REGRESSIONS = Path(__file__).parent / "regressions"
# input → (details, expression) of the warning it converts with
READ = {
    # was orjson's TypeError (Integer exceeds 64-bit range) writing the Bundle: a 40-digit dose became a Python int
    "dose-past-64-bits.xml": ("ehdsi-bad-number", "/ClinicalDocument/component/structuredBody/component[3]/section/"
                              "entry[1]/substanceAdministration/doseQuantity"),
}


def test_every_regression_input_has_a_case() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(READ)


@pytest.mark.parametrize("name", sorted(READ))
def test_read_with_a_warning(name: str) -> None:
    reader = get("ehdsi-cda").to_fhir
    assert reader is not None
    conv = reader((REGRESSIONS / name).read_bytes(), ConvertOptions())
    assert READ[name] in [(i.details, i.expression) for i in conv.issues]
    assert orjson.loads(orjson.dumps(conv.bundle))["resourceType"] == "Bundle"
