"""WS 445 datasets: schema-checked input, FHIR facts, and round trips (WS445 → FHIR → WS445, and through CDA)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from mappers import cda_cn, ws445
from mappers.cda_cn import systems as S
from mappers.exceptions import EmitError, ParseError
from tests.mappers.cda_cn.helpers import one, resources

SAMPLES = Path(__file__).parent / "samples"
DATASETS = sorted(SAMPLES.glob("*.json"))


def sample(name: str) -> dict:
    return orjson.loads((SAMPLES / name).read_bytes())


def test_the_shipped_schema_is_a_valid_2020_12_schema() -> None:
    schema = json.loads(ws445.SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False and "items" in schema["required"]


@pytest.mark.parametrize("path", DATASETS, ids=lambda p: p.name)
def test_round_trip_dataset_fhir_dataset(path: Path) -> None:
    src = orjson.loads(path.read_bytes())
    conv = ws445.to_fhir(path.read_bytes())
    back = ws445.from_fhir(conv.bundle)
    assert back.doc == src
    assert not resources(conv.bundle, "Composition")  # a dataset is not a document


def test_round_trip_through_cda() -> None:
    src = sample("lab-diabetes.json")
    cda = cda_cn.from_fhir(ws445.to_fhir(src).bundle)
    assert cda_cn.check(cda_cn.parse_xml(cda.data)[0]) == []
    back = ws445.from_fhir(cda_cn.to_fhir(cda.data).bundle)
    assert back.doc == src


def test_lab_dataset_facts() -> None:
    conv = ws445.to_fhir(sample("lab-diabetes.json"))
    b = conv.bundle
    p = one(b, "Patient")
    assert p["name"][0] == {"use": "official", "text": "慕容秀兰", "family": "慕容", "given": ["秀兰"]}
    ids = {i["system"]: i["value"] for i in p["identifier"]}
    assert ids[S.RESIDENT_ID_SYSTEM] == "310115197802230049"
    assert ids["urn:oid:2.16.156.10011.1.19"] == "HC3101150001"
    assert p["gender"] == "female" and p["birthDate"] == "1978-02-23"
    assert p["address"][0]["state"] == "上海市" and p["address"][0]["line"] == ["示例路", "88号"]
    glu = next(o for o in resources(b, "Observation") if o["code"]["coding"][0]["code"] == "GLU")
    assert glu["valueQuantity"] == {"value": 8.9, "unit": "mmol/L", "system": S.UCUM, "code": "mmol/L"}
    assert glu["effectiveDateTime"] == "2024-07-08T09:30:00+08:00"
    hba1c = next(o for o in resources(b, "Observation") if o["code"]["coding"][0]["code"] == "4548-4")
    assert hba1c["code"]["coding"][0]["system"] == S.LOINC
    assert one(b, "Condition")["code"]["coding"][1]["code"] == "E11.9"
    assert one(b, "DiagnosticReport")["identifier"][0]["value"] == "JY20240708021"
    assert {s["type"]["text"] for s in resources(b, "Specimen")} == {"血清", "全血"}


def test_passport_holder_keeps_the_document_type() -> None:
    b = ws445.to_fhir(sample("exam-ecg.json")).bundle
    ident = one(b, "Patient")["identifier"][0]
    assert ident["system"] == "urn:helixgate:cn:id-document:03" and ident["value"] == "E12345678"
    assert ident["type"]["coding"][0]["code"] == "PPN"
    assert one(b, "Encounter")["class"]["code"] == "IMP"


@pytest.mark.parametrize(("change", "where", "text"), [
    (lambda d: d.pop("DE02.01.039.00"), "(dataset)", "'DE02.01.039.00' is a required property"),
    (lambda d: d.update({"DE02.01.040.00": "3"}), "DE02.01.040.00", "does not match"),
    (lambda d: d.update({"DE02.01.005.01": "19781323"}), "DE02.01.005.01", "does not match"),
    (lambda d: d.update({"DE99.99.999.99": "x"}), "(dataset)", "Additional properties"),
    (lambda d: d.update({"patientName": "x"}), "(dataset)", "Additional properties"),
    (lambda d: d["items"][1].pop("DE04.30.019.00") and d["items"][1].pop("DE04.30.020.00"), "items[1]", "valid"),
    (lambda d: d["items"][0].update({"DE04.30.015.00": "high"}), "items[0].DE04.30.015.00", "does not match"),
    (lambda d: d.update({"items": []}), "items", "should be non-empty"),
    (lambda d: d["items"][0].update({"DE04.50.137.00": "2024-07-08 07:45"}), "items[0].DE04.50.137.00", "match"),
])
def test_schema_errors_name_the_key(change, where: str, text: str) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(sample("lab-diabetes.json"))
    change(doc)
    with pytest.raises(ParseError) as e:
        ws445.to_fhir(orjson.dumps(doc))
    issue = e.value.issues[0]
    assert issue.details == "ws445-schema" and issue.expression == where
    assert text in issue.message


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(ParseError, match="not valid JSON"):
        ws445.to_fhir(b'{"DE02.01.039.00": ')
    with pytest.raises(ParseError, match="JSON object"):
        ws445.to_fhir(b"[1, 2]")


def test_looks_like() -> None:
    assert ws445.looks_like(sample("exam-ecg.json"))
    assert ws445.looks_like({"DE02.01.039.00": "张三"})
    assert not ws445.looks_like({"resourceType": "Bundle"})
    assert not ws445.looks_like({"DE02.01.039.00": "张三", "name": "x"})
    assert not ws445.looks_like({"items": []})


def test_fhir_facts_ws445_cannot_carry_are_reported() -> None:
    bundle = cda_cn.to_fhir((Path(__file__).parents[1] / "cda_cn" / "samples" / "lab-cbc.utf8.xml").read_bytes())
    out = ws445.from_fhir(bundle.bundle)
    note = next(i for i in out.issues if i.details == "ws445-not-carried")
    assert "reference ranges" in note.message and "interpretation flags" in note.message
    assert out.doc["DE02.01.030.00"] == "110105198503121234" and out.doc["DE02.01.031.00"] == "01"
    assert out.doc["items"][0]["DE04.30.015.00"] == 11.2
    ws445.load(out.doc)  # valid against the schema


def test_no_results_is_an_emit_error() -> None:
    bundle = ws445.to_fhir(sample("exam-ecg.json")).bundle
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "DiagnosticReport":
            e["resource"].pop("result")
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Observation"]
    with pytest.raises(EmitError, match="at least one item"):
        ws445.from_fhir(bundle)
