"""The eHDSI header rules (mappers.ehdsi_cda.rules): a written Patient Summary meets them all, and breaking any one
is reported under that rule's name."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from lxml import etree

from mappers.ehdsi_cda.from_fhir import from_fhir
from mappers.ehdsi_cda.rules import check

V3 = "{urn:hl7-org:v3}"
PATIENT = {"resourceType": "Patient", "id": "p1",
           "identifier": [{"system": "urn:oid:2.16.17.710.850.1000.990.1", "value": "X-1"}],
           "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female", "birthDate": "1980-02-03",
           "address": [{"line": ["1 Main St"], "city": "Lisbon", "country": "PT"}],
           "telecom": [{"system": "phone", "value": "+351 21 000 0000", "use": "home"}]}
ORG = {"resourceType": "Organization", "id": "o1", "name": "Clinic",
       "identifier": [{"system": "urn:oid:2.999", "value": "1"}]}
BUNDLE = {"resourceType": "Bundle", "id": "b1", "type": "document", "language": "en-GB",
          "identifier": {"system": "urn:oid:2.999.1", "value": "doc-1"}, "timestamp": "2024-03-01T10:00:00+01:00",
          "entry": [{"fullUrl": "urn:uuid:c1", "resource": {
              "resourceType": "Composition", "id": "c1", "status": "final",
              "type": {"coding": [{"system": "http://loinc.org", "code": "60591-5"}]},
              "subject": {"reference": "urn:uuid:p1"}, "date": "2024-03-01T10:00:00+01:00",
              "author": [{"reference": "urn:uuid:o1"}], "title": "Patient Summary",
              "custodian": {"reference": "urn:uuid:o1"},
              "section": [{"title": "Problems", "code": {"coding": [{"system": "http://loinc.org", "code": "11450-4"}]},
                           "text": {"status": "generated",
                                    "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>None known</p></div>'},
                           "emptyReason": {"coding": [{"system":
                                           "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                                       "code": "nilknown"}]}}]}},
                    {"fullUrl": "urn:uuid:p1", "resource": PATIENT}, {"fullUrl": "urn:uuid:o1", "resource": ORG}]}


def _doc() -> etree._Element:
    data, _ = from_fhir(copy.deepcopy(BUNDLE))
    return etree.fromstring(data)


def _names(root: etree._Element) -> set[str]:
    return {i.details for i in check(etree.tostring(root))}


def test_a_written_document_meets_every_rule() -> None:
    root = _doc()
    assert check(etree.tostring(root)) == []
    assert root.find(f"{V3}languageCode").get("code") == "en-GB"
    assert root.find(f"{V3}typeId").get("extension") == "POCD_HD000040"


def _drop(path: str) -> Callable[[etree._Element], None]:
    def go(root: etree._Element) -> None:
        el = root.find(path.replace("h:", V3))
        el.getparent().remove(el)
    return go


def _set(path: str, attr: str, value: str) -> Callable[[etree._Element], None]:
    def go(root: etree._Element) -> None:
        el = root.find(path.replace("h:", V3)) if path else root
        el.set(attr, value)
    return go


def _add_copy(path: str) -> Callable[[etree._Element], None]:
    def go(root: etree._Element) -> None:
        el = root.find(path.replace("h:", V3))
        el.addnext(copy.deepcopy(el))
    return go


CASES = {
    "no typeId": (_drop("h:typeId"), "ehdsi-header-typeId"),
    "wrong typeId": (_set("h:typeId", "extension", "POCD_HD000041"), "ehdsi-header-typeId"),
    "schemaLocation": (_set("", "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation", "urn:hl7-org:v3 CDA.xsd"),
                       "ehdsi-header-no-schemaLocation"),
    "no templateId": (_drop("h:templateId"), "ehdsi-header-templateId"),
    "language 'en'": (_set("h:languageCode", "code", "en"), "ehdsi-header-languageCode"),
    "language 'EN-gb'": (_set("h:languageCode", "code", "EN-gb"), "ehdsi-header-languageCode"),
    "no title": (_drop("h:title"), "ehdsi-header-elements"),
    "two ids": (_add_copy("h:id"), "ehdsi-header-elements"),
    "null effectiveTime": (_set("h:effectiveTime", "value", ""), "ehdsi-header-elements"),
    "no given": (_drop("h:recordTarget/h:patientRole/h:patient/h:name/h:given"), "ehdsi-recordTarget"),
    "no family": (_drop("h:recordTarget/h:patientRole/h:patient/h:name/h:family"), "ehdsi-recordTarget"),
    "two addr": (_add_copy("h:recordTarget/h:patientRole/h:addr"), "ehdsi-recordTarget"),
    "no addr": (_drop("h:recordTarget/h:patientRole/h:addr"), "ehdsi-recordTarget"),
    "no telecom": (_drop("h:recordTarget/h:patientRole/h:telecom"), "ehdsi-recordTarget"),
    "no patient id": (_drop("h:recordTarget/h:patientRole/h:id"), "ehdsi-recordTarget"),
    "gender X": (_set("h:recordTarget/h:patientRole/h:patient/h:administrativeGenderCode", "code", "X"),
                 "ehdsi-recordTarget"),
    "gender null NI": (_set("h:recordTarget/h:patientRole/h:patient/h:administrativeGenderCode", "nullFlavor", "NI"),
                       "ehdsi-recordTarget"),
    "birthTime null": (_set("h:recordTarget/h:patientRole/h:patient/h:birthTime", "nullFlavor", "UNK"),
                       "ehdsi-recordTarget"),
    "no birthTime": (_drop("h:recordTarget/h:patientRole/h:patient/h:birthTime"), "ehdsi-recordTarget"),
    "no author": (_drop("h:author"), "ehdsi-header-parties"),
    "no custodian": (_drop("h:custodian"), "ehdsi-header-parties"),
    "no structuredBody": (_drop("h:component"), "ehdsi-body"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_is_named_when_broken(case: str) -> None:
    root = _doc()
    breaker, rule = CASES[case]
    breaker(root)
    assert rule in _names(root)


def test_a_patient_without_birth_date_is_refused_by_the_rules() -> None:
    bundle = copy.deepcopy(BUNDLE)
    del bundle["entry"][1]["resource"]["birthDate"]
    data, _ = from_fhir(bundle)
    assert "ehdsi-recordTarget" in {i.details for i in check(data)}


def test_language_from_the_option_when_the_bundle_has_none() -> None:
    from mappers.toolkit.registry import ConvertOptions

    bundle = copy.deepcopy(BUNDLE)
    del bundle["language"]
    data, _ = from_fhir(bundle)
    assert "ehdsi-header-languageCode" in {i.details for i in check(data)}
    data, _ = from_fhir(bundle, ConvertOptions(params=(("language", "pt-PT"),)))
    assert check(data) == []
    assert etree.fromstring(data).find(f"{V3}languageCode").get("code") == "pt-PT"


def test_not_xml_is_a_finding_not_a_crash() -> None:
    assert check(b"<notclosed")[0].severity == "error"
    assert check(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>')[0].details == "cda-doctype-forbidden"
