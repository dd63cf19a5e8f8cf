"""WS/T 500 ClinicalDocument (CDA R2 with the national extensions) → Report.

Entries are recognised by their data-element code (observation/code/@code = DE.., codeSystem 2.16.156.10011.2.2.1),
not by section position, because several national sections carry no LOINC code. The non-CDA header elements of the
national templates (patient/age, patient/nationality, patientRole/patientType) are read, not rejected.
Template placeholders 'NA' and nullFlavor values count as absent.

The body (results, diagnoses, report elements) is read by mappers.cda_cn.body.

Every element the reader uses is marked (mappers.cda_cn.coverage), so what is left is reported by XPath.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from mappers.cda_cn import systems as S
from mappers.cda_cn.body import Body, share_specimen
from mappers.cda_cn.context import Notes
from mappers.cda_cn.coverage import tracking, unused, use, use_tree
from mappers.cda_cn.model import Code, Encounter, Id, Party, Patient, Report
from mappers.cda_cn.safexml import MAX_BYTES, parse_xml
from mappers.cda_cn.tables import document_type_by_template, document_types, identifier_oids
from mappers.cda_cn.xmlread import attr, cd, ids_of, ii, kid, kids, text_of, ts_of, used_attr
from mappers.cda_cn.xpath import local, locating
from mappers.cda_cn.xpath import path as xpath_of
from mappers.exceptions import ParseError, UnsupportedMessage

V3 = "urn:hl7-org:v3"
_HEADER_HANDLED = {"realmCode", "typeId", "templateId", "id", "code", "title", "effectiveTime",
                   "confidentialityCode", "languageCode", "setId", "versionNumber", "recordTarget", "author",
                   "custodian", "legalAuthenticator", "authenticator", "participant", "componentOf", "component",
                   "relatedDocument"}
_LOCATION_KIND = {S.OID_BED: "bed", S.OID_ROOM: "room", S.OID_DEPT: "dept", S.OID_WARD: "ward"}


class _Reader:
    def __init__(self, root: etree._Element, notes: Notes) -> None:
        self.root = root
        self.notes = notes
        self.custodian_ids: tuple[Id, ...] = ()

    # --- header ---
    def doc_type(self) -> tuple[str, dict[str, Any]]:
        code_el = kid(self.root, "code")
        code = attr(code_el, "code")
        system = attr(code_el, "codeSystem")
        template_els = kids(self.root, "templateId")
        templates = [attr(t, "root") for t in template_els]
        by_template = next((hit for t in templates if (hit := document_type_by_template(t))), None)
        types = document_types()
        realm_el = kid(self.root, "realmCode")
        realm = used_attr(realm_el, "code")
        if realm and realm != "CN":
            self.notes.warn("cda-realm", f"realmCode is {realm!r}, not CN", xpath_of(realm_el))
        type_id = kid(self.root, "typeId")
        if attr(type_id, "root") == S.CDA_TYPE_ID:  # CDA R2's own marker: read, nothing to map
            use(type_id)
        if code in types and (not system or system == S.OID_DOC_TYPE):
            if by_template and by_template[0] != code:
                self.notes.warn("cda-template-code-mismatch",
                                f"templateId names {by_template[0]} ({by_template[1]['title']}) but code is {code}; "
                                "code wins", xpath_of(code_el))
            type_code, spec = code, types[code]
            use(code_el)
        elif by_template:
            type_code, spec = by_template
            self.notes.warn("cda-document-code", f"document code {code!r} is not a WS/T 500 type code; recognised "
                            f"{type_code} from templateId", xpath_of(code_el) or "/ClinicalDocument/code")
            use(code_el)
        else:
            raise UnsupportedMessage(
                f"not a recognised WS/T 500 document: code {code or '(none)'!r} (codeSystem {system or '(none)'}), "
                f"templateId {', '.join(templates) or '(none)'}", details="cda-unknown-document-type",
                expression=xpath_of(code_el) or "/ClinicalDocument/code")
        if spec.get("kind") is None:
            raise UnsupportedMessage(
                f"WS/T 500 part {spec['part']} {spec['title']} ({type_code}) is recognised but not converted; "
                "supported: C0006 检查报告, C0007 检验记录", details="cda-document-type-not-supported",
                expression=xpath_of(code_el) or "/ClinicalDocument/code")
        use(*(t for t in template_els if attr(t, "root") == spec["templateId"]))
        return type_code, spec

    def patient(self) -> tuple[Patient, Encounter | None, tuple[Id, ...]]:
        rt = kid(self.root, "recordTarget", "patientRole")
        if rt is None:
            raise ParseError("the document has no recordTarget/patientRole", details="cda-no-patient",
                             expression="/ClinicalDocument/recordTarget")
        p = kid(rt, "patient")
        role_ids = ids_of(rt)
        person_ids = ids_of(p)
        # Visit, report, order and specimen numbers sit on patientRole in the national templates.
        patient_ids, doc_ids = [], []
        oids = identifier_oids()
        for i in (*role_ids, *person_ids):
            target = oids.get(i.root, {}).get("target", "Patient")
            (patient_ids if target in ("Patient", "Encounter") else doc_ids).append(i)
        age_el = kid(p, "age")
        age = (used_attr(age_el, "value"), used_attr(age_el, "unit")) if attr(age_el, "value") else None
        nationality = cd(kid(p, "nationality")) or cd(kid(p, "nationalityCode"))
        addr = kid(rt, "addr")
        parts = tuple((de, text_of(kid(addr, name))) for de, name in S.ADDRESS_PARTS if text_of(kid(addr, name)))
        address = parts or ((("", text_of(addr)),) if text_of(addr) else ())
        birth = kid(p, "birthTime")
        patient = Patient(
            ids=tuple(patient_ids), name=text_of(kid(p, "name")), gender=cd(kid(p, "administrativeGenderCode")),
            birth_time=ts_of(birth), age=age, marital=cd(kid(p, "maritalStatusCode")),
            ethnicity=cd(kid(p, "ethnicGroupCode")), nationality=nationality,
            telecom=tuple(v for t in kids(rt, "telecom") if (v := used_attr(t, "value"))), address=address,
            where=xpath_of(p if p is not None else rt), paths={"birth_time": xpath_of(birth), "ids": xpath_of(rt)})
        ptype = cd(kid(rt, "patientType", "patienttypeCode"))
        encounter = self.encounter(ptype)
        return patient, encounter, tuple(doc_ids)

    def encounter(self, ptype: Code | None) -> Encounter | None:
        enc = kid(self.root, "componentOf", "encompassingEncounter")
        start = end = ""
        locations: list[tuple[str, Id | None, str]] = []
        if enc is not None:
            eff = kid(enc, "effectiveTime")
            start = ts_of(kid(eff, "low")) or ts_of(eff)
            end = ts_of(kid(eff, "high"))
            node = kid(enc, "location", "healthCareFacility", "serviceProviderOrganization")
            while node is not None:
                node = kid(node, "asOrganizationPartOf", "wholeOrganization")
                if node is None:
                    break
                id_el = kid(node, "id")
                kind = _LOCATION_KIND.get(attr(id_el, "root"), "")
                if not kind:
                    if Id(attr(id_el, "root"), attr(id_el, "extension")) in self.custodian_ids:
                        use(id_el, kid(node, "name"))  # the hospital at the top: Encounter.serviceProvider
                    continue
                ident = ii(id_el)
                name = text_of(kid(node, "name"))
                if ident or name:
                    locations.append((kind, ident, name))
        if not (ptype or start or locations):
            return None
        return Encounter(ptype, start, end, tuple(locations))

    def party(self, el: etree._Element | None, entity: str) -> Party | None:
        ent = kid(el, entity)
        if ent is None:
            return None
        person = kid(ent, "assignedPerson")
        name = text_of(kid(person, "name"))
        ids = ids_of(ent)
        if not (name or ids):
            return None
        time_el = kid(el, "time")
        return Party(name, ids, used_attr(kid(ent, "code"), "displayName"), ts_of(time_el),
                     paths={"time": xpath_of(time_el), "where": xpath_of(el)})

    def organization(self, el: etree._Element | None) -> Party | None:
        if el is None:
            return None
        name, ids = text_of(kid(el, "name")), ids_of(el)
        return Party(name, ids, paths={"where": xpath_of(el)}) if name or ids else None

    def header_codes(self) -> dict[str, Any]:
        """confidentialityCode, languageCode, versionNumber and relatedDocument."""
        out: dict[str, Any] = {"confidentiality": cd(kid(self.root, "confidentialityCode")),
                               "language": used_attr(kid(self.root, "languageCode"), "code"),
                               "version": used_attr(kid(self.root, "versionNumber"), "value")}
        related = []
        for rel in kids(self.root, "relatedDocument"):
            parent = ii(kid(rel, "parentDocument", "id"))
            if parent:
                related.append((rel.get("typeCode") or "", parent))
        out["related"] = tuple(related)
        return out

    # --- body ---
    def sections(self) -> list[etree._Element]:
        body = kid(self.root, "component", "structuredBody")
        if body is None:
            nb = kid(self.root, "component", "nonXMLBody")
            if nb is not None:
                raise UnsupportedMessage("the document has a nonXMLBody; only structuredBody documents convert",
                                         details="cda-non-xml-body", expression=xpath_of(nb))
            return []
        return [s for comp in kids(body, "component") for s in kids(comp, "section")]


def read_document(data: bytes, notes: Notes, max_bytes: int = MAX_BYTES) -> Report:
    """Parse and read a WS/T 500 lab or exam document. Raises ParseError / UnsupportedMessage saying where.

    Every element with content that the reader did not use is reported (cda-element-not-mapped, by XPath)."""
    root, _encoding, decode_notes = parse_xml(data, max_bytes)
    for n in decode_notes:
        notes.warn("cda-encoding-undeclared", n, "line 1")
    if local(root) != "ClinicalDocument":
        raise ParseError(f"the root element is <{local(root)}>, not <ClinicalDocument>", details="cda-not-cda",
                         expression=xpath_of(root))
    if etree.QName(root).namespace not in (V3, None):
        notes.warn("cda-namespace", f"the root namespace is {etree.QName(root).namespace!r}, not urn:hl7-org:v3",
                   xpath_of(root))
    with tracking() as used, locating():
        report = _read(root, notes)
        for issue in unused(root, used):
            notes.add(issue)
    return report


def _read(root: etree._Element, notes: Notes) -> Report:
    r = _Reader(root, notes)
    type_code, spec = r.doc_type()
    for child in root:
        if isinstance(child.tag, str) and local(child) not in _HEADER_HANDLED:
            notes.inform("cda-header-not-mapped", f"header element <{local(child)}> was not mapped", xpath_of(child))
            use_tree(child)
    custodian = r.organization(kid(root, "custodian", "assignedCustodian", "representedCustodianOrganization"))
    r.custodian_ids = custodian.ids if custodian else ()
    patient, encounter, doc_ids = r.patient()
    specimen_no = next((i.extension for i in doc_ids if i.root == S.OID_SPECIMEN_NO), "")
    report_ids = tuple(i for i in doc_ids if i.root != S.OID_SPECIMEN_NO)
    authors = tuple(p for a in kids(root, "author") if (p := r.party(a, "assignedAuthor")))
    legal = r.party(kid(root, "legalAuthenticator"), "assignedEntity")
    auths = tuple(p for a in kids(root, "authenticator") if (p := r.party(a, "assignedEntity")))
    req_dept = req_org = None
    requester = ""
    for part in kids(root, "participant"):
        scoping = kid(part, "associatedEntity", "scopingOrganization")
        if scoping is not None and part.get("typeCode") in ("PRF", None):
            req_dept = r.organization(scoping)
            req_org = r.organization(kid(scoping, "asOrganizationPartOf", "wholeOrganization"))
            requester = xpath_of(part)
    body = Body(notes, specimen_no)
    for section in r.sections():
        body.section(section)
    eff_el = kid(root, "effectiveTime")
    id_el = kid(root, "id")
    title = text_of(kid(root, "title"))
    return Report(
        kind=spec["kind"], type_code=type_code, title=title or spec["title"], doc_id=ii(id_el),
        effective_time=ts_of(eff_el), patient=patient, authors=authors, legal_authenticator=legal,
        authenticators=auths, custodian=custodian, requester_department=req_dept, requester_organization=req_org,
        encounter=encounter, diagnoses=tuple(body.diagnoses), items=tuple(share_specimen(body.items)),
        ids=report_ids, results_absent=body.absent, unread=tuple(body.unread), empty=tuple(body.empty),
        paths={"effective_time": xpath_of(eff_el) or "/ClinicalDocument/effectiveTime", "doc_id": xpath_of(id_el),
               "ids": xpath_of(kid(root, "recordTarget", "patientRole")), "requester": requester,
               "encounter": xpath_of(kid(root, "componentOf", "encompassingEncounter"))
               or xpath_of(kid(root, "recordTarget", "patientRole")), **body.paths},
        **r.header_codes(), **body.fields)

