"""The eHDSI Patient Summary header rules as code: each rule named, checked on a written document.

Rules from the eHDSI CDA templates (art-decor eHDSI project, schematron release 2024-04: the document header and
eHDSIRecordTarget 2.16.840.1.113883.3.1937.777.11.10.100) and CDA R2 (POCD_HD000040). The CDA R2 XML schema is
not part of this project; these checks cover the header rules and the body's structure the writer relies on.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from mappers.cda_cn.safexml import parse_xml
from mappers.ehdsi_cda import codes as C
from mappers.exceptions import Issue, MappingError

V3 = "{urn:hl7-org:v3}"
XSI_SCHEMA = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
LANGUAGE = re.compile(r"^[a-z]{2}-[A-Z]{2}$")
TS = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d+)?)?)?)?)?)?([+-]\d{4})?$")
GENDERS = {"M", "F", "UN"}
Rule = Callable[[etree._Element], list[str]]


def _all(el: etree._Element | None, path: str) -> list[etree._Element]:
    if el is None:
        return []
    return el.findall(path.replace("h:", V3))


def _one(el: etree._Element | None, path: str) -> etree._Element | None:
    found = _all(el, path)
    return found[0] if found else None


def _count(doc: etree._Element, path: str, low: int, high: int | None, what: str) -> list[str]:
    n = len(_all(doc, path))
    if n < low or (high is not None and n > high):
        want = f"exactly {low}" if low == high else (f"at least {low}" if high is None else f"{low}..{high}")
        return [f"{what}: {want}, found {n}"]
    return []


def type_id(doc: etree._Element) -> list[str]:
    t = _one(doc, "h:typeId")
    if t is None or (t.get("root"), t.get("extension")) != C.TYPE_ID:
        return [f"typeId must be root {C.TYPE_ID[0]} extension {C.TYPE_ID[1]}"]
    return []


def no_schema_location(doc: etree._Element) -> list[str]:
    return ["xsi:schemaLocation is not allowed"] if doc.get(XSI_SCHEMA) is not None else []


def template_id(doc: etree._Element) -> list[str]:
    ehdsi = [t.get("root") for t in _all(doc, "h:templateId") if (t.get("root") or "").startswith(C.EHDSI + ".1.")]
    if ehdsi != [C.PS_L3]:
        return [f"exactly one eHDSI document templateId, {C.PS_L3} (Patient Summary L3); found {ehdsi or 'none'}"]
    return []


def header_elements(doc: etree._Element) -> list[str]:
    out = []
    for name in ("id", "code", "title", "effectiveTime", "confidentialityCode", "languageCode"):
        out += _count(doc, f"h:{name}", 1, 1, name)
    code = _one(doc, "h:code")
    if code is not None and (code.get("code"), code.get("codeSystem")) != ("60591-5", "2.16.840.1.113883.6.1"):
        out.append("code must be LOINC 60591-5 (Patient summary Document)")
    et = _one(doc, "h:effectiveTime")
    if et is not None and not TS.match(et.get("value") or ""):
        out.append("effectiveTime must carry a valid timestamp (not null)")
    conf = _one(doc, "h:confidentialityCode")
    if conf is not None and conf.get("code") not in C.CONFIDENTIALITY:
        out.append("confidentialityCode must be an HL7 v3 Confidentiality code")
    return out


def language_code(doc: etree._Element) -> list[str]:
    lang = _one(doc, "h:languageCode")
    if lang is not None and not LANGUAGE.match(lang.get("code") or ""):
        code = lang.get("code")
        why = (f"found {code!r}" if code else "found none: the source states no document language "
               "(Composition.language, Bundle.language)")
        return [f"languageCode must match [a-z]{{2}}-[A-Z]{{2}} (e.g. en-GB); {why}; name it with the language "
                "option (CLI --language en-GB, HTTP language=en-GB)"]
    return []


def record_target(doc: etree._Element) -> list[str]:
    out = _count(doc, "h:recordTarget", 1, 1, "recordTarget")
    role = _one(doc, "h:recordTarget/h:patientRole")
    if role is None:
        return [*out, "recordTarget/patientRole is required"]
    out += _count(role, "h:id", 1, None, "patientRole/id")
    out += _count(role, "h:addr", 1, 1, "patientRole/addr")
    out += _count(role, "h:telecom", 1, None, "patientRole/telecom")
    person = _one(role, "h:patient")
    if person is None:
        return [*out, "patientRole/patient is required"]
    names = _all(person, "h:name")
    if not names:
        out.append("patient/name: at least 1")
    for n, name in enumerate(names, 1):
        for part in ("family", "given"):
            if _one(name, f"h:{part}") is None:
                out.append(f"patient/name[{n}] must have {part}")
    out += _count(person, "h:administrativeGenderCode", 1, 1, "administrativeGenderCode")
    g = _one(person, "h:administrativeGenderCode")
    if g is not None:
        if g.get("nullFlavor"):
            if g.get("nullFlavor") != "UNK":
                out.append("administrativeGenderCode: the only null allowed is UNK")
        elif g.get("code") not in GENDERS or g.get("codeSystem") != "2.16.840.1.113883.5.1":
            out.append("administrativeGenderCode must be M, F or UN (2.16.840.1.113883.5.1)")
    out += _count(person, "h:birthTime", 1, 1, "birthTime")
    b = _one(person, "h:birthTime")
    if b is not None and (b.get("nullFlavor") or not TS.match(b.get("value") or "")):
        out.append("birthTime must carry a date (not null)")
    return out


def parties(doc: etree._Element) -> list[str]:
    out = _count(doc, "h:author", 1, None, "author")
    for n, a in enumerate(_all(doc, "h:author"), 1):
        if _one(a, "h:assignedAuthor") is None:
            out.append(f"author[{n}] must have assignedAuthor")
        if _one(a, "h:time") is None:
            out.append(f"author[{n}] must have time")
    out += _count(doc, "h:custodian", 1, 1, "custodian")
    out += _count(doc, "h:legalAuthenticator", 0, 1, "legalAuthenticator")
    la = _one(doc, "h:legalAuthenticator")
    if la is not None and (_one(la, "h:signatureCode") is None or _one(la, "h:signatureCode").get("code") != "S"):
        out.append("legalAuthenticator/signatureCode must be S")
    return out


def body(doc: etree._Element) -> list[str]:
    sb = _one(doc, "h:component/h:structuredBody")
    if sb is None:
        return ["component/structuredBody is required (Patient Summary level 3)"]
    out = []
    for n, s in enumerate(_all(sb, "h:component/h:section"), 1):
        for part in ("code", "title", "text"):
            if _one(s, f"h:{part}") is None:
                out.append(f"section[{n}] must have {part}")
    return out


RULES: dict[str, Rule] = {
    "ehdsi-header-typeId": type_id, "ehdsi-header-no-schemaLocation": no_schema_location,
    "ehdsi-header-templateId": template_id, "ehdsi-header-elements": header_elements,
    "ehdsi-header-languageCode": language_code, "ehdsi-recordTarget": record_target,
    "ehdsi-header-parties": parties, "ehdsi-body": body,
}


def check(data: bytes) -> list[Issue]:
    """Every rule's findings as error Issues (details: the rule's name); [] when the document meets them all."""
    try:
        root, _, _ = parse_xml(data)
    except MappingError as e:
        return list(e.issues)
    if root.tag != f"{V3}ClinicalDocument":
        return [Issue("error", "structure", "ehdsi-not-cda", "the root element is not ClinicalDocument")]
    return [Issue("error", "business-rule", name, message, "/ClinicalDocument")
            for name, rule in RULES.items() for message in rule(root)]
