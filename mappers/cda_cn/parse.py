"""WS/T 500 ClinicalDocument (CDA R2 with the national extensions) → Report.

Entries are recognised by their data-element code (observation/code/@code = DE.., codeSystem 2.16.156.10011.2.2.1),
not by section position, because several national sections carry no LOINC code. The non-CDA header elements of the
national templates (patient/age, patient/nationality, patientRole/patientType) are read, not rejected.
Template placeholders 'NA' and nullFlavor values count as absent.
"""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes
from mappers.cda_cn.model import Code, Diagnosis, Encounter, Id, Item, Party, Patient, Report, Specimen
from mappers.cda_cn.safexml import MAX_BYTES, parse_xml
from mappers.cda_cn.tables import data_element, document_type_by_template, document_types, identifier_oids
from mappers.exceptions import ParseError, UnsupportedMessage

V3 = "urn:hl7-org:v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_ABSENT = {"", "NA", "N/A"}
_HEADER_HANDLED = {"realmCode", "typeId", "templateId", "id", "code", "title", "effectiveTime",
                   "confidentialityCode", "languageCode", "setId", "versionNumber", "recordTarget", "author",
                   "custodian", "legalAuthenticator", "authenticator", "participant", "componentOf", "component",
                   "relatedDocument"}
_LOCATION_KIND = {S.OID_BED: "bed", S.OID_ROOM: "room", S.OID_DEPT: "dept", S.OID_WARD: "ward"}


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _kids(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in el if _local(c) == name]


def _kid(el: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c) == name), None)
    return el


def _where(el: etree._Element | None) -> str:
    return f"line {el.sourceline}" if el is not None and el.sourceline else ""


def _val(s: str | None) -> str:
    s = (s or "").strip()
    return "" if s in _ABSENT else s


def _attr(el: etree._Element | None, name: str) -> str:
    if el is None or el.get("nullFlavor"):
        return ""
    return _val(el.get(name))


def _text(el: etree._Element | None) -> str:
    if el is None or el.get("nullFlavor"):
        return ""
    return _val("".join(el.itertext()))


def _ii(el: etree._Element | None) -> Id | None:
    root, ext = _attr(el, "root"), _attr(el, "extension")
    return Id(root, ext) if root and ext else None


def _ids(el: etree._Element | None) -> tuple[Id, ...]:
    return tuple(i for c in _kids(el, "id") if (i := _ii(c)))


def _cd(el: etree._Element | None) -> Code | None:
    code = _attr(el, "code")
    if not code:
        return None
    return Code(code, _attr(el, "codeSystem"), _attr(el, "displayName"), _attr(el, "codeSystemName"))


def _time(el: etree._Element | None) -> str:
    return _attr(el, "value")


class _Reader:
    def __init__(self, root: etree._Element, notes: Notes) -> None:
        self.root = root
        self.notes = notes

    # --- header ---
    def doc_type(self) -> tuple[str, dict]:
        code_el = _kid(self.root, "code")
        code = _attr(code_el, "code")
        system = _attr(code_el, "codeSystem")
        templates = [_attr(t, "root") for t in _kids(self.root, "templateId")]
        by_template = next((hit for t in templates if (hit := document_type_by_template(t))), None)
        types = document_types()
        realm = _attr(_kid(self.root, "realmCode"), "code")
        if realm and realm != "CN":
            self.notes.warn("cda-realm", f"realmCode is {realm!r}, not CN", _where(_kid(self.root, "realmCode")))
        if code in types and (not system or system == S.OID_DOC_TYPE):
            if by_template and by_template[0] != code:
                self.notes.warn("cda-template-code-mismatch",
                                f"templateId names {by_template[0]} ({by_template[1]['title']}) but code is {code}; "
                                "code wins", _where(code_el))
            type_code, spec = code, types[code]
        elif by_template:
            type_code, spec = by_template
            self.notes.warn("cda-document-code", f"document code {code!r} is not a WS/T 500 type code; recognised "
                            f"{type_code} from templateId", _where(code_el))
        else:
            raise UnsupportedMessage(
                f"not a recognised WS/T 500 document: code {code or '(none)'!r} (codeSystem {system or '(none)'}), "
                f"templateId {', '.join(templates) or '(none)'}", details="cda-unknown-document-type",
                expression=_where(code_el) or "ClinicalDocument/code")
        if spec.get("kind") is None:
            raise UnsupportedMessage(
                f"WS/T 500 part {spec['part']} {spec['title']} ({type_code}) is recognised but not converted; "
                "supported: C0006 检查报告, C0007 检验记录", details="cda-document-type-not-supported",
                expression=_where(code_el) or "ClinicalDocument/code")
        return type_code, spec

    def patient(self) -> tuple[Patient, Encounter | None, tuple[Id, ...]]:
        rt = _kid(self.root, "recordTarget", "patientRole")
        if rt is None:
            raise ParseError("the document has no recordTarget/patientRole", details="cda-no-patient",
                             expression="ClinicalDocument/recordTarget")
        p = _kid(rt, "patient")
        role_ids = _ids(rt)
        person_ids = _ids(p)
        # Visit, report, order and specimen numbers sit on patientRole in the national templates.
        patient_ids, doc_ids = [], []
        oids = identifier_oids()
        for i in (*role_ids, *person_ids):
            target = oids.get(i.root, {}).get("target", "Patient")
            (patient_ids if target in ("Patient", "Encounter") else doc_ids).append(i)
        age_el = _kid(p, "age")
        age = (_attr(age_el, "value"), _attr(age_el, "unit")) if _attr(age_el, "value") else None
        nationality = _cd(_kid(p, "nationality")) or _cd(_kid(p, "nationalityCode"))
        addr = _kid(rt, "addr")
        parts = tuple((de, _text(_kid(addr, name))) for de, name in S.ADDRESS_PARTS if _text(_kid(addr, name)))
        address = parts or ((("", _text(addr)),) if _text(addr) else ())
        patient = Patient(
            ids=tuple(patient_ids), name=_text(_kid(p, "name")), gender=_cd(_kid(p, "administrativeGenderCode")),
            birth_time=_time(_kid(p, "birthTime")), age=age, marital=_cd(_kid(p, "maritalStatusCode")),
            ethnicity=_cd(_kid(p, "ethnicGroupCode")), nationality=nationality,
            telecom=tuple(v for t in _kids(rt, "telecom") if (v := _attr(t, "value"))), address=address,
            where=_where(p if p is not None else rt))
        ptype = _cd(_kid(rt, "patientType", "patienttypeCode"))
        encounter = self.encounter(ptype)
        return patient, encounter, tuple(doc_ids)

    def encounter(self, ptype: Code | None) -> Encounter | None:
        enc = _kid(self.root, "componentOf", "encompassingEncounter")
        start = end = ""
        locations: list[tuple[str, Id | None, str]] = []
        if enc is not None:
            eff = _kid(enc, "effectiveTime")
            start = _attr(_kid(eff, "low"), "value") or _time(eff)
            end = _attr(_kid(eff, "high"), "value")
            node = _kid(enc, "location", "healthCareFacility", "serviceProviderOrganization")
            while node is not None:
                node = _kid(node, "asOrganizationPartOf", "wholeOrganization")
                if node is None:
                    break
                ident = _ii(_kid(node, "id"))
                kind = _LOCATION_KIND.get(ident.root if ident else _attr(_kid(node, "id"), "root"), "")
                name = _text(_kid(node, "name"))
                if kind and (ident or name):
                    locations.append((kind, ident, name))
        if not (ptype or start or locations):
            return None
        return Encounter(ptype, start, end, tuple(locations))

    def party(self, el: etree._Element | None, entity: str) -> Party | None:
        ent = _kid(el, entity)
        if ent is None:
            return None
        person = _kid(ent, "assignedPerson")
        name = _text(_kid(person, "name"))
        ids = _ids(ent)
        if not (name or ids):
            return None
        return Party(name, ids, _attr(_kid(ent, "code"), "displayName"), _time(_kid(el, "time")))

    def organization(self, el: etree._Element | None) -> Party | None:
        if el is None:
            return None
        name, ids = _text(_kid(el, "name")), _ids(el)
        return Party(name, ids) if name or ids else None

    # --- body ---
    def body(self) -> list[etree._Element]:
        """The clinical statements (observation / organizer / procedure …) of every section, in order."""
        out = []
        body = _kid(self.root, "component", "structuredBody")
        if body is None:
            nb = _kid(self.root, "component", "nonXMLBody")
            if nb is not None:
                raise UnsupportedMessage("the document has a nonXMLBody; only structuredBody documents convert",
                                         details="cda-non-xml-body", expression=_where(nb))
            return out
        for comp in _kids(body, "component"):
            for section in _kids(comp, "section"):
                for entry in _kids(section, "entry"):
                    out.extend(c for c in entry if isinstance(c.tag, str))
        return out


def _de(obs: etree._Element) -> str:
    code = _kid(obs, "code")
    return _attr(code, "code") if code is not None and _attr(code, "codeSystem") in ("", S.OID_DE) else ""


def _value(obs: etree._Element) -> tuple[str, etree._Element | None]:
    """(xsi:type without prefix, the value element)."""
    v = _kid(obs, "value")
    if v is None:
        return "", None
    return (v.get(XSI_TYPE) or "").split(":")[-1], v


def _st(obs: etree._Element) -> str:
    kind, v = _value(obs)
    if v is None:
        return ""
    if kind in ("CD", "CE", "CV", "CO"):
        return _attr(v, "displayName") or _attr(v, "code")
    if kind in ("REAL", "INT", "PQ", "TS", "BL"):
        return _attr(v, "value")
    return _text(v)


def _nested(obs: etree._Element) -> list[etree._Element]:
    return [o for er in _kids(obs, "entryRelationship") for o in _kids(er, "observation")]


def _item(org: etree._Element, notes: Notes, specimen_no: str) -> Item:
    fields: dict = {"where": _where(org)}
    spec: dict = {}
    for comp in _kids(org, "component"):
        for obs in _kids(comp, "observation"):
            de = _de(obs)
            kind, v = _value(obs)
            if de == "DE04.30.019.00":
                if kind in ("CD", "CE", "CV") and v is not None:
                    fields.update(code=_attr(v, "code"), code_system=_attr(v, "codeSystem"),
                                  name=_attr(v, "displayName"))
                else:
                    fields["code"] = _st(obs)
                fields["time"] = _time(_kid(obs, "effectiveTime"))
                for sub in _nested(obs):
                    sde, label = _de(sub), _attr(_kid(sub, "code"), "displayName")
                    if sde == "DE04.50.134.00" or (sde == "DE04.30.019.00" and "标本类别" in label):
                        eff = _kid(sub, "effectiveTime")
                        spec.update(type=_st(sub), collected=_attr(_kid(eff, "low"), "value"),
                                    received=_attr(_kid(eff, "high"), "value"))
                    elif sde == "DE04.50.135.00":
                        spec["status"] = _st(sub)
                    elif "固定液" in label:  # part 6 template reuses DE04.30.019.00 for the fixative
                        spec["fixative"] = _st(sub)
                    elif sde == "DE04.30.020.00":
                        fields["name"] = _st(sub)
                    else:
                        notes.inform("cda-entry-not-mapped", f"{sde or label or 'observation'} under the item code "
                                     "was not mapped", _where(sub))
            elif de == "DE04.30.020.00":
                fields["name"] = _st(obs)
            elif de == "DE04.30.017.00":
                if kind in ("CD", "CE", "CV", "CO") and v is not None:
                    fields["result_code"] = _cd(v)
                else:
                    fields["text"] = _st(obs)
            elif de == "DE04.30.015.00":
                fields["value"] = _st(obs)
                if kind == "PQ" and v is not None and _attr(v, "unit") not in ("", "1"):
                    fields["unit"] = _attr(v, "unit")
                for sub in _nested(obs):
                    if _de(sub) == "DE04.30.016.00":
                        fields["unit"] = _st(sub)
                fields["interpretation"] = tuple(c for i in _kids(obs, "interpretationCode") if (c := _cd(i)))
                rng = _kid(obs, "referenceRange", "observationRange")
                if rng is not None:
                    rv = _kid(rng, "value")
                    fields.update(ref_low=_attr(_kid(rv, "low"), "value"), ref_high=_attr(_kid(rv, "high"), "value"),
                                  ref_unit=_attr(_kid(rv, "low"), "unit") or _attr(_kid(rv, "high"), "unit"),
                                  ref_text=_text(_kid(rng, "text")))
            else:
                notes.inform("cda-entry-not-mapped", f"organizer component {de or 'without a DE code'} was not "
                             "mapped", _where(obs))
    if spec or specimen_no:
        fields["specimen"] = Specimen(number=specimen_no, **spec)
    if not fields.get("code") and not fields.get("name"):
        notes.warn("cda-item-without-code", "a result organizer has no item code (DE04.30.019.00); kept with "
                   "text only", _where(org))
    return Item(**fields)


def _share_specimen(items: list[Item]) -> list[Item]:
    """An organizer without specimen details uses the document's one described specimen, when there is one."""
    described = {i.specimen for i in items if i.specimen and (i.specimen.type or i.specimen.collected)}
    if len(described) != 1:
        return items
    only = next(iter(described))
    return [i if i.specimen in (None, only) or i.specimen.type or i.specimen.collected
            else replace(i, specimen=only) for i in items]


_REPORT_FIELDS = {"DE02.10.027.00": "method", "DE04.30.018.00": "category", "DE04.50.130.00": "conclusion",
                  "DE04.50.131.00": "findings", "DE04.50.132.00": "conclusion", "DE08.10.026.00": "report_department",
                  "DE08.10.013.00": "report_organization", "DE06.00.179.00": "remarks",
                  "DE04.01.119.00": "chief_complaint", "DE04.50.133.00": "report_date"}


def read_document(data: bytes, notes: Notes, max_bytes: int = MAX_BYTES) -> Report:
    """Parse and read a WS/T 500 lab or exam document. Raises ParseError / UnsupportedMessage saying where."""
    root, _encoding, decode_notes = parse_xml(data, max_bytes)
    for n in decode_notes:
        notes.warn("cda-encoding-undeclared", n, "line 1")
    if _local(root) != "ClinicalDocument":
        raise ParseError(f"the root element is <{_local(root)}>, not <ClinicalDocument>", details="cda-not-cda",
                         expression=_where(root))
    if etree.QName(root).namespace not in (V3, None):
        notes.warn("cda-namespace", f"the root namespace is {etree.QName(root).namespace!r}, not urn:hl7-org:v3",
                   _where(root))
    r = _Reader(root, notes)
    type_code, spec = r.doc_type()
    for child in root:
        if isinstance(child.tag, str) and _local(child) not in _HEADER_HANDLED:
            notes.inform("cda-header-not-mapped", f"header element <{_local(child)}> was not mapped", _where(child))
    patient, encounter, doc_ids = r.patient()
    specimen_no = next((i.extension for i in doc_ids if i.root == S.OID_SPECIMEN_NO), "")
    report_ids = tuple(i for i in doc_ids if i.root != S.OID_SPECIMEN_NO)
    authors = tuple(p for a in _kids(root, "author") if (p := r.party(a, "assignedAuthor")))
    legal = r.party(_kid(root, "legalAuthenticator"), "assignedEntity")
    auths = tuple(p for a in _kids(root, "authenticator") if (p := r.party(a, "assignedEntity")))
    custodian = r.organization(_kid(root, "custodian", "assignedCustodian", "representedCustodianOrganization"))
    req_dept = req_org = None
    for part in _kids(root, "participant"):
        scoping = _kid(part, "associatedEntity", "scopingOrganization")
        if scoping is not None and part.get("typeCode") in ("PRF", None):
            req_dept = r.organization(scoping)
            req_org = r.organization(_kid(scoping, "asOrganizationPartOf", "wholeOrganization"))
    fields: dict = {}
    diagnoses, items = [], []
    for stmt in r.body():
        name = _local(stmt)
        if name == "organizer":
            items.append(_item(stmt, notes, specimen_no))
            continue
        de = _de(stmt) if name == "observation" else ""
        if de == "DE05.01.024.00":
            _, v = _value(stmt)
            code = _cd(v)
            if code:
                diagnoses.append(Diagnosis(code, code.display, _time(_kid(stmt, "effectiveTime")), _where(stmt)))
            continue
        if de in _REPORT_FIELDS:
            value = _st(stmt)
            if value:
                key = _REPORT_FIELDS[de]
                if de == "DE04.50.132.00" or key not in fields:
                    fields[key] = value
            continue
        label = data_element(de).get("name", "") if de else ""
        what = f"{de} {label}".strip() if de else f"<{name}>"
        notes.inform("cda-entry-not-mapped", f"entry {what} was not mapped", _where(stmt))
    items = _share_specimen(items)
    eff = _time(_kid(root, "effectiveTime"))
    return Report(
        kind=spec["kind"], type_code=type_code, title=_text(_kid(root, "title")) or spec["title"],
        doc_id=_ii(_kid(root, "id")), effective_time=eff, set_id=_ii(_kid(root, "setId")),
        version=_attr(_kid(root, "versionNumber"), "value"), patient=patient, authors=authors,
        legal_authenticator=legal, authenticators=auths, custodian=custodian, requester_department=req_dept,
        requester_organization=req_org, encounter=encounter, diagnoses=tuple(diagnoses), items=tuple(items),
        ids=report_ids, **fields)
