"""ehdsi-cda in the registry: detection beside China CDA (one media type, told apart by the body), both name forms
of a Chinese patient in the CDA header, refusals, and the ConceptMaps $translate serves."""

from __future__ import annotations

import copy
from pathlib import Path

import httpx
import orjson
import pytest
from lxml import etree

from mappers.ehdsi_cda.from_fhir import from_fhir
from mappers.ehdsi_cda.rules import check
from mappers.ehdsi_cda.to_fhir import to_fhir
from mappers.exceptions import ParseError, UnsupportedMessage
from mappers.toolkit.registry import by_media_type, detect
from tests.mappers.ehdsi_cda.test_rules import BUNDLE

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
V3 = "{urn:hl7-org:v3}"
REP = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
HAN = {"extension": [{"url": REP, "valueCode": "IDE"}], "use": "official", "family": "曾", "given": ["小明"],
       "text": "曾小明"}
PINYIN = {"extension": [{"url": REP, "valueCode": "ABC"}], "use": "official", "family": "ZENG", "given": ["XIAOMING"]}


def _chinese_bundle() -> dict:
    bundle = copy.deepcopy(BUNDLE)
    pat = bundle["entry"][1]["resource"]
    pat["name"] = [HAN, PINYIN]
    pat["identifier"] = [{"system": "urn:oid:2.16.156.10011.1.3", "value": "11010519491231002X"}]
    return bundle


def test_both_name_forms_are_written_and_read_back() -> None:
    data, _ = from_fhir(_chinese_bundle())
    assert check(data) == []
    names = etree.fromstring(data).findall(f"{V3}recordTarget/{V3}patientRole/{V3}patient/{V3}name")
    assert [(n.get("use"), n.findtext(f"{V3}family"), n.findtext(f"{V3}given")) for n in names] == [
        ("IDE", "曾", "小明"), ("ABC", "ZENG", "XIAOMING")]
    back = to_fhir(data).bundle
    pat = next(e["resource"] for e in back["entry"] if e["resource"]["resourceType"] == "Patient")
    assert [(n["extension"][0]["valueCode"], n["family"], n["given"]) for n in pat["name"]] == [
        ("IDE", "曾", ["小明"]), ("ABC", "ZENG", ["XIAOMING"])]
    assert pat["identifier"] == [{"system": "urn:oid:2.16.156.10011.1.3", "value": "11010519491231002X"}]


def test_detection_between_china_and_eu_cda() -> None:
    china = (EXAMPLES / "cn-lab-record.utf8.xml").read_bytes()
    eu, _ = from_fhir(_chinese_bundle())  # an eHDSI document about a Chinese patient carries China OIDs
    assert b"2.16.156.10011" in eu[:8192]
    assert detect(eu).name == "ehdsi-cda" and detect(china).name == "cda-cn"
    for media in ("application/cda+xml", "application/hl7-cda+xml"):
        assert by_media_type(media, eu).name == "ehdsi-cda"
        assert by_media_type(media, china).name == "cda-cn"


def test_other_documents_are_refused_by_name() -> None:
    ep = (b'<ClinicalDocument xmlns="urn:hl7-org:v3"><templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.1.5"/>'
          b'</ClinicalDocument>')
    with pytest.raises(UnsupportedMessage, match="eHDSI eDispensation"):
        to_fhir(ep)
    with pytest.raises(UnsupportedMessage) as e:
        to_fhir((EXAMPLES / "cn-lab-record.utf8.xml").read_bytes())
    assert e.value.issues[0].details == "ehdsi-not-patient-summary"
    with pytest.raises(ParseError) as bad:
        to_fhir(b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>')
    assert bad.value.issues[0].details == "cda-doctype-forbidden"
    with pytest.raises(ParseError, match="not a CDA document"):
        to_fhir(b"<html/>")


def test_a_plain_bundle_is_composed_first() -> None:
    bundle = copy.deepcopy(BUNDLE)
    bundle["type"] = "collection"
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Composition"]
    bundle["entry"].append({"fullUrl": "urn:uuid:a1", "resource": {
        "resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "urn:uuid:p1"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "227493005", "display": "Cashew nuts"}]}}})
    data, _ = from_fhir(bundle, None)
    root = etree.fromstring(data)
    codes = [s.find(f"{V3}code").get("code") for s in root.iter(f"{V3}section")]
    assert "48765-2" in codes
    agents = [c.get("code") for c in root.iter(f"{V3}code") if c.getparent().tag == f"{V3}playingEntity"]
    assert agents == ["227493005"]


def test_conceptmaps_are_served_by_translate(gateway) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(f"{gateway.url}/fhir/ConceptMap/ehdsi-severity-to-reaction-event-severity/$translate",
                  params={"system": "http://snomed.info/sct", "code": "371924009"}, timeout=10)
    assert r.status_code == 200, r.text
    params = r.json()["parameter"]
    assert next(p["valueBoolean"] for p in params if p["name"] == "result") is True
    match = next(p for p in params if p["name"] == "match")
    parts = {p["name"]: p for p in match["part"]}
    assert parts["concept"]["valueCoding"]["code"] == "severe"
    assert parts["equivalence"]["valueCode"] == "inexact"


@pytest.mark.parametrize("breaker", [
    lambda b: b["entry"][1]["resource"].__setitem__("name", "Doe"),  # Patient.name not a list
    lambda b: b["entry"][0]["resource"].__setitem__("section", [{"code": "11450-4", "entry": 5}]),
    lambda b: b["entry"][0]["resource"].__setitem__("author", [{"reference": 7}]),
    lambda b: b["entry"].append({"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Condition", "id": "x",
                                                                       "code": ["J45"]}}) or
    b["entry"][0]["resource"]["section"][0].__setitem__("entry", [{"reference": "urn:uuid:x"}]),
])
def test_malformed_fhir_is_refused_naming_where(breaker) -> None:  # type: ignore[no-untyped-def]
    bundle = copy.deepcopy(BUNDLE)
    breaker(bundle)
    with pytest.raises((ParseError, UnsupportedMessage)) as e:
        from_fhir(bundle)
    assert e.value.issues[0].details == "fhir-wrong-type" and e.value.issues[0].expression


def test_http_convert_tells_eu_from_china_cda_and_writes_ehdsi(gateway) -> None:  # type: ignore[no-untyped-def]
    eu = (EXAMPLES / "ehdsi-ps-all-sections.xml").read_bytes()
    r = httpx.post(f"{gateway.url}/fhir/$convert", content=eu, headers={"Content-Type": "application/cda+xml"},
                   timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "document" and doc["entry"][0]["resource"]["type"]["coding"][0]["code"] == "60591-5"
    china = (EXAMPLES / "cn-lab-record.utf8.xml").read_bytes()
    r = httpx.post(f"{gateway.url}/fhir/$convert", content=china, headers={"Content-Type": "application/cda+xml"},
                   timeout=60)
    assert r.status_code == 200, r.text
    assert "DiagnosticReport" in {e["resource"]["resourceType"] for e in r.json()["entry"]}
    # IPS document → eHDSI CDA: served as CDA, meeting the header rules
    back = httpx.post(f"{gateway.url}/fhir/$convert", content=orjson.dumps(doc), params={"target": "ehdsi-cda"},
                      headers={"Content-Type": "application/fhir+json"}, timeout=60)
    assert back.status_code == 200, back.text
    assert back.headers["content-type"].startswith("application/cda+xml")
    assert check(back.content) == []
    # an eHDSI eDispensation over HTTP: a 4xx naming the document type, never a 5xx
    ed = (b'<ClinicalDocument xmlns="urn:hl7-org:v3"><templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.1.5"/>'
          b'</ClinicalDocument>')
    r = httpx.post(f"{gateway.url}/fhir/$convert", content=ed, headers={"Content-Type": "application/cda+xml"},
                   timeout=60)
    assert 400 <= r.status_code < 500 and "eDispensation" in r.text


@pytest.mark.parametrize("example", ["oru-egfr-somatic.hl7", "cn-lab-record.utf8.xml"])
def test_china_and_v2_results_to_ehdsi_and_back(example: str, validator) -> None:  # type: ignore[no-untyped-def]
    """A plain Bundle (HL7 v2 genetic ORU, China lab record) → eHDSI CDA (composed into an IPS document first) →
    IPS: valid, its result Observations with their values or components kept (a variant's components ride as
    nested COMP observations)."""
    from mappers.toolkit.registry import ConvertOptions

    data = (EXAMPLES / example).read_bytes()
    src = detect(data)
    first = src.to_fhir(data, ConvertOptions())
    cda, _ = from_fhir(first.bundle, ConvertOptions(params=(("language", "en-GB"),)))
    assert check(cda) == []
    back = to_fhir(cda).bundle
    errors = [i for i in validator.outcome(back, ())["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == []
    def results(b: dict) -> set[tuple]:
        out = set()
        for e in b["entry"]:
            r = e["resource"]
            if r["resourceType"] == "Observation" and any(c.get("code") == "laboratory" for cc in r.get("category", [])
                                                         for c in cc.get("coding", [])):
                codes = tuple(sorted(c["code"] for c in r["code"].get("coding", [])
                                     if c.get("system") == "http://loinc.org"))
                comps = len(r.get("component", []))
                out.add((codes, comps))
        return out
    assert results(first.bundle) and results(first.bundle) <= results(back)
