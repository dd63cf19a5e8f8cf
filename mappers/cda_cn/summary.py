"""IPS document (FHIR) → WS/T 500 part 1 medical-record summary (病历概要, C0001).

The header is the lab/exam writer's (mappers.cda_cn.write: realm CN, typeId POCD_MT000040, templateId
2.16.156.10011.2.1.1.21, recordTarget with the resident id and the Han-character name, author, custodian). The body
follows the C0001 template's sections, driven by tables/ips-to-c0001.json (which IPS section goes to which section
and data element, and whether a source confirms the mapping): past illness (疾病史, 手术史), allergies (过敏史),
immunisations (预防接种史), personal history (个人史) as text, and the 卫生事件 section with coded diagnoses
(ICD-10) and key medications. Every IPS section with no place in C0001, every entry written by an unverified
mapping and every coded fact that could not be carried is reported.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from mappers.cda_cn import systems as S
from mappers.cda_cn import write as W
from mappers.cda_cn.context import Notes
from mappers.cda_cn.model import Code, Id, Report
from mappers.cda_cn.read_fhir import _Bundle, _party, _patient
from mappers.cda_cn.times import local_ts
from mappers.exceptions import EmitError
from mappers.ips.compose import is_ips_document
from mappers.toolkit.hanzi_names import REPRESENTATION

ICD10 = "http://hl7.org/fhir/sid/icd-10"
NATIONAL_ICD10 = f"urn:oid:{S.OID_ICD10_CN}"  # the source's own national code, kept by the China readers
LOINC_OID = "2.16.840.1.113883.6.1"


@cache
def table() -> dict[str, Any]:
    import json

    return json.loads((Path(__file__).parent / "tables" / "ips-to-c0001.json").read_text(encoding="utf-8"))


def is_ips(bundle: Any) -> bool:
    """Whether `bundle` is an IPS document (mappers.ips.compose.is_ips_document)."""
    return is_ips_document(bundle)


def _text(cc: Any) -> str:
    if not isinstance(cc, dict):
        return ""
    if isinstance(cc.get("text"), str) and cc["text"]:
        return cc["text"]
    return next((str(c.get("display") or c.get("code")) for c in cc.get("coding") or []
                 if isinstance(c, dict) and (c.get("display") or c.get("code"))), "")


def _when(res: dict[str, Any], *names: str) -> str:
    v = next((res[n] for n in names if isinstance(res.get(n), str)), "")
    if not v:
        period = next((res[n] for n in names if isinstance(res.get(n), dict)), {})
        v = period.get("start", "") if isinstance(period, dict) else ""
    return v[:10]


def _line(res: dict[str, Any]) -> str:
    """One fact as the text a C0001 history element holds: name (date)."""
    rtype = res.get("resourceType")
    if rtype == "AllergyIntolerance":
        parts = [_text(res.get("code"))]
        reactions = [_text(m) for r in res.get("reaction") or [] if isinstance(r, dict)
                     for m in r.get("manifestation") or []]
        if reactions:
            parts.append("、".join(x for x in reactions if x))
        if res.get("criticality"):
            parts.append(str(res["criticality"]))
        return "，".join(p for p in parts if p)
    if rtype == "Immunization":
        name, when = _text(res.get("vaccineCode")), _when(res, "occurrenceDateTime")
    elif rtype == "Procedure":
        name, when = _text(res.get("code")), _when(res, "performedDateTime", "performedPeriod")
    elif rtype == "Condition":
        name, when = _text(res.get("code")), _when(res, "onsetDateTime", "onsetPeriod", "recordedDate")
    else:
        name = _text(res.get("code"))
        value = res.get("valueCodeableConcept") or res.get("valueString") or res.get("valueQuantity")
        shown = _text(value) if isinstance(value, dict) and "value" not in value else (
            f"{value.get('value')} {value.get('unit', '')}".strip() if isinstance(value, dict) else str(value or ""))
        name, when = f"{name}：{shown}" if shown else name, _when(res, "effectiveDateTime", "effectivePeriod")
    return f"{name}（{when}）" if when and name else name


def _patient_name(patient: dict[str, Any]) -> str:
    """The Han-character name (ISO 21090 IDE form) when the patient has one, else the official name's text."""
    for n in patient.get("name") or []:
        if isinstance(n, dict) and any(isinstance(e, dict) and e.get("url") == REPRESENTATION
                                       and e.get("valueCode") == "IDE" for e in n.get("extension") or []):
            return str(n.get("text") or (n.get("family", "") + "".join(n.get("given") or [])))
    return ""


def _sections(b: _Bundle, comp: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """IPS section code → the resources its entries name."""
    out: dict[str, list[dict[str, Any]]] = {}
    for sec in comp.get("section") or []:
        if not isinstance(sec, dict):
            continue
        code = next((c.get("code") for c in (sec.get("code") or {}).get("coding") or [] if isinstance(c, dict)), None)
        if code:
            out.setdefault(code, []).extend(r for e in sec.get("entry") or [] if (r := b.get(e)) is not None)
    return out


def from_ips(bundle: dict[str, Any], notes: Notes) -> etree._Element:
    """The C0001 ClinicalDocument of an IPS document. Raises EmitError when the document names no patient or
    states no date."""
    b = _Bundle(bundle, notes)
    comp = bundle["entry"][0]["resource"]
    subject = b.get(comp.get("subject"))
    if subject is None or subject.get("resourceType") != "Patient":
        raise EmitError("the IPS Composition's subject is not a Patient of the Bundle", details="cda-no-patient",
                        expression="Composition.subject")
    patient, _ = _patient(subject, notes)
    han = _patient_name(subject)
    if han:
        patient = replace(patient, name=han)
    date = local_ts(comp["date"]) if isinstance(comp.get("date"), str) else ""
    if not date:
        raise EmitError("no time for ClinicalDocument/effectiveTime: the IPS Composition has no date",
                        details="cda-no-effective-time", expression="Composition.date")
    ident = comp.get("identifier") if isinstance(comp.get("identifier"), dict) else {}
    doc_id = Id(S.OID_DOC_ID, str(ident.get("value") or comp.get("id") or ""))
    authors = tuple(p for a in comp.get("author") or [] if (r := b.get(a)) is not None
                    and r.get("resourceType") in ("Practitioner", "PractitionerRole")
                    and (p := _party(r, notes, date)) is not None)
    orgs = [b.get(a) for a in comp.get("author") or []]
    custodian = _party(b.get(comp.get("custodian")), notes) or next(
        (_party(o, notes) for o in orgs if o is not None and o.get("resourceType") == "Organization"), None)
    report = Report(kind="summary", type_code="C0001", title="病历概要", doc_id=doc_id, effective_time=date,
                    patient=patient, authors=authors, custodian=custodian)
    if not authors:
        notes.warn("cda-no-author", "no Practitioner authored the IPS document; the author is written with a null id",
                   "ClinicalDocument/author")
    doc = etree.Element(f"{{{W.V3}}}ClinicalDocument", nsmap=W.NSMAP)
    doc.set(f"{{{W.XSI}}}schemaLocation", "urn:hl7-org:v3 ../sdschemas/CDA.xsd")
    W._header(doc, report)
    W._record_target(doc, report)
    W._parties(doc, report)
    relates = [r for r in comp.get("relatesTo") or [] if isinstance(r, dict)]
    if relates:
        notes.inform("cda-relates-to", "Composition.relatesTo is not carried (a C0001 relatedDocument names only a "
                     "WS/T 500 parent document)", "Composition.relatesTo")
    _body(doc, b, comp, notes)
    return doc


def _body(doc: etree._Element, b: _Bundle, comp: dict[str, Any], notes: Notes) -> None:
    body = W._el(W._el(doc, "component"), "structuredBody")
    found = _sections(b, comp)
    spec = table()
    used: set[str] = set()
    written: dict[str, etree._Element] = {}
    for row in spec["sections"]:
        items = [r for code in row["ips"] for r in found.get(code, [])]
        used.update(row["ips"])
        if row["ips"] == ["11450-4", "11348-0"]:
            items = [r for r in items if r.get("resourceType") == "Condition"]
        if not items:
            continue
        text = "；".join(x for r in items if (x := _line(r)))
        if not text:
            continue
        section = written.get(row["section"])
        if section is None:
            section = W._el(W._el(body, "component"), "section")
            W._el(section, "code", code=row["section"], codeSystem=LOINC_OID, codeSystemName="LOINC",
                  displayName=row["sectionDisplay"])
            W._el(section, "text", text)
            written[row["section"]] = section
        obs = W._de_obs(W._el(section, "entry"), row["de"], row["deName"])
        W._value(obs, "ST", text)
        if row["verified"] != "template":
            notes.warn("cda-unverified-mapping", f"{len(items)} IPS entr{'y' if len(items) == 1 else 'ies'} of "
                       f"section {row['ips'][0]} written as {row['de']} {row['deName']}: {row['note']}",
                       f"Composition.section.where(code.coding.code='{row['ips'][0]}')")
    _events(body, b, found, spec["events"], notes)
    used.add("10160-0")
    for code, items in found.items():
        if code not in used and items:
            why = spec["not_carried"].get(code, "no C0001 element")
            notes.warn("cda-not-carried", f"{len(items)} entr{'y' if len(items) == 1 else 'ies'} of IPS section "
                       f"{code} not carried: {why}", f"Composition.section.where(code.coding.code='{code}')")


def _events(body: etree._Element, b: _Bundle, found: dict[str, list[dict[str, Any]]], spec: dict[str, Any],
            notes: Notes) -> None:
    """The 卫生事件 section: coded diagnoses (ICD-10) and key medications."""
    diagnoses: list[tuple[Code, bool]] = []  # (code, whether it is a WHO code under the national OID)
    for res in [*found.get("11450-4", []), *found.get("11348-0", [])]:
        if res.get("resourceType") != "Condition":
            continue
        codings = [c for c in (res.get("code") or {}).get("coding") or [] if isinstance(c, dict) and c.get("code")]
        national = next((c for c in codings if c.get("system") == NATIONAL_ICD10), None)
        icd = national or next((c for c in codings if c.get("system") == ICD10), None)
        if icd is None:
            notes.inform("cda-diagnosis-not-coded", f"Condition/{res.get('id')} has no ICD-10 coding: carried as "
                         "text (疾病史) only, not as a coded diagnosis", "Condition.code")
            continue
        diagnoses.append((Code(icd["code"], spec["diagnosis"]["codeSystem"], icd.get("display") or _text(res["code"]),
                               "ICD-10"), national is None))
    medications = [r for r in found.get("10160-0", []) if r.get("resourceType") in ("MedicationStatement",
                                                                                    "MedicationRequest")]
    if not diagnoses and not medications:
        return
    section = W._el(W._el(body, "component"), "section")
    W._el(section, "code", displayName=spec["sectionDisplay"])
    W._el(section, "text")
    for d, _ in diagnoses:
        obs = W._de_obs(W._el(section, "entry"), spec["diagnosis"]["de"], spec["diagnosis"]["deName"])
        W._cd(obs, "value", d, "CD")
    who = sum(1 for _, is_who in diagnoses if is_who)
    if who:
        notes.warn("cda-unverified-mapping", f"{who} WHO ICD-10 code(s) written as {spec['diagnosis']['de']}: "
                   f"{spec['diagnosis']['note']}", "Condition.code")
    for med in medications:
        name = _text(med.get("medicationCodeableConcept"))
        if not name and isinstance(med.get("medicationReference"), dict):
            target = b.get(med["medicationReference"])
            name = _text((target or {}).get("code")) or str(med["medicationReference"].get("display") or "")
        if not name:
            notes.warn("cda-not-carried", f"{med.get('resourceType')}/{med.get('id')} names no medication text",
                       "MedicationStatement.medication")
            continue
        obs = W._de_obs(W._el(section, "entry"), spec["medication"]["de"], spec["medication"]["deName"])
        W._value(obs, "ST", name)
        usage = "；".join(str(d.get("text")) for d in med.get("dosage") or med.get("dosageInstruction") or []
                         if isinstance(d, dict) and d.get("text"))
        if usage:
            rel = W._el(obs, "entryRelationship", typeCode="COMP")
            W._value(W._de_obs(rel, spec["medication"]["usage"], spec["medication"]["usageName"]), "ST", usage)
        elif med.get("dosage") or med.get("dosageInstruction"):
            notes.inform("cda-not-carried", f"{med.get('resourceType')}/{med.get('id')}: a dosage without text is not "
                         f"carried ({spec['medication']['usageName']} is text)", "MedicationStatement.dosage")
