"""HL7 v2 inputs written by other projects (corpus real-world/hl7v2, located by tests/corpora.py): each file states
what it must give, the facts of its Bundle or the exact reason it is refused. Every Bundle validates with 0 errors,
converts twice to the same bytes, and names a source for every resource it holds (Conversion.origins)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.conversion import Conversion
from mappers.exceptions import MappingError, ParseError, UnsupportedMessage
from mappers.hl7v2 import Options, to_fhir
from tests import corpora
from tests.mappers.hl7v2.facts import LOINC, component, has_profile, resources

pytestmark = corpora.needs("real-world")

V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def _data(name: str) -> bytes:
    return (corpora.corpus("real-world") / "hl7v2" / name).read_bytes()


def convert(name: str, validator: Any, **opts: Any) -> Conversion:
    """Convert, and check what holds for every output: 0 validation errors, the same bytes twice, an origin for
    every resource."""
    data = _data(name)
    conv = to_fhir(data, Options(**opts))
    again = to_fhir(data, Options(**opts))
    assert orjson.dumps(conv.bundle) == orjson.dumps(again.bundle)
    errors = [(i.expression, i.message) for i in validator.validate(conv.bundle) if i.severity in ("error", "fatal")]
    assert errors == []
    for entry in conv.bundle["entry"]:
        assert entry["resource"]["id"] in conv.origins, entry["resource"]["resourceType"]
    return conv


def refusal(name: str) -> MappingError:
    with pytest.raises(MappingError) as err:
        to_fhir(_data(name))
    return err.value


def details(conv: Conversion, severity: str | None = None) -> list[str]:
    return [i.details for i in conv.issues if severity is None or i.severity == severity]


def one(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = resources(bundle, rtype)
    assert len(found) == 1, [r["resourceType"] for r in found]
    return found[0]


def unmapped(conv: Conversion) -> int:
    return sum(1 for i in conv.issues if i.details.endswith("-not-mapped"))


def test_every_real_world_hl7v2_file_has_a_test() -> None:
    tested = {"adt-a01-lfh-sample-unix.hl7", "mdm-t02-hl7-v2tofhir-sample.hl7", "mfn-m02-mirth-8859-1.hl7",
              "oru-athena-lri-ng.hl7", "oru-cerner-elr-lead.hl7", "oru-lfh-multiline-tx-note.hl7",
              "oru-machete-genetic-brca1-v25.hl7", "oru-nist-elr-tc1.hl7", "oru-nist-elr-tc4.hl7",
              "oru-realm-elr-campylobacter-joeslab.hl7"}
    present = {p.name for p in Path(corpora.corpus("real-world") / "hl7v2").iterdir()}
    assert present == tested


# --- refused, with the reason in plain words --------------------------------------------------------------------


def test_adt_with_a_doubled_backslash_in_msh2_is_refused_saying_so() -> None:
    err = refusal("adt-a01-lfh-sample-unix.hl7")
    assert isinstance(err, ParseError)
    assert err.issues[0].details == "hl7v2-bad-delimiters" and err.issues[0].expression == "MSH-2"
    assert str(err) == (
        "line 1: MSH-2 is '^~\\\\&': the escape character \\ is doubled (a backslash escaped twice, as a program's "
        "string literal writes it); the encoding characters must be four distinct characters, they are normally "
        "^~\\&; besides, MSH-9 names an unsupported message type ADT^A01 (helixgate converts ORU^R01 only)")


@pytest.mark.parametrize(("name", "mtype"), [("mdm-t02-hl7-v2tofhir-sample.hl7", "MDM^T02"),
                                             ("mfn-m02-mirth-8859-1.hl7", "MFN^M02")])
def test_other_message_types_are_refused(name: str, mtype: str) -> None:
    err = refusal(name)
    assert isinstance(err, UnsupportedMessage)
    assert str(err) == f"unsupported message type {mtype}: helixgate converts ORU^R01 to FHIR"
    assert err.issues[0].expression == "MSH-9"


def test_athena_oru_without_any_obx_is_refused() -> None:
    err = refusal("oru-athena-lri-ng.hl7")
    assert isinstance(err, UnsupportedMessage)
    assert err.issues[0].details == "hl7v2-no-result" and err.issues[0].expression == "OBR[1]-25"
    assert str(err).startswith("ORU^R01 without any OBX: OBR[1] (AMYLASE) carries no result although OBR-25 is 'C'")


# --- converted ---------------------------------------------------------------------------------------------------


def test_machete_vendor_genetic_oru(validator: Any) -> None:
    conv = convert("oru-machete-genetic-brca1-v25.hl7", validator)
    bundle = conv.bundle
    report = one(bundle, "DiagnosticReport")
    assert has_profile(report, "genomic-report") and report["code"]["coding"][0]["code"] == "51969-4"
    variants = [o for o in resources(bundle, "Observation") if has_profile(o, "variant")]
    assert len(variants) == 1
    var = variants[0]
    assert component(var, "48004-6")[0]["valueCodeableConcept"] == {"text": "c.68_69delAG"}
    assert component(var, "48005-3")[0]["valueCodeableConcept"] == {"text": "p.Glu23Valfs*17"}
    impl = next(o for o in resources(bundle, "Observation") if has_profile(o, "diagnostic-implication"))
    sig = component(impl, "53037-8")[0]
    assert sig["valueCodeableConcept"]["coding"][0]["code"] == "LA6668-3"  # Pathogenic, from row 74019-1
    assert {"system": LOINC, "code": "74019-1", "display": "Clinical Significance"} in sig["code"]["coding"]
    recognised = next(i for i in conv.issues if i.details == "hl7v2-variable-recognised")
    assert recognised.expression == "OBX[5]-3.2" and "'Clinical Significance' taken for LOINC 53037-8" in \
        recognised.message
    # 53037-8 labelled "Genetic Disease Assessed" carries a disease: not a clinical significance, kept apart
    mismatch = next(i for i in conv.issues if i.details == "hl7v2-variable-value-mismatch")
    assert mismatch.severity == "warning" and mismatch.expression == "OBX[4]-5"
    plain = [o for o in resources(bundle, "Observation") if "meta" not in o]
    assert sorted(o["code"]["coding"][0]["code"] for o in plain) == ["53037-8", "BRCA1"]
    assert var["note"][0]["text"].startswith("This result indicates an increased lifetime risk")
    assert not resources(bundle, "Provenance") and "timestamp" not in bundle  # MSH-7 has no zone
    assert unmapped(conv) == 4  # MSH-5, MSH-6, OBR-16.6 (prefix), OBR-24


def test_machete_with_a_time_zone_has_its_provenance(validator: Any) -> None:
    conv = convert("oru-machete-genetic-brca1-v25.hl7", validator, timezone="-05:00")
    prov = one(conv.bundle, "Provenance")
    assert prov["recorded"] == conv.bundle["timestamp"] == "2021-04-01T12:00:00-05:00"
    assert one(conv.bundle, "DiagnosticReport")["issued"] == "2021-04-01T12:00:00-05:00"


def test_cerner_lead_elr(validator: Any) -> None:
    conv = convert("oru-cerner-elr-lead.hl7", validator)
    bundle = conv.bundle
    pat = one(bundle, "Patient")
    assert pat["birthDate"] == "2005-07-15"
    # an assigning authority named with spaces: percent-encoded, so the system is a valid URI
    assert [(i.get("system"), i["value"]) for i in pat["identifier"]] == [
        ("urn:id:Baseline%20West%20MC", "9339683996"), ("urn:id:Cerner%20Corp", "7903")]
    obs = one(bundle, "Observation")
    assert obs["code"]["coding"][1]["system"] == "urn:id:99zzz%20or%20L"
    assert obs["valueQuantity"] == {"value": 50, "unit": "Micrograms per Deciliter",
                                    "system": "http://unitsofmeasure.org", "code": "ug/dL"}
    assert obs["interpretation"] == [{"coding": [{"system": V3_INTERPRETATION, "code": "H", "display": "High"}]}]
    assert one(bundle, "Specimen")["type"]["coding"][0]["code"] == "122555007"
    assert conv.origins[f"{obs['id']}:interpretation"] == "OBX[1]-8"
    assert unmapped(conv) == 22


@pytest.mark.parametrize(("name", "code", "value", "identifier"), [
    ("oru-nist-elr-tc1.hl7", "10368-9", {"valueQuantity": {"value": 50, "unit": "micro-gram per deci-liter",
                                                           "system": "http://unitsofmeasure.org", "code": "ug/dL"}},
     "9817566735"),
    ("oru-nist-elr-tc4.hl7", "11469-4", {"valueString": "Isolated"}, "5667351009"),
])
def test_nist_elr_test_cases(validator: Any, name: str, code: str, value: dict[str, Any], identifier: str) -> None:
    conv = convert(name, validator)
    pat = one(conv.bundle, "Patient")
    assert pat["identifier"][0] == {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                          "code": "MR"}]},
                                    "system": "urn:oid:2.16.840.1.113883.19.3.2.1", "value": identifier,
                                    "assigner": {"display": "MPI"}}
    obs = one(conv.bundle, "Observation")
    assert obs["code"]["coding"][0]["code"] == code
    assert {k: obs[k] for k in value} == value
    assert unmapped(conv) == 17


def test_nist_tc1_keeps_its_zoned_times(validator: Any) -> None:
    conv = convert("oru-nist-elr-tc1.hl7", validator)
    assert one(conv.bundle, "Observation")["effectiveDateTime"] == "2008-08-15T10:30:00-07:00"
    assert one(conv.bundle, "DiagnosticReport")["issued"] == "2008-08-18T18:00:00-07:00"


def test_realm_campylobacter_elr(validator: Any) -> None:
    conv = convert("oru-realm-elr-campylobacter-joeslab.hl7", validator)
    bundle = conv.bundle
    assert len(resources(bundle, "DiagnosticReport")) == 2 and len(resources(bundle, "Specimen")) == 2
    culture, lead = sorted(resources(bundle, "Observation"), key=lambda o: o["code"]["coding"][0]["code"],
                           reverse=True)
    assert culture["code"]["coding"][0] == {"system": LOINC, "version": "2.26", "code": "625-4",
                                            "display": "Bacteria identified:Prid:Pt:Stool:Nom:Culture"}
    assert culture["valueCodeableConcept"]["coding"][0]["code"] == "66543000"
    assert lead["valueQuantity"]["value"] == 50 and lead["referenceRange"] == [{"text": "<10 ug/dL"}]
    # PID-3(2) `^^^&2.16.840.1.113883.4.1^ISO^SS` puts ISO where the identifier type goes: kept as text
    ssn = one(bundle, "Patient")["identifier"][1]
    assert ssn == {"type": {"text": "ISO"}, "system": "urn:oid:2.16.840.1.113883.4.1", "value": "444333333"}
    warned = next(i for i in conv.issues if i.details == "hl7v2-identifier-type-unknown")
    assert warned.expression == "PID[1]-3(2).5"
    prov = one(bundle, "Provenance")  # MSH-7 carries its zone
    assert prov["recorded"] == bundle["timestamp"] == "2008-08-18T18:30:02.1-07:00"
    assert unmapped(conv) == 70


def test_lfh_multiline_text_note_becomes_one_document(validator: Any) -> None:
    conv = convert("oru-lfh-multiline-tx-note.hl7", validator)
    bundle = conv.bundle
    assert not resources(bundle, "Observation")  # 529 TX rows without OBX-3 are lines of one report
    report = one(bundle, "DiagnosticReport")
    (form,) = report["presentedForm"]
    text = base64.b64decode(form["data"]).decode("utf-8")
    assert form["contentType"] == "text/plain; charset=utf-8" and form["size"] == len(text.encode())
    assert len(text.split("\n")) == 529
    assert "Patient presents with\n Shortness of Breath" in text
    assert conv.origins[f"{report['id']}:presentedForm"].startswith("OBX[1]-5")
    assert unmapped(conv) == 12


def test_the_report_is_deterministic_too() -> None:
    data = _data("oru-realm-elr-campylobacter-joeslab.hl7")
    assert to_fhir(data).issues == to_fhir(data).issues
