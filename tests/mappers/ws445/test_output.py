"""WS 445 datasets → FHIR: same bytes twice, 0 validation errors, no Provenance without a stated instant, every data
element not mapped named by its id, output elements traced to their data elements."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from mappers import ws445
from mappers.cda_cn import Options
from mappers.toolkit.origins import source_of
from mappers.toolkit.registry import ConvertOptions
from mappers.ws445.format import FORMAT
from tests.mappers.cda_cn.helpers import one, resources

SAMPLES = Path(__file__).parent / "samples"
ROOT = Path(__file__).resolve().parents[3]
DATASETS = [*sorted(SAMPLES.glob("*.json")), ROOT / "examples" / "cn-ws445-lab.json"]


def sample(name: str) -> dict:
    return orjson.loads((SAMPLES / name).read_bytes())


@pytest.mark.parametrize("bundle_type", ["collection", "transaction"])
@pytest.mark.parametrize("path", DATASETS, ids=lambda p: p.name)
def test_same_bytes_and_valid(validator, path: Path, bundle_type: str) -> None:  # type: ignore[no-untyped-def]
    first = ws445.to_fhir(path.read_bytes(), Options(bundle_type=bundle_type))
    again = ws445.to_fhir(path.read_bytes(), Options(bundle_type=bundle_type))
    assert orjson.dumps(first.bundle) == orjson.dumps(again.bundle)
    errors = [(i.expression, i.message) for i in validator.validate(first.bundle) if i.severity in ("error", "fatal")]
    assert errors == []


def test_a_report_date_is_no_instant_so_no_provenance() -> None:
    c = ws445.to_fhir(sample("lab-diabetes.json"))
    assert not resources(c.bundle, "Provenance") and not resources(c.bundle, "Device")
    assert "timestamp" not in c.bundle and "issued" not in one(c.bundle, "DiagnosticReport")
    assert any(i.details == "cn-no-provenance" and i.expression == "DE04.50.133.00" for i in c.issues)
    stated = FORMAT.to_fhir(orjson.dumps(sample("lab-diabetes.json")),  # type: ignore[misc]
                            ConvertOptions(recorded="2024-07-08T12:00:00+08:00"))
    prov = one(stated.bundle, "Provenance")
    assert prov["recorded"] == "2024-07-08T12:00:00+08:00" and prov["occurredDateTime"] == "2024-07-08"
    assert one(stated.bundle, "Device")["version"] == [{"value": "ws445/0.2.0"}] and FORMAT.version == "ws445/0.2.0"
    assert prov["entity"][0]["what"]["display"] == "WS 445 dataset"


def test_data_elements_not_mapped_are_named() -> None:
    doc = copy.deepcopy(sample("lab-diabetes.json"))
    doc["DE04.50.132.00"] = "影像学提示"  # an exam impression in a lab dataset
    doc["DE02.01.032.00"] = "552"  # age in months beside the age in years
    c = ws445.to_fhir(orjson.dumps(doc))
    found = {i.expression: i.message for i in c.issues if i.details == "ws445-element-not-mapped"}
    assert found == {
        "DE04.50.132.00": "DE04.50.132.00 (1x) was not mapped: a lab dataset's conclusion is DE04.50.130.00",
        "DE02.01.032.00": "DE02.01.032.00 (1x) was not mapped: the age in years (DE02.01.026.00) is given",
    }
    assert not [i for i in ws445.to_fhir(sample("lab-diabetes.json")).issues
                if i.details == "ws445-element-not-mapped"]


def test_output_elements_are_traced_to_data_elements() -> None:
    c = ws445.to_fhir(sample("lab-diabetes.json"))
    n = next(i for i, e in enumerate(c.bundle["entry"]) if e["resource"]["resourceType"] == "Observation")
    assert source_of(c.bundle, c.origins, f"Bundle.entry[{n}].resource") == "items[0]"
    assert source_of(c.bundle, c.origins, f"Bundle.entry[{n}].resource.effectiveDateTime") == \
        "items[0].DE04.50.140.00"
    assert source_of(c.bundle, c.origins, f"Bundle.entry[{n}].resource.valueQuantity.value") == \
        "items[0].DE04.30.015.00"
    spec = next(i for i, e in enumerate(c.bundle["entry"]) if e["resource"]["resourceType"] == "Specimen")
    assert source_of(c.bundle, c.origins, f"Bundle.entry[{spec}].resource.collection.collectedDateTime") == \
        "items[0].DE04.50.137.00"


def test_an_impossible_date_is_dropped_naming_the_element(validator) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(sample("lab-diabetes.json"))
    doc["items"][0]["DE04.50.140.00"] = "20240230T093000"  # matches the DT15 pattern, is no day
    doc["DE02.01.005.01"] = "19780231"
    c = ws445.to_fhir(orjson.dumps(doc))
    bad = {i.expression for i in c.issues if i.details == "cn-bad-time"}
    assert bad == {"items[0].DE04.50.140.00", "DE02.01.005.01"}
    glu = next(o for o in resources(c.bundle, "Observation") if o["code"]["coding"][0]["code"] == "GLU")
    assert glu["effectiveDateTime"] == "2024-07-08"  # the report date stands in, its origin says so
    assert one(c.bundle, "Patient")["birthDate"] == "1978-02-23"  # from the resident ID, flagged derived
    assert [i for i in validator.validate(c.bundle) if i.severity in ("error", "fatal")] == []


def test_a_number_fhir_cannot_carry_is_kept_as_text(validator) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(sample("lab-diabetes.json"))
    doc["items"][0]["DE04.30.015.00"] = "1" * 25
    c = ws445.to_fhir(orjson.dumps(doc))
    glu = next(o for o in resources(c.bundle, "Observation") if o["code"]["coding"][0]["code"] == "GLU")
    assert glu["valueString"] == "1" * 25 + " mmol/L"
    assert any(i.details == "cn-result-not-numeric" and i.expression == "items[0].DE04.30.015.00" for i in c.issues)
    assert [i for i in validator.validate(c.bundle) if i.severity in ("error", "fatal")] == []
