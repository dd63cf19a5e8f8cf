"""The eHDSI samples (../shared/corpora/ehdsi-cda): every Patient Summary converts to an IPS 2.0.0 document with no
validation error, each ePrescription to an IPS MedicationRequest, and eHDSI → IPS → eHDSI → IPS keeps every mapped
fact."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mappers.ehdsi_cda.from_fhir import from_fhir
from mappers.ehdsi_cda.rules import check
from mappers.ehdsi_cda.to_fhir import to_fhir
from tests.corpora import params
from tests.mappers.ehdsi_cda.facts import facts

IPS = "http://hl7.org/fhir/uv/ips/StructureDefinition/"


def _files(folder: Path) -> list[object]:
    return [pytest.param(p, id=p.name) for p in sorted(folder.glob("*.xml"))]


def _prescription(data: bytes, validator) -> None:  # type: ignore[no-untyped-def]
    """An ePrescription → MedicationRequest-uv-ips (intent order) with its Medication-uv-ips, valid."""
    bundle = to_fhir(data).bundle
    assert bundle["type"] == "collection"
    by_type: dict[str, list[dict]] = {}
    for e in bundle["entry"]:
        by_type.setdefault(e["resource"]["resourceType"], []).append(e["resource"])
    (req,) = by_type["MedicationRequest"]
    assert req["meta"]["profile"] == [IPS + "MedicationRequest-uv-ips"] and req["intent"] == "order"
    assert req["status"] == "active" and req["substitution"] == {"allowedBoolean": False}
    assert req["dispenseRequest"]["quantity"]["value"] > 0 and req["requester"]["reference"].startswith("urn:uuid:")
    med = next(m for m in by_type["Medication"] if f"urn:uuid:{m['id']}" == req["medicationReference"]["reference"])
    assert any(c["system"] == "http://www.whocc.no/atc" for c in med["code"]["coding"])  # the generic class
    assert med["ingredient"] and all(i["isActive"] for i in med["ingredient"])
    errors = [i for i in validator.outcome(bundle, ())["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == []


def _summaries(folder: Path) -> list[object]:
    return [pytest.param(p, id=p.name) for p in sorted(folder.glob("*.xml")) if not _is_prescription(p)]


def _is_prescription(path: Path) -> bool:
    return "-eP-" in path.name


@pytest.mark.parametrize("path", params("ehdsi-cda", _files))
def test_sample_converts_to_a_valid_ips_document(path: Path, validator) -> None:  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    if _is_prescription(path):
        return _prescription(data, validator)
    conv = to_fhir(data)
    bundle = conv.bundle
    assert bundle["type"] == "document" and bundle["meta"]["profile"] == [IPS + "Bundle-uv-ips"]
    comp = bundle["entry"][0]["resource"]
    assert comp["resourceType"] == "Composition" and comp["meta"]["profile"] == [IPS + "Composition-uv-ips"]
    codes = {s["code"]["coding"][0]["code"] for s in comp["section"]}
    assert {"11450-4", "48765-2", "10160-0"} <= codes  # IPS's required sections, present or stated empty
    for s in comp["section"]:
        assert s["text"]["div"].startswith("<div") and s["text"]["div"] != ""
    # every clinical resource claims its IPS profile, so the validator checks it against it
    for e in bundle["entry"]:
        res = e["resource"]
        if res["resourceType"] in ("Condition", "AllergyIntolerance", "MedicationStatement", "Immunization",
                                   "Procedure", "DeviceUseStatement", "Patient", "Medication"):
            assert res["meta"]["profile"][0].startswith(IPS), res["resourceType"]
    outcome = validator.outcome(bundle, ())
    errors = [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == []
    assert orjson.dumps(to_fhir(data).bundle) == orjson.dumps(bundle)  # same input, same bytes


@pytest.mark.parametrize("path", params("ehdsi-cda", _summaries))
def test_sample_round_trips_with_its_facts(path: Path, validator) -> None:  # type: ignore[no-untyped-def]
    first = to_fhir(path.read_bytes()).bundle
    cda, _ = from_fhir(first)
    assert check(cda) == []
    second = to_fhir(cda).bundle
    before, after = facts(first), facts(second)
    assert len(before) > 5
    assert before - after == set()
    errors = [i for i in validator.outcome(second, ())["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == []


def test_critical_test_data_content() -> None:
    """The eHDSI Critical Test Data document (PS_L3_W6): named facts land where IPS puts them."""
    from tests.corpora import corpus

    bundle = to_fhir((corpus("ehdsi-cda") / "PS_L3_W6.xml").read_bytes()).bundle
    by_type: dict[str, list[dict]] = {}
    for e in bundle["entry"]:
        by_type.setdefault(e["resource"]["resourceType"], []).append(e["resource"])
    pat = by_type["Patient"][0]
    assert pat["name"][0] == {"family": "Ferreira", "given": ["Diana"]} and pat["gender"] == "female"
    assert pat["birthDate"] == "1982-05-08"
    med = next(m for m in by_type["Medication"] if m["code"].get("text") == "Eutirox")
    assert med["ingredient"][0]["itemCodeableConcept"]["coding"][0] == {"system": "http://www.whocc.no/atc",
                                                                          "code": "H03AA01"}
    asthma = next(c for c in by_type["Condition"] if c["code"]["coding"][0]["code"] == "J45")
    assert asthma["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"  # eHDSI's ICD-10 OID
    allergy = by_type["AllergyIntolerance"][0]
    assert allergy["criticality"] == "low" and allergy["clinicalStatus"]["coding"][0]["code"] == "active"
    # 'Moderate to severe' (SNOMED 371924009) through the ConceptMap, reported as approximate
    assert allergy["reaction"][0]["severity"] == "severe"
    bp = next(o for o in by_type["Observation"] if o["code"]["coding"][0]["code"] == "85354-9")
    assert {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in bp["component"]} == {
        "8480-6": 160, "8462-4": 110}
    conv = to_fhir((corpus("ehdsi-cda") / "PS_L3_W6.xml").read_bytes())
    details = [i.details for i in conv.issues]
    assert "ehdsi-code-approximated" in details and "cda-element-not-mapped" in details
    unmapped = [i.message for i in conv.issues if i.details == "cda-element-not-mapped"]
    # the author's time has no place in FHIR's Composition.author: reported by path, not dropped in silence
    assert any("/ClinicalDocument/author/time" in m for m in unmapped)
    assert not any("methodCode" in m for m in unmapped)  # mapped: Observation.method
    assert any("method" in o for o in by_type["Observation"])
