"""Structural checks of a CDA R2 document against the POCD_MT000040 content model (the subset WS/T 500 lab and exam
documents use), since no package registry ships the CDA R2 schemas (checked: PyPI and npm, 2026-07).

Checked: child elements allowed and in schema order, required children present, the CDA namespace, typeId, every
`id` with a root (or nullFlavor), observation values with an xsi:type, coded values with a code (or nullFlavor),
and TS values shaped as timestamps. The national header extensions (patientRole/patientType, patient/age,
patient/nationality) are allowed where the national templates put them.
"""

from __future__ import annotations

import re

from lxml import etree

V3 = "urn:hl7-org:v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_INFRA = ["realmCode", "typeId", "templateId"]
_ORG = [*_INFRA, "id", "name", "telecom", "addr", "standardIndustryClassCode", "asOrganizationPartOf"]
_ENTRY_CHOICE = ["act", "encounter", "observation", "observationMedia", "organizer", "procedure", "regionOfInterest",
                 "substanceAdministration", "supply"]
SEQUENCE: dict[str, list[str]] = {
    "ClinicalDocument": [*_INFRA, "id", "code", "title", "effectiveTime", "confidentialityCode", "languageCode",
                         "setId", "versionNumber", "copyTime", "recordTarget", "author", "dataEnterer", "informant",
                         "custodian", "informationRecipient", "legalAuthenticator", "authenticator", "participant",
                         "inFulfillmentOf", "documentationOf", "relatedDocument", "authorization", "componentOf",
                         "component"],
    "recordTarget": [*_INFRA, "patientRole"],
    "patientRole": [*_INFRA, "id", "addr", "telecom", "patient", "providerOrganization"],
    "patient": [*_INFRA, "id", "name", "administrativeGenderCode", "birthTime", "maritalStatusCode",
                "religiousAffiliationCode", "raceCode", "ethnicGroupCode", "guardian", "birthplace",
                "languageCommunication"],
    "author": [*_INFRA, "functionCode", "time", "assignedAuthor"],
    "assignedAuthor": [*_INFRA, "id", "code", "addr", "telecom", "assignedPerson", "assignedAuthoringDevice",
                       "representedOrganization"],
    "assignedPerson": [*_INFRA, "name"],
    "custodian": [*_INFRA, "assignedCustodian"],
    "assignedCustodian": [*_INFRA, "representedCustodianOrganization"],
    "representedCustodianOrganization": [*_INFRA, "id", "name", "telecom", "addr"],
    "legalAuthenticator": [*_INFRA, "time", "signatureCode", "assignedEntity"],
    "authenticator": [*_INFRA, "time", "signatureCode", "assignedEntity"],
    "assignedEntity": [*_INFRA, "id", "code", "addr", "telecom", "assignedPerson", "representedOrganization"],
    "participant": [*_INFRA, "time", "awarenessCode", "associatedEntity"],
    "associatedEntity": [*_INFRA, "id", "code", "addr", "telecom", "associatedPerson", "scopingOrganization"],
    "scopingOrganization": _ORG, "wholeOrganization": _ORG, "serviceProviderOrganization": _ORG,
    "representedOrganization": _ORG,
    "asOrganizationPartOf": [*_INFRA, "id", "code", "statusCode", "effectiveTime", "wholeOrganization"],
    "componentOf": [*_INFRA, "encompassingEncounter"],
    "encompassingEncounter": [*_INFRA, "id", "code", "effectiveTime", "dischargeDispositionCode",
                              "responsibleParty", "encounterParticipant", "location"],
    "encompassingEncounter/location": [*_INFRA, "healthCareFacility"],
    "healthCareFacility": [*_INFRA, "id", "code", "location", "serviceProviderOrganization"],
    "ClinicalDocument/component": [*_INFRA, "nonXMLBody", "structuredBody"],
    "structuredBody": [*_INFRA, "confidentialityCode", "languageCode", "component"],
    "structuredBody/component": [*_INFRA, "section"],
    "section": [*_INFRA, "id", "code", "title", "text", "confidentialityCode", "languageCode", "subject", "author",
                "informant", "entry", "component"],
    "entry": [*_INFRA, *_ENTRY_CHOICE],
    "organizer": [*_INFRA, "id", "code", "statusCode", "effectiveTime", "subject", "specimen", "performer", "author",
                  "informant", "participant", "reference", "precondition", "component"],
    "organizer/component": [*_INFRA, "sequenceNumber", "seperatableInd", *_ENTRY_CHOICE],
    "observation": [*_INFRA, "id", "code", "derivationExpr", "text", "statusCode", "effectiveTime", "priorityCode",
                    "repeatNumber", "languageCode", "value", "interpretationCode", "methodCode", "targetSiteCode",
                    "subject", "specimen", "performer", "author", "informant", "participant", "entryRelationship",
                    "reference", "precondition", "referenceRange"],
    "entryRelationship": [*_INFRA, "sequenceNumber", "seperatableInd", *_ENTRY_CHOICE],
    "referenceRange": [*_INFRA, "observationRange"],
    "observationRange": [*_INFRA, "code", "text", "value", "interpretationCode"],
    "effectiveTime": ["low", "center", "width", "high"],
    "value": ["low", "center", "width", "high", "translation", "originalText"],
}
# Non-CDA elements of the national templates, tolerated in these parents.
NATIONAL = {"patientRole": {"patientType"}, "patient": {"age", "nationality"}, "patientType": {"patienttypeCode"}}
REQUIRED: dict[str, list[str]] = {
    "ClinicalDocument": ["typeId", "id", "code", "effectiveTime", "confidentialityCode", "recordTarget", "author",
                         "custodian", "component"],
    "recordTarget": ["patientRole"], "patientRole": ["id"], "author": ["time", "assignedAuthor"],
    "assignedAuthor": ["id"], "custodian": ["assignedCustodian"],
    "assignedCustodian": ["representedCustodianOrganization"], "representedCustodianOrganization": ["id"],
    "legalAuthenticator": ["time", "signatureCode", "assignedEntity"],
    "authenticator": ["time", "signatureCode", "assignedEntity"], "assignedEntity": ["id"],
    "participant": ["associatedEntity"], "componentOf": ["encompassingEncounter"],
    "encompassingEncounter": ["effectiveTime"], "structuredBody": ["component"],
    "structuredBody/component": ["section"], "organizer": ["statusCode"], "observation": ["code"],
    "referenceRange": ["observationRange"],
}
_TS = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?$")
_TS_ELEMENTS = {"effectiveTime", "time", "birthTime", "low", "high"}
_CODED = {"CD", "CE", "CV", "CO", "CS"}


def _name(el: etree._Element) -> str:
    return etree.QName(el).localname


def _key(el: etree._Element) -> str:
    parent = el.getparent()
    scoped = f"{_name(parent)}/{_name(el)}" if parent is not None else _name(el)
    return scoped if scoped in SEQUENCE or scoped in REQUIRED else _name(el)


def check(doc: etree._Element) -> list[str]:
    """Problems found in `doc` ('line N: <where>: what is wrong'); an empty list means structurally valid."""
    problems: list[str] = []
    if etree.QName(doc).namespace != V3 or _name(doc) != "ClinicalDocument":
        return [f"line {doc.sourceline}: root is {doc.tag}, expected {{{V3}}}ClinicalDocument"]
    type_id = doc.find(f"{{{V3}}}typeId")
    if type_id is not None and (type_id.get("root") != "2.16.840.1.113883.1.3"
                                or type_id.get("extension") not in ("POCD_MT000040", "POCD_HD000040")):
        problems.append(f"line {type_id.sourceline}: typeId must be 2.16.840.1.113883.1.3 / POCD_HD000040")
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        where = f"line {el.sourceline}: <{_name(el)}>"
        if etree.QName(el).namespace != V3:
            problems.append(f"{where} is not in the CDA namespace")
            continue
        key = _key(el)
        children = [c for c in el if isinstance(c.tag, str)]
        order = SEQUENCE.get(key)
        if order is not None:
            extras = NATIONAL.get(_name(el), set())
            last = -1
            for c in children:
                n = _name(c)
                if n in extras:
                    continue
                if n not in order:
                    problems.append(f"line {c.sourceline}: <{n}> is not allowed in <{_name(el)}>")
                    continue
                i = order.index(n)
                if i < last:
                    problems.append(f"line {c.sourceline}: <{n}> is out of order in <{_name(el)}> (expected "
                                    f"before <{order[last]}>)")
                last = max(last, i)
        names = {_name(c) for c in children}
        for needed in REQUIRED.get(key, []):
            if needed not in names:
                problems.append(f"{where} lacks required <{needed}>")
        if _name(el) == "id" and not (el.get("root") or el.get("nullFlavor")):
            problems.append(f"{where} has neither root nor nullFlavor")
        if _name(el) == "value" and el.getparent() is not None and \
                _name(el.getparent()) in ("observation", "observationRange"):
            xsi = (el.get(XSI_TYPE) or "").split(":")[-1]
            if not xsi:
                problems.append(f"{where} has no xsi:type")
            elif xsi in _CODED and not (el.get("code") or el.get("nullFlavor")):
                problems.append(f"{where} is coded ({xsi}) but has no code or nullFlavor")
        parent_name = _name(el.getparent()) if el.getparent() is not None else ""
        is_ts = _name(el) in _TS_ELEMENTS and (_name(el) not in ("low", "high") or parent_name == "effectiveTime")
        if is_ts and el.get("value") and not _TS.match(el.get("value", "")):
            problems.append(f"{where} value {el.get('value')!r} is not an HL7 TS")
    return problems
