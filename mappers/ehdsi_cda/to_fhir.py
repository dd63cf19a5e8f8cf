"""An eHDSI Patient Summary (CDA R2, level 3) → an IPS 2.0.0 document Bundle.

The document is read safely (mappers.cda_cn.safexml: no DTDs or entities, a size limit); its type is told by its
templateId (eHDSI PS L3 `1.3.6.1.4.1.12559.11.10.1.3.1.1.3`; other eHDSI document types are refused by name), each
section by its LOINC code, each entry by the section it is in. Everything with content that was not mapped is
reported by path (mappers.cda_cn.coverage).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from mappers.cda_cn.context import Notes
from mappers.cda_cn.coverage import tracking, unused, use, use_tree
from mappers.cda_cn.safexml import parse_xml
from mappers.cda_cn.xpath import local, locating, path
from mappers.conversion import Conversion
from mappers.ehdsi_cda import clinical, observations
from mappers.ehdsi_cda import codes as C
from mappers.ehdsi_cda.header import document_parts, mark_header, participants, patient
from mappers.ehdsi_cda.narrative import to_xhtml
from mappers.ehdsi_cda.prescription import items, request
from mappers.ehdsi_cda.reader import Reader, absent, kid, kids, narrative_ids, templates, value
from mappers.exceptions import ParseError, UnsupportedMessage
from mappers.ids import resource_id
from mappers.toolkit.bundle import bundle as make_bundle

MAPPER_VERSION = "ehdsi-cda/0.1.1"  # 0.1.1: the language option gives a stated bare language its region
V3 = "urn:hl7-org:v3"
MAX_BYTES = 5 * 1024 * 1024
Mapper = Callable[[Reader, etree._Element, str], list[dict[str, Any]]]
KINDS: dict[str, Mapper] = {
    "medication": clinical.medication, "allergy": clinical.allergy, "problem": clinical.problem,
    "procedure": clinical.procedure, "device": clinical.device, "immunization": clinical.immunization,
    "result": observations.result, "vital": observations.vital, "pregnancy": observations.pregnancy,
    "social": observations.social, "functional": observations.functional,
}
STATEMENTS = {"observation", "act", "substanceAdministration", "supply", "procedure", "organizer", "encounter",
              "regionOfInterest", "observationMedia"}
EMPTY_TEXT = "No information available."


def document_type(root: etree._Element) -> str:
    """The eHDSI document templateId; UnsupportedMessage naming any other eHDSI or CDA document."""
    tids = templates(root)
    for t in (C.PS_L3, C.EP_L3):
        if t in tids:
            return t
    for t in tids:
        if t in C.REFUSED:
            raise UnsupportedMessage(
                f"{C.REFUSED[t]} documents (templateId {t}) are not converted; this format converts eHDSI Patient "
                f"Summary level 3 documents (templateId {C.PS_L3}) to IPS and ePrescriptions ({C.EP_L3}) to "
                "MedicationRequests", details="ehdsi-document-type-not-supported",
                expression="/ClinicalDocument/templateId")
    raise UnsupportedMessage(f"not an eHDSI Patient Summary: no templateId {C.PS_L3} (templateIds: "
                             f"{', '.join(tids) or 'none'})", details="ehdsi-not-patient-summary",
                             expression="/ClinicalDocument/templateId")


def read(data: bytes) -> etree._Element:
    root, _, _ = parse_xml(data, MAX_BYTES)
    if root.tag != f"{{{V3}}}ClinicalDocument":
        raise ParseError(f"not a CDA document: the root element is {root.tag!r}, not ClinicalDocument in {V3}",
                         details="ehdsi-not-cda", expression="/" + local(root))
    return root


def to_fhir(data: bytes, timezone: str | None = None, bundle_type: str = "collection") -> Conversion:
    """Convert an eHDSI PS L3 document. Raises ParseError (unsafe or malformed XML, not CDA) or
    UnsupportedMessage (another document type)."""
    root = read(data)
    kind = document_type(root)
    with tracking() as used, locating():
        if kind == C.EP_L3:
            return _prescription(root, used, timezone, bundle_type)
        return _convert(root, used, timezone, bundle_type)


def _start(root: etree._Element, timezone: str | None) -> tuple[Reader, str, str, dict[str, Any]]:
    """The Reader, the document key, its language and the Patient (the parts every eHDSI document shares)."""
    notes = Notes()
    doc_id = kid(root, "id")
    root_oid, ext = value(doc_id, "root"), value(doc_id, "extension")
    if not root_oid:
        raise UnsupportedMessage("the document has no id (CDA R2 ClinicalDocument.id is 1..1)",
                                 details="ehdsi-no-document-id", expression="/ClinicalDocument/id")
    key = f"{root_oid}|{ext}"
    r = Reader(notes, timezone or "+00:00", key, narrative_ids(root), zone_given=timezone is not None)
    mark_header(r, root)
    targets = kids(root, "recordTarget")
    if not targets or kid(targets[0], "patientRole") is None:
        raise UnsupportedMessage("the document has no recordTarget/patientRole", details="ehdsi-no-patient",
                                 expression="/ClinicalDocument/recordTarget")
    if len(targets) > 1:
        notes.warn("ehdsi-several-patients", "only the first recordTarget is mapped", path(targets[1]))
    lang = value(kid(root, "languageCode"), "code")
    pat = patient(r, kid(targets[0], "patientRole"), lang)
    r.add(pat)
    participants(r, root, pat)
    return r, key, lang, pat


def _prescription(root: etree._Element, used: set[etree._Element], timezone: str | None,
                  bundle_type: str) -> Conversion:
    """An eHDSI ePrescription → a Bundle of MedicationRequest-uv-ips (mappers.ehdsi_cda.prescription)."""
    r, key, lang, _ = _start(root, timezone)
    use(kid(root, "code"), kid(root, "title"), kid(root, "confidentialityCode"))
    when = r.time(kid(root, "effectiveTime"))
    parts = document_parts(r, root)
    requester = (parts.get("author") or [None])[0]
    body = kid(root, "component", "structuredBody")
    if body is None:
        raise UnsupportedMessage("the ePrescription has no structuredBody", details="ehdsi-no-structured-body",
                                 expression="/ClinicalDocument/component")
    use(kid(root, "component"), body)
    found = items(r, body)
    if not found:
        raise UnsupportedMessage("the ePrescription holds no prescription item (a substanceAdministration in "
                                 "section 57828-6)", details="ehdsi-no-prescription",
                                 expression="/ClinicalDocument/component/structuredBody")
    for sa in found:
        request(r, sa, when, requester)
    for k in ("attester", "custodian", "relatesTo", "event"):
        if k in parts:
            r.notes.inform("ehdsi-header-not-mapped", f"the ePrescription's {k} has no place on a MedicationRequest",
                           "/ClinicalDocument")
    ident = r.identifier(kid(root, "id"))
    for i in unused(root, used):
        r.notes.add(i)
    instant = when if when and "T" in when else None
    out = make_bundle(list(r.resources.values()), bundle_type, ("ehdsi-cda", key), timestamp=instant,
                      identifier=ident)
    if lang:  # the prescription's language (Resource.language), as the document states it
        use(kid(root, "languageCode"))
        out = {"resourceType": "Bundle", "id": out["id"], "language": lang,
               **{k: v for k, v in out.items() if k not in ("resourceType", "id")}}
    return Conversion(out, tuple(r.notes.issues), dict(r.origins))


def _convert(root: etree._Element, used: set[etree._Element], timezone: str | None,
             bundle_type: str) -> Conversion:
    r, key, lang, _ = _start(root, timezone)
    notes = r.notes
    doc_id = kid(root, "id")
    root_oid = value(doc_id, "root")
    if bundle_type != "collection":
        notes.inform("ehdsi-bundle-type", f"an IPS document is a document Bundle; bundleType {bundle_type!r} does "
                     "not apply")
    comp = r.new("Composition", root, "Composition-uv-ips")
    ident = r.identifier(doc_id)
    comp["identifier"] = ident
    if lang:
        comp["language"] = lang
        use(kid(root, "languageCode"))
    comp["status"] = "final"
    comp["type"] = r.concept(kid(root, "code")) or {"coding": [{"system": C.LOINC, "code": "60591-5"}]}
    comp["subject"] = r.subject()
    when = r.time(kid(root, "effectiveTime"))
    if not when:
        raise UnsupportedMessage("the document has no valid effectiveTime (CDA R2 1..1)",
                                 details="ehdsi-no-document-time", expression="/ClinicalDocument/effectiveTime")
    comp["date"] = when
    parts = document_parts(r, root)
    if "author" not in parts:
        notes.warn("ehdsi-no-author", "the document has no author (IPS Composition.author is 1..*)",
                   "/ClinicalDocument/author")
        parts["author"] = [absent()]
    comp["author"] = parts.pop("author")
    comp["title"] = r.text(kid(root, "title")) or "Patient Summary"
    conf = value(kid(root, "confidentialityCode"), "code")
    if conf and conf not in C.CONFIDENTIALITY:
        notes.warn("ehdsi-code-not-mapped", f"confidentialityCode {conf!r} is not an HL7 v3 Confidentiality code "
                   f"({', '.join(sorted(C.CONFIDENTIALITY))}); not mapped", "/ClinicalDocument/confidentialityCode")
        use(kid(root, "confidentialityCode"))
    elif conf:
        comp["confidentiality"] = conf
        use(kid(root, "confidentialityCode"))
    for k in ("attester", "custodian", "relatesTo", "event"):
        if k in parts:
            comp[k] = parts[k]
    for k in ("setId", "versionNumber"):
        el = kid(root, k)
        if el is not None:
            notes.inform("ehdsi-version-not-mapped", f"the document's {k} has no place in the IPS Composition "
                         "(its identifier is the document id)", path(el))
            use(el)
    body = kid(root, "component", "structuredBody")
    if body is None:
        raise UnsupportedMessage("the Patient Summary has no structuredBody", details="ehdsi-no-structured-body",
                                 expression="/ClinicalDocument/component")
    use(kid(root, "component"), body)
    sections = []
    for c in kids(body, "component"):
        s = kid(c, "section")
        if s is None:
            continue
        use(c)
        out = section(r, s, lang)
        if out:
            sections.append(out)
    present = {s["code"]["coding"][0]["code"] for s in sections if s.get("code", {}).get("coding")}
    for code in C.REQUIRED:
        if code not in present:
            notes.inform("ehdsi-section-absent", f"the document has no section {code} ({C.BY_CODE[code].title}); IPS "
                         "requires it: written empty, emptyReason 'unavailable'", "/ClinicalDocument/component")
            sections.append(empty_section(code))
    comp["section"] = sections
    issues_unmapped = unused(root, used)
    for i in issues_unmapped:
        notes.add(i)
    resources = [comp, *r.resources.values()]
    instant = when
    if "T" not in when:
        instant = f"{when[:10]}T00:00:00{r.timezone}" if len(when) >= 10 else None
        notes.warn("ehdsi-timestamp-from-date", f"the document time {when} has no time of day; Bundle.timestamp "
                   f"(an instant, 1..1 in IPS) is its start, {instant}", "/ClinicalDocument/effectiveTime")
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": resource_id("Bundle", "ehdsi-cda", key),
                              "meta": {"profile": [C.IPS + "Bundle-uv-ips"]},
                              "identifier": ident or {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root_oid}"},
                              "type": "document"}
    if instant:
        bundle["timestamp"] = instant
    bundle["entry"] = [{"fullUrl": f"urn:uuid:{res['id']}", "resource": res} for res in resources]
    return Conversion(bundle, tuple(notes.issues), dict(r.origins))


def empty_section(code: str) -> dict[str, Any]:
    sec = C.BY_CODE[code]
    return {"title": sec.title, "code": {"coding": [{"system": C.LOINC, "code": code}]},
            "text": {"status": "generated",
                     "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{EMPTY_TEXT}</p></div>'},
            "emptyReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                        "code": "unavailable"}]}}


def section(r: Reader, s: etree._Element, lang: str) -> dict[str, Any] | None:
    """One CDA section → a Composition.section with its narrative and the entries' resources."""
    r.mark(*kids(s, "templateId"), *kids(s, "id"))
    code_el = kid(s, "code")
    code = value(code_el, "code")
    known = C.BY_CODE.get(code) if C.system_uri(value(code_el, "codeSystem")) == C.LOINC else None
    out: dict[str, Any] = {}
    title = r.text(kid(s, "title"))
    out["title"] = title or (known.title if known else "Section")
    cc = r.concept(code_el)
    if cc:
        out["code"] = cc
    text_el = kid(s, "text")
    div, dropped = to_xhtml(text_el, lang) if text_el is not None else ("", [])
    if text_el is not None:
        use_tree(text_el)
    for name in sorted(set(dropped)):
        r.notes.inform("ehdsi-narrative-element-not-mapped", f"narrative element {name!r} has no XHTML form; its "
                       "text is kept, the element is not", path(text_el))
    if not div:
        div = f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{EMPTY_TEXT}</p></div>'
        r.notes.inform("ehdsi-section-no-narrative", f"section {code or '(no code)'} has no narrative text",
                       path(s))
    out["text"] = {"status": "additional", "div": div}
    if known is None:
        r.notes.warn("ehdsi-section-not-mapped", f"section {code or '(no code)'} is not an IPS section this mapper "
                     "reads; its narrative is kept, its entries are not mapped", path(s))
    refs = []
    for e in kids(s, "entry"):
        stmt = next((c for c in e if isinstance(c.tag, str) and local(c) in STATEMENTS), None)
        if stmt is None:
            continue
        mapper = KINDS.get(known.kind) if known else None
        if mapper is None:
            r.notes.inform("cda-entry-not-mapped", f"a {local(stmt)} entry of section {code} is not mapped",
                           path(stmt))
            use_tree(e)
            continue
        made = mapper(r, stmt, code)
        if made:
            use(e)
            refs += [{"reference": f"urn:uuid:{m['id']}"} for m in made]
    if refs:
        out["entry"] = refs
    for sub in kids(s, "component"):
        if kid(sub, "section") is not None:
            r.notes.warn("ehdsi-subsection-not-mapped", "a nested section is not mapped", path(kid(sub, "section")))
    if not refs and (s.get("nullFlavor") or code in C.REQUIRED):
        from mappers.ehdsi_cda.from_fhir import EMPTY_REASON, NULL_TO_EMPTY
        reason = NULL_TO_EMPTY.get(s.get("nullFlavor", ""), "unavailable")
        if s.get("nullFlavor"):
            use(s)
        else:
            r.notes.inform("ehdsi-section-empty", f"section {code} has no entries and states no reason: emptyReason "
                           "'unavailable' (IPS ips-comp-1)", path(s))
        out["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": reason}]}
    return out
