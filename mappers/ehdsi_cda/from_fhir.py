"""An IPS document Bundle (or a plain Bundle) → an eHDSI Patient Summary L3 (CDA R2).

The header follows the eHDSI rules (mappers.ehdsi_cda.rules checks them on the output); each Composition section
becomes the eHDSI section with its narrative and the entries of its resources. A Bundle that is not a document is
first composed into one: by `mappers.ips.compose.compose` when that module exists, else here, section by resource
type.
"""

from __future__ import annotations

import importlib
from typing import Any

from lxml import etree

from mappers.cda_cn.times import fhir_to_ts
from mappers.conversion import load_bundle
from mappers.ehdsi_cda import codes as C
from mappers.ehdsi_cda.narrative import from_xhtml
from mappers.ehdsi_cda.rules import LANGUAGE
from mappers.ehdsi_cda.write_entries import WRITERS, vitals
from mappers.ehdsi_cda.write_header import assigned, organization, participants, record_target
from mappers.ehdsi_cda.writer import Writer, el, text_el
from mappers.exceptions import EmitError, Issue, ParseError
from mappers.fhir.shape import check_resource
from mappers.ids import resource_id
from mappers.toolkit.registry import ConvertOptions

# Resource type (and, for Observations, category) → the section a plain Bundle's resource goes to.
_SECTION_OF = {"Condition": "11450-4", "AllergyIntolerance": "48765-2", "MedicationStatement": "10160-0",
               "MedicationRequest": "10160-0", "Immunization": "11369-6", "Procedure": "47519-4",
               "DeviceUseStatement": "46264-8", "DiagnosticReport": "30954-2"}
_OBS_SECTION = {"laboratory": "30954-2", "vital-signs": "8716-3", "social-history": "29762-2"}
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
C_V3 = "urn:hl7-org:v3"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
# list-empty-reason ⇄ HL7 v3 NullFlavor on an empty section (R4 list-empty-reason; v3 NullFlavor)
EMPTY_TO_NULL = {"nilknown": "NI", "notasked": "NASK", "withheld": "MSK", "unavailable": "NAV", "notstarted": "NA",
                 "closed": "NA"}
NULL_TO_EMPTY = {"NI": "nilknown", "NASK": "notasked", "MSK": "withheld", "NAV": "unavailable", "NA": "notstarted",
                 "UNK": "unavailable"}


def index(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Resources by every way a reference inside the Bundle names them: fullUrl, Type/id, and the fullUrl's tail."""
    out: dict[str, dict[str, Any]] = {}
    for e in bundle.get("entry", []):
        res = e.get("resource")
        if not isinstance(res, dict):
            continue
        full = e.get("fullUrl", "")
        if full:
            out[full] = res
            tail = "/".join(full.rstrip("/").split("/")[-2:])
            out.setdefault(tail, res)
        if res.get("id"):
            out.setdefault(f"{res['resourceType']}/{res['id']}", res)
            out.setdefault(f"urn:uuid:{res['id']}", res)
    return out


def compose(bundle: dict[str, Any], opts: ConvertOptions) -> tuple[dict[str, Any], list[Issue]]:
    """A document Bundle for `bundle`: itself when it is one, else mappers.ips.compose's, else one made here."""
    entries = [e.get("resource") or {} for e in bundle.get("entry", [])]
    if bundle.get("type") == "document" and entries and entries[0].get("resourceType") == "Composition":
        return bundle, []
    try:
        ips = importlib.import_module("mappers.ips.compose")
    except ModuleNotFoundError as e:
        if e.name not in ("mappers.ips", "mappers.ips.compose"):
            raise
        return _compose_here(bundle), [Issue("information", "informational", "ehdsi-composed",
                                             "the input is not a document: its resources were grouped into "
                                             "Patient Summary sections by type")]
    doc, issues = ips.compose(bundle, opts)
    return doc, list(issues)


def _compose_here(bundle: dict[str, Any]) -> dict[str, Any]:
    resources = [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    if patient is None:
        raise EmitError("the Bundle has no Patient: a Patient Summary is about one patient",
                        details="ehdsi-no-patient")
    sections: dict[str, list[dict[str, str]]] = {}
    for r in resources:
        code = _SECTION_OF.get(r.get("resourceType", ""))
        if r.get("resourceType") == "Observation":
            cats = {c.get("code") for cc in r.get("category", []) for c in cc.get("coding", [])
                    if c.get("system") == _CATEGORY}
            code = next((_OBS_SECTION[c] for c in sorted(cats) if c in _OBS_SECTION), None)
            if code == "30954-2" and any(f"urn:uuid:{r.get('id')}" == x.get("reference") or
                                         f"Observation/{r.get('id')}" == x.get("reference")
                                         for d in resources if d.get("resourceType") == "DiagnosticReport"
                                         for x in d.get("result", [])):
                continue  # reached through its DiagnosticReport
        if code:
            sections.setdefault(code, []).append({"reference": f"urn:uuid:{r['id']}"})
    comp: dict[str, Any] = {"resourceType": "Composition", "id": resource_id("Composition", bundle.get("id", "")),
                            "status": "final", "type": {"coding": [{"system": C.LOINC, "code": "60591-5"}]},
                            "subject": {"reference": f"urn:uuid:{patient['id']}"},
                            "title": "Patient Summary", "section": []}
    if bundle.get("timestamp"):
        comp["date"] = bundle["timestamp"]
    for code in (*C.REQUIRED, *(s.code for s in C.SECTIONS if s.code not in C.REQUIRED)):
        if code in sections or code in C.REQUIRED:
            sec: dict[str, Any] = {"title": C.BY_CODE[code].title,
                                   "code": {"coding": [{"system": C.LOINC, "code": code}]}}
            if code in sections:
                sec["entry"] = sections[code]
            comp["section"].append(sec)
    out = dict(bundle)
    out["type"] = "document"
    out["entry"] = [{"fullUrl": f"urn:uuid:{comp['id']}", "resource": comp},
                    *({"fullUrl": e.get("fullUrl") or f"urn:uuid:{e['resource']['id']}", "resource": e["resource"]}
                      for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict))]
    return out


def from_fhir(data: bytes | str | dict[str, Any], opts: ConvertOptions | None = None) -> tuple[bytes, list[Issue]]:
    """The eHDSI PS L3 for a Bundle, and what could not be written. Raises EmitError when the Bundle has no
    Patient Summary subject, ParseError when an element it reads is not shaped as FHIR R4 JSON says."""
    opts = opts or ConvertOptions()
    bundle = load_bundle(data)
    check_resource(bundle, "Bundle")  # JSON types of the elements the FHIR readers share (mappers.fhir.shape)
    for i, e in enumerate(bundle.get("entry") or []):
        if isinstance(e, dict) and "resource" in e:
            check_resource(e["resource"], f"Bundle.entry[{i}].resource")
    w = Writer({}, [])
    try:
        return _write(bundle, opts, w)
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as e:
        # A resource type the shape table does not cover, with an element of the wrong JSON type: refused, naming
        # the resource being written, never a crash.
        raise ParseError(f"{w.current or 'the Bundle'} has an element that is not shaped as FHIR R4 JSON says "
                         f"({type(e).__name__}: {e})", details="fhir-wrong-type",
                         expression=w.current or "Bundle") from None


def _write(bundle: dict[str, Any], opts: ConvertOptions, w: Writer) -> tuple[bytes, list[Issue]]:
    doc, issues = compose(bundle, opts)
    if not isinstance(doc.get("entry"), list) or not doc["entry"] or not isinstance(doc["entry"][0], dict):
        raise EmitError("the document Bundle has no Composition", details="ehdsi-no-composition",
                        expression="Bundle.entry[0]")
    w.by_ref, w.issues = index(doc), issues
    comp = doc["entry"][0]["resource"]
    pat = w.get(comp.get("subject"))
    if pat is None or pat.get("resourceType") != "Patient":
        raise EmitError("the Composition's subject is not a Patient in the Bundle", details="ehdsi-no-patient",
                        expression="Composition.subject")
    root = el(None, "ClinicalDocument", classCode="DOCCLIN", moodCode="EVN")
    el(root, "typeId", root=C.TYPE_ID[0], extension=C.TYPE_ID[1])
    el(root, "templateId", root=C.PS_L3)
    ident = comp.get("identifier") or doc.get("identifier")
    w.ids(root, ident)
    if root.find(f"{{{C_V3}}}id") is None:
        el(root, "id", root=resource_id("ClinicalDocument", doc.get("id", ""), comp.get("id", "")))
    w.code(root, "code", comp.get("type") or {"coding": [{"system": C.LOINC, "code": "60591-5"}]})
    text_el(root, "title", comp.get("title") or "Patient Summary")
    when = comp.get("date") or doc.get("timestamp") or ""
    el(root, "effectiveTime", **({"value": fhir_to_ts(when)} if when else {"nullFlavor": "UNK"}))
    conf = comp.get("confidentiality") or "N"
    el(root, "confidentialityCode", code=conf, codeSystem="2.16.840.1.113883.5.25")
    lang = comp.get("language") or doc.get("language") or bundle.get("language") or ""
    given = opts.param("language") or ""
    if not lang or (given.lower().startswith(f"{lang.lower()}-") and not LANGUAGE.match(lang)):
        lang = given  # none stated, or a bare language (en, from HL7 v2 MSH-19) the option gives its region
    el(root, "languageCode", **({"code": lang} if lang else {"nullFlavor": "UNK"}))
    record_target(w, root, pat)
    authors = [a for a in (w.get(x) for x in comp.get("author", [])) if a]
    if not authors:
        w.lost("ehdsi-no-author", "the Composition names no author in the Bundle; written as unknown", "Composition",
               "warning")
    for a in authors or [{}]:
        au = el(root, "author", typeCode="AUT")
        el(au, "time", **({"value": fhir_to_ts(when)} if when else {"nullFlavor": "UNK"}))
        if a:
            assigned(w, au, "assignedAuthor", a)
        else:
            el(el(au, "assignedAuthor"), "id", nullFlavor="NI")
    cust = w.get(comp.get("custodian"))
    if cust is None:
        cust = next((w.get(a.get("organization")) for a in authors if a.get("resourceType") == "PractitionerRole"
                     and w.get(a.get("organization"))), None)
        cust = cust or next((a for a in authors if a.get("resourceType") == "Organization"), None)
    ac = el(el(root, "custodian", typeCode="CST"), "assignedCustodian")
    if cust:
        organization(w, ac, "representedCustodianOrganization", cust)
    else:
        el(el(ac, "representedCustodianOrganization"), "id", nullFlavor="NI")
        w.lost("ehdsi-no-custodian", "the Composition names no custodian; written as unknown", "Composition",
               "warning")
    for att in comp.get("attester", []):
        who = w.get(att.get("party"))
        tag = "legalAuthenticator" if att.get("mode") == "legal" else "authenticator"
        if who is None or (tag == "legalAuthenticator" and root.find(f"{{{C_V3}}}legalAuthenticator") is not None):
            w.lost("ehdsi-attester-not-written", f"an attester ({att.get('mode')}) is not written",
                   "Composition.attester")
            continue
        la = el(root, tag, typeCode="LA" if tag == "legalAuthenticator" else "AUTHEN")
        el(la, "time", **({"value": fhir_to_ts(att["time"])} if att.get("time") else {"nullFlavor": "UNK"}))
        el(la, "signatureCode", code="S")
        assigned(w, la, "assignedEntity", who)
    participants(w, root, pat)
    events = comp.get("event") or [{}]
    for ev in events:
        se = el(el(root, "documentationOf", typeCode="DOC"), "serviceEvent", classCode="PCPR", moodCode="EVN")
        per = ev.get("period") or {}
        et = el(se, "effectiveTime")
        for k, tag in (("start", "low"), ("end", "high")):
            if per.get(k):
                el(et, tag, value=fhir_to_ts(per[k]))
        if not per:
            et.set("nullFlavor", "UNK")
        for d in ev.get("detail", []):
            who = w.get(d)
            if who:
                assigned(w, el(se, "performer", typeCode="PRF"), "assignedEntity", who)
    for rel in comp.get("relatesTo", []):
        code = {"transforms": "XFRM", "replaces": "RPLC", "appends": "APND"}.get(rel.get("code", ""))
        if code and rel.get("targetIdentifier"):
            w.ids(el(el(root, "relatedDocument", typeCode=code), "parentDocument"), rel["targetIdentifier"])
    body = el(el(root, "component"), "structuredBody")
    for sec in comp.get("section", []):
        section(w, body, sec)
    unwritten(w, doc)
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out, w.issues


# The elements the writer carries into CDA, per resource type (mappers.ehdsi_cda.write_header, .write_entries);
# anything else a resource holds is reported, once per type and element.
WRITTEN = {
    "Composition": {"identifier", "status", "type", "subject", "date", "author", "title", "confidentiality",
                    "attester", "custodian", "relatesTo", "event", "section", "language"},
    "Patient": {"identifier", "name", "telecom", "gender", "birthDate", "address", "contact", "communication",
                "managingOrganization", "maritalStatus"},
    "Condition": {"identifier", "clinicalStatus", "verificationStatus", "category", "severity", "code", "subject",
                  "onsetDateTime", "abatementDateTime"},
    "AllergyIntolerance": {"identifier", "clinicalStatus", "verificationStatus", "type", "category", "criticality",
                           "code", "patient", "onsetDateTime", "reaction"},
    "MedicationStatement": {"identifier", "status", "medicationReference", "medicationCodeableConcept", "subject",
                            "effectiveDateTime", "effectivePeriod", "dosage", "reasonCode", "informationSource",
                            "note"},
    "MedicationRequest": {"identifier", "status", "medicationReference", "medicationCodeableConcept", "subject",
                          "dosageInstruction", "reasonCode", "note", "intent"},
    "Medication": {"code", "form", "ingredient"},
    "Immunization": {"identifier", "status", "vaccineCode", "patient", "occurrenceDateTime", "route", "site",
                     "lotNumber", "manufacturer", "performer", "protocolApplied"},
    "Procedure": {"identifier", "status", "code", "subject", "performedDateTime", "performedPeriod", "bodySite"},
    "DeviceUseStatement": {"identifier", "status", "subject", "timingDateTime", "timingPeriod", "device"},
    "Device": {"identifier", "type", "patient"},
    "Observation": {"identifier", "status", "category", "code", "subject", "effectiveDateTime", "effectivePeriod",
                    "valueQuantity", "valueCodeableConcept", "valueString", "valueInteger", "valueBoolean",
                    "valueDateTime", "valueRange", "dataAbsentReason", "interpretation", "method", "bodySite",
                    "performer", "component", "referenceRange", "hasMember"},
    "DiagnosticReport": {"identifier", "status", "category", "code", "subject", "effectiveDateTime",
                         "effectivePeriod", "performer", "result"},
    "ClinicalImpression": {"identifier", "status", "code", "subject", "effectiveDateTime", "effectivePeriod",
                           "investigation"},
    "Practitioner": {"identifier", "name", "telecom", "address"},
    "PractitionerRole": {"identifier", "practitioner", "organization", "code"},
    "Organization": {"identifier", "name", "telecom", "address"},
}
_RESOURCE = {"resourceType", "id", "meta", "text", "language", "implicitRules"}


def unwritten(w: Writer, doc: dict[str, Any]) -> None:
    """Report what of the Bundle did not reach the CDA: elements the writer does not carry (per type and element),
    and resources no section or header element referenced (per type)."""
    missed: dict[tuple[str, str], int] = {}
    unreached: dict[str, int] = {}
    for e in doc.get("entry", [])[1:]:
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict):
            continue
        rtype = str(res.get("resourceType"))
        if id(res) not in w.reached:
            unreached[rtype] = unreached.get(rtype, 0) + 1
            continue
        known = WRITTEN.get(rtype)
        if known is None:
            continue  # a type with no eHDSI entry: reported as such where its section was written
        for key in res:
            name = key.lstrip("_")
            if name not in known and name not in _RESOURCE:
                missed[(rtype, name)] = missed.get((rtype, name), 0) + 1
    for (rtype, name), n in sorted(missed.items()):
        w.lost("ehdsi-element-not-written", f"{rtype}.{name} has no place in the eHDSI CDA entry ({n} resource(s)); "
               "not written", f"{rtype}.{name}")
    for rtype, n in sorted(unreached.items()):
        w.lost("ehdsi-resource-not-written", f"{n} {rtype} resource(s) are in no Patient Summary section; not "
               "written", rtype)



def section(w: Writer, body: etree._Element, sec: dict[str, Any]) -> None:
    code = next((c.get("code", "") for c in (sec.get("code") or {}).get("coding", [])
                 if c.get("system") == C.LOINC), "")
    known = C.BY_CODE.get(code)
    s = el(el(body, "component"), "section")
    if known:
        el(s, "templateId", root=known.template)
    else:
        w.lost("ehdsi-section-not-eHDSI", f"section {code or sec.get('title')!r} is not an eHDSI PS section: written "
               "with its narrative only", "Composition.section")
    w.code(s, "code", sec.get("code"))
    text_el(s, "title", sec.get("title") or (known.title if known else "Section"))
    div = (sec.get("text") or {}).get("div", "")
    if div:
        text, dropped = from_xhtml(div)
        for name in sorted(set(dropped)):
            w.lost("ehdsi-narrative-element-not-written", f"XHTML {name!r} has no CDA narrative form; its text is "
                   "kept", f"Composition.section({code})")
        s.append(text)
    else:
        text_el(s, "text", "No information available.")
    empty = next((c.get("code") for c in (sec.get("emptyReason") or {}).get("coding", [])
                  if c.get("system") == EMPTY_REASON), None)
    if empty and not sec.get("entry"):
        s.set("nullFlavor", EMPTY_TO_NULL.get(empty, "NI"))
    resources = [r for r in (w.get(e) for e in sec.get("entry", [])) if r]
    kind = known.kind if known else ""
    if kind == "vital":
        group = [r for r in resources if r.get("resourceType") == "Observation"]
        if group:
            vitals(w, el(s, "entry", typeCode="DRIV"), group)
        resources = [r for r in resources if r.get("resourceType") != "Observation"]
    members = {id(w.get(m)) for r in resources for m in (r.get("hasMember", []) if kind == "result" else [])}
    for res in resources:
        if id(res) in members:
            continue  # written inside its panel's organizer
        writer = WRITERS.get((kind, res.get("resourceType", "")))
        if writer is None:
            w.lost("ehdsi-entry-not-written", f"a {res.get('resourceType')} in section {code} has no eHDSI entry: "
                   "it is in the narrative only", f"{res.get('resourceType')}/{res.get('id')}")
            continue
        w.current = f"{res.get('resourceType')}/{res.get('id')}"
        writer(w, el(s, "entry", typeCode="DRIV"), res)
        w.current = ""
    if len(sec.get("entry", [])) > len([e for e in sec.get("entry", []) if w.get(e)]):
        w.lost("ehdsi-entry-unresolved", f"section {code} references resources not in the Bundle",
               "Composition.section", "warning")
