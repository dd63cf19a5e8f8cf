"""CDA → FHIR → CDA → FHIR keeps every fact; the CDA written is structurally valid CDA R2; other Bundles convert."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.cda_cn import check, from_fhir, parse_xml, to_fhir
from mappers.exceptions import EmitError, ParseError
from tests.mappers.cda_cn.helpers import DOCUMENTS, SAMPLES, clinical, one

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_sample_is_valid_cda_and_round_trips(path: Path) -> None:
    data = path.read_bytes()
    assert check(parse_xml(data)[0]) == []
    first = to_fhir(data)
    doc = from_fhir(first.bundle)
    assert check(parse_xml(doc.data)[0]) == []
    second = to_fhir(doc.data)
    assert clinical(second.bundle) == clinical(first.bundle)
    third = from_fhir(second.bundle)
    assert third.data == doc.data  # stable from the second pass on


def test_gb18030_output_decodes_to_the_same_facts() -> None:
    first = to_fhir((SAMPLES / "lab-genetic.gb18030.xml").read_bytes())
    doc = from_fhir(first.bundle, encoding="gb18030")
    assert doc.data.startswith(b"<?xml version='1.0' encoding='GB18030'?>")
    assert "诸葛婷".encode("gb18030") in doc.data
    assert clinical(to_fhir(doc.data).bundle) == clinical(first.bundle)


def test_a_bundle_from_another_source_becomes_a_lab_record() -> None:
    """A Bundle the HL7 v2 mapper made (no Composition, no OIDs) still yields valid CDA, with what was filled named."""
    from mappers.hl7v2 import to_fhir as v2_to_fhir

    msg = (ROOT / "tests" / "mappers" / "hl7v2" / "messages" / "08-gb18030-chinese-patient.hl7").read_bytes()
    bundle = v2_to_fhir(msg).bundle
    doc = from_fhir(bundle)
    assert check(parse_xml(doc.data)[0]) == []
    issues = {i.details for i in doc.issues}
    assert "cda-document-id-generated" in issues
    again = to_fhir(doc.data).bundle
    patient = one(again, "Patient")
    source_patient = one(bundle, "Patient")
    assert patient["gender"] == source_patient["gender"]
    observations = [o for o in again["entry"] if o["resource"]["resourceType"] == "Observation"]
    assert observations


def test_fhir_input_errors() -> None:
    with pytest.raises(ParseError, match="not JSON"):
        from_fhir(b"{nope")
    with pytest.raises(ParseError, match="expected a FHIR Bundle"):
        from_fhir(b'{"resourceType": "Patient"}')
    with pytest.raises(EmitError, match="no DiagnosticReport"):
        from_fhir({"resourceType": "Bundle", "type": "collection", "entry": []})
    bundle = to_fhir((SAMPLES / "lab-cbc.utf8.xml").read_bytes()).bundle
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    with pytest.raises(EmitError, match="no Patient subject"):
        from_fhir(bundle)


def test_gender_other_is_written_as_not_stated_with_a_warning() -> None:
    bundle = to_fhir((SAMPLES / "lab-cbc.utf8.xml").read_bytes()).bundle
    patient = one(bundle, "Patient")
    patient["gender"] = "other"
    patient["extension"] = [e for e in patient["extension"] if "gbt-2261.1-sex" not in e["url"]]
    doc = from_fhir(bundle)
    assert b'administrativeGenderCode code="9"' in doc.data
    assert "cn-gender-lossy" in {i.details for i in doc.issues}
