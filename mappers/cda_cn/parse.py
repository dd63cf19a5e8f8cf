"""WS/T 500 ClinicalDocument (CDA R2 with the national extensions) → Report.

Entries are recognised by their data-element code (observation/code/@code = DE.., codeSystem 2.16.156.10011.2.2.1),
not by section position, because several national sections carry no LOINC code. The non-CDA header elements of the
national templates (patient/age, patient/nationality, patientRole/patientType) are read, not rejected.
Template placeholders 'NA' and nullFlavor values count as absent.

Results arrive in two layouts: the part 6/7 templates' organizer CLUSTER (one per item, its components the item's
data elements), and flat section entries, as several implementers' generators write them: DE04.30.019.00 (item code,
specimen nested), DE04.30.017.00, DE04.30.015.00 (unit nested) as sibling entries, one run per item. An item code
starts the next item, as does any element the current item already has. A section entry that is a coded test with a
value (no DE code) is a result too.

Every element the reader uses is marked (mappers.cda_cn.coverage), so what is left is reported by XPath.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lxml import etree

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes
from mappers.cda_cn.coverage import ABSENT, has_content, tracking, unused, use, use_tree
from mappers.cda_cn.model import Code, Diagnosis, Encounter, Id, Item, Party, Patient, Report, Specimen
from mappers.cda_cn.safexml import MAX_BYTES, parse_xml
from mappers.cda_cn.tables import (
    data_element,
    document_type_by_template,
    document_types,
    identifier_oids,
    results_section,
)
from mappers.cda_cn.xpath import local as _local
from mappers.cda_cn.xpath import locating
from mappers.cda_cn.xpath import path as _where
from mappers.exceptions import ParseError, UnsupportedMessage

V3 = "urn:hl7-org:v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_HEADER_HANDLED = {"realmCode", "typeId", "templateId", "id", "code", "title", "effectiveTime",
                   "confidentialityCode", "languageCode", "setId", "versionNumber", "recordTarget", "author",
                   "custodian", "legalAuthenticator", "authenticator", "participant", "componentOf", "component",
                   "relatedDocument"}
_LOCATION_KIND = {S.OID_BED: "bed", S.OID_ROOM: "room", S.OID_DEPT: "dept", S.OID_WARD: "ward"}
_CODED = ("CD", "CE", "CV", "CO")


def _kids(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in el if _local(c) == name]


def _kid(el: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c) == name), None)
    return el


def _val(s: str | None) -> str:
    s = (s or "").strip()
    return "" if s in ABSENT else s


def _attr(el: etree._Element | None, name: str) -> str:
    if el is None or el.get("nullFlavor"):
        return ""
    return _val(el.get(name))


def _used_attr(el: etree._Element | None, name: str) -> str:
    """An attribute the reader keeps: its element counts as used when it has the value."""
    value = _attr(el, name)
    if value:
        use(el)
    return value


def _text(el: etree._Element | None) -> str:
    if el is None or el.get("nullFlavor"):
        return ""
    value = _val("".join(el.itertext()))
    if value:
        use_tree(el)
    return value


def _ii(el: etree._Element | None) -> Id | None:
    root, ext = _attr(el, "root"), _attr(el, "extension")
    if root and ext:
        use(el)
        return Id(root, ext)
    return None


def _ids(el: etree._Element | None) -> tuple[Id, ...]:
    return tuple(i for c in _kids(el, "id") if (i := _ii(c)))


def _cd(el: etree._Element | None) -> Code | None:
    code = _attr(el, "code")
    if not code:
        return None
    use(el)
    return Code(code, _attr(el, "codeSystem"), _attr(el, "displayName"), _attr(el, "codeSystemName"))


def _time(el: etree._Element | None) -> str:
    return _used_attr(el, "value")


def _de(obs: etree._Element) -> str:
    """The observation's data-element code; reading it identifies the entry, so its code element counts as used."""
    code = _kid(obs, "code")
    if code is None or _attr(code, "codeSystem") not in ("", S.OID_DE) or not _attr(code, "code").startswith("DE"):
        return ""
    use(code)
    return _attr(code, "code")


def _value(obs: etree._Element) -> tuple[str, etree._Element | None]:
    """(xsi:type without prefix, the value element)."""
    v = _kid(obs, "value")
    if v is None:
        return "", None
    return (v.get(XSI_TYPE) or "").split(":")[-1], v


def _st(obs: etree._Element) -> str:
    """The observation's value as text (display or code of a coded value, @value of a number or time)."""
    kind, v = _value(obs)
    if v is None:
        return ""
    if kind in _CODED:
        return _used_attr(v, "displayName") or _used_attr(v, "code")
    if kind in ("REAL", "INT", "PQ", "TS", "BL"):
        return _used_attr(v, "value")
    return _text(v)


def _nested(obs: etree._Element) -> list[etree._Element]:
    return [o for er in _kids(obs, "entryRelationship") for o in _kids(er, "observation")]


def _not_mapped(notes: Notes, el: etree._Element, what: str) -> None:
    """Report one entry by name; its elements are then accounted for (not listed again by path)."""
    notes.inform("cda-entry-not-mapped", f"{what} was not mapped (line {el.sourceline})", _where(el))
    use_tree(el)


# Item slots: the data elements one result item is made of (national-formats.md §1.5, §2).
ITEM_DES = {"DE04.30.019.00": "code", "DE04.30.020.00": "name", "DE04.30.017.00": "result",
            "DE04.30.015.00": "value", "DE04.30.016.00": "unit", "DE04.50.134.00": "specimen",
            "DE04.50.135.00": "specimen-status", "DE08.50.027.00": "fixative"}


class _ItemReader:
    """One result item gathered from its data-element observations (an organizer's components, or a flat run)."""

    def __init__(self, start: etree._Element, notes: Notes, specimen_no: str) -> None:
        self.notes = notes
        self.specimen_no = specimen_no
        self.fields: dict[str, Any] = {"where": _where(start)}
        self.paths: dict[str, str] = {}
        self.spec: dict[str, str] = {}
        self.spec_paths: dict[str, str] = {}
        self.slots: set[str] = set()
        self.start = start

    def has(self, de: str) -> bool:
        return ITEM_DES[de] in self.slots

    def starts_next(self, de: str) -> bool:
        """In a flat run, `de` begins the next item: an item code always does (the templates write it first; only
        a name may come before it), any other element when this item already has it."""
        if de == "DE04.30.019.00":
            return not self.slots <= {"name"}
        return self.has(de)

    def add(self, obs: etree._Element, de: str) -> None:
        self.slots.add(ITEM_DES[de])
        kind, v = _value(obs)
        where = _where(v if v is not None else obs)
        if v is not None and v.get("nullFlavor") and de in ("DE04.30.015.00", "DE04.30.017.00"):
            self.fields["absent"] = v.get("nullFlavor")
            self.paths["absent"] = where
            use(v)
        if de == "DE04.30.019.00":
            if kind in _CODED and v is not None:
                code = _cd(v)
                if code:
                    self.fields.update(code=code.code, code_system=code.system)
                    if code.display:
                        self.fields["name"] = code.display
            else:
                self.fields["code"] = _st(obs)
            self.paths["code"] = where
            eff = _kid(obs, "effectiveTime")
            self.fields["time"] = _time(eff)
            self.paths["time"] = _where(eff)
            for sub in _nested(obs):
                self._under_code(sub)
        elif de == "DE04.30.020.00":
            self.fields["name"] = _st(obs)
        elif de == "DE04.30.017.00":
            if kind in _CODED and v is not None:
                self.fields["result_code"] = _cd(v)
            else:
                self.fields["text"] = _st(obs)
            self.paths["result"] = where
        elif de == "DE04.30.015.00":
            self._quantitative(obs, kind, v, where)
        elif de == "DE04.30.016.00":
            self.fields["unit"] = _st(obs)
        elif de == "DE04.50.134.00":
            self._specimen(obs)
        elif de == "DE04.50.135.00":
            self.spec["status"] = _st(obs)
        elif de == "DE08.50.027.00":
            self.spec["fixative"] = _st(obs)

    def _under_code(self, sub: etree._Element) -> None:
        sde = _de(sub)
        label = _attr(_kid(sub, "code"), "displayName")
        if sde == "DE04.50.134.00" or (sde == "DE04.30.019.00" and "标本类别" in label):
            use(_kid(sub, "code"))
            self._specimen(sub)
        elif sde == "DE04.50.135.00":
            self.spec["status"] = _st(sub)
        elif sde == "DE08.50.027.00" or "固定液" in label:  # the part 6 template reuses DE04.30.019.00 for it
            use(_kid(sub, "code"))
            self.spec["fixative"] = _st(sub)
        elif sde == "DE04.30.020.00":
            self.fields["name"] = _st(sub)
        else:
            _not_mapped(self.notes, sub, f"{sde or label or 'an observation'} under the item code")

    def _specimen(self, obs: etree._Element) -> None:
        eff = _kid(obs, "effectiveTime")
        low, high = _kid(eff, "low"), _kid(eff, "high")
        self.spec.update(type=_st(obs), collected=_time(low), received=_time(high))
        self.spec_paths.update(collected=_where(low), received=_where(high))

    def _quantitative(self, obs: etree._Element, kind: str, v: etree._Element | None, where: str) -> None:
        self.fields["value"] = _st(obs)
        self.paths["value"] = where
        if kind == "PQ" and v is not None and _attr(v, "unit") not in ("", "1"):
            self.fields["unit"] = _used_attr(v, "unit")
        for sub in _nested(obs):
            if _de(sub) == "DE04.30.016.00":
                self.fields["unit"] = _st(sub)
            else:
                _not_mapped(self.notes, sub, "an observation under the quantitative result")
        self.fields["interpretation"] = tuple(c for i in _kids(obs, "interpretationCode") if (c := _cd(i)))
        self.paths["interpretation"] = _where(_kid(obs, "interpretationCode"))
        rng = _kid(obs, "referenceRange", "observationRange")
        if rng is not None:
            rv = _kid(rng, "value")
            low, high = _kid(rv, "low"), _kid(rv, "high")
            self.fields.update(ref_low=_used_attr(low, "value"), ref_high=_used_attr(high, "value"),
                               ref_unit=_used_attr(low, "unit") or _used_attr(high, "unit"),
                               ref_text=_text(_kid(rng, "text")))

    def build(self) -> Item | None:
        """The item, or None when it names nothing and holds nothing (an empty template run)."""
        if self.spec or self.specimen_no:
            self.fields["specimen"] = Specimen(number=self.specimen_no, paths=self.spec_paths, **self.spec)
        content = any(self.fields.get(k) for k in ("code", "name", "value", "text", "result_code"))
        if not content:
            return None
        if not self.fields.get("code") and not self.fields.get("name"):
            self.notes.warn("cda-item-without-code", "a result has no item code (DE04.30.019.00) or name; kept with "
                            "text only", self.fields["where"])
        return Item(paths=self.paths, **self.fields)


def _organizer(org: etree._Element, notes: Notes, specimen_no: str) -> list[Item]:
    """An organizer CLUSTER: one item from its DE components; coded result components are items of their own."""
    reader = _ItemReader(org, notes, specimen_no)
    status = _kid(org, "statusCode")
    reader.fields["status"] = _used_attr(status, "code")
    reader.paths["status"] = _where(status)
    extra: list[Item] = []
    for comp in _kids(org, "component"):
        for obs in _kids(comp, "observation"):
            de = _de(obs)
            if de in ITEM_DES and not reader.has(de):
                reader.add(obs, de)
            elif de in ITEM_DES:
                notes.warn("cda-item-element-repeated", f"{de} appears twice in one organizer; the second was not "
                           "mapped", _where(obs))
            elif not de and (coded := _coded_result(obs, notes)):
                extra.append(coded)
            else:
                _not_mapped(notes, obs, f"organizer component {de or 'without a DE code'}")
    item = reader.build()
    return [item, *extra] if item else extra


def _coded_result(obs: etree._Element, notes: Notes) -> Item | None:
    """An observation coded with a test code (not a data element) and carrying a value: one result item, read as a
    DE04.30.015.00 result would be (value, unit, interpretation, reference range) or as DE04.30.017.00 when coded."""
    code_el = _kid(obs, "code")
    kind, v = _value(obs)
    if _attr(code_el, "codeSystem") in ("", S.OID_DE) or not _attr(code_el, "code") or v is None:
        return None
    reader = _ItemReader(obs, notes, "")
    code = _cd(code_el)
    if code is not None:
        reader.fields.update(code=code.code, code_system=code.system, name=code.display)
    reader.paths["code"] = _where(code_el)
    eff = _kid(obs, "effectiveTime")
    reader.fields["time"], reader.paths["time"] = _time(eff), _where(eff)
    status = _kid(obs, "statusCode")
    reader.fields["status"], reader.paths["status"] = _used_attr(status, "code"), _where(status)
    if v.get("nullFlavor"):
        reader.fields["absent"], reader.paths["absent"] = v.get("nullFlavor"), _where(v)
        use(v)
    elif kind in _CODED:
        reader.fields["result_code"], reader.paths["result"] = _cd(v), _where(v)
    else:
        reader._quantitative(obs, kind, v, _where(v))
    return reader.build()


class _Reader:
    def __init__(self, root: etree._Element, notes: Notes) -> None:
        self.root = root
        self.notes = notes
        self.custodian_ids: tuple[Id, ...] = ()

    # --- header ---
    def doc_type(self) -> tuple[str, dict[str, Any]]:
        code_el = _kid(self.root, "code")
        code = _attr(code_el, "code")
        system = _attr(code_el, "codeSystem")
        template_els = _kids(self.root, "templateId")
        templates = [_attr(t, "root") for t in template_els]
        by_template = next((hit for t in templates if (hit := document_type_by_template(t))), None)
        types = document_types()
        realm_el = _kid(self.root, "realmCode")
        realm = _used_attr(realm_el, "code")
        if realm and realm != "CN":
            self.notes.warn("cda-realm", f"realmCode is {realm!r}, not CN", _where(realm_el))
        type_id = _kid(self.root, "typeId")
        if _attr(type_id, "root") == S.CDA_TYPE_ID:  # CDA R2's own marker: read, nothing to map
            use(type_id)
        if code in types and (not system or system == S.OID_DOC_TYPE):
            if by_template and by_template[0] != code:
                self.notes.warn("cda-template-code-mismatch",
                                f"templateId names {by_template[0]} ({by_template[1]['title']}) but code is {code}; "
                                "code wins", _where(code_el))
            type_code, spec = code, types[code]
            use(code_el)
        elif by_template:
            type_code, spec = by_template
            self.notes.warn("cda-document-code", f"document code {code!r} is not a WS/T 500 type code; recognised "
                            f"{type_code} from templateId", _where(code_el) or "/ClinicalDocument/code")
            use(code_el)
        else:
            raise UnsupportedMessage(
                f"not a recognised WS/T 500 document: code {code or '(none)'!r} (codeSystem {system or '(none)'}), "
                f"templateId {', '.join(templates) or '(none)'}", details="cda-unknown-document-type",
                expression=_where(code_el) or "/ClinicalDocument/code")
        if spec.get("kind") is None:
            raise UnsupportedMessage(
                f"WS/T 500 part {spec['part']} {spec['title']} ({type_code}) is recognised but not converted; "
                "supported: C0006 检查报告, C0007 检验记录", details="cda-document-type-not-supported",
                expression=_where(code_el) or "/ClinicalDocument/code")
        use(*(t for t in template_els if _attr(t, "root") == spec["templateId"]))
        return type_code, spec

    def patient(self) -> tuple[Patient, Encounter | None, tuple[Id, ...]]:
        rt = _kid(self.root, "recordTarget", "patientRole")
        if rt is None:
            raise ParseError("the document has no recordTarget/patientRole", details="cda-no-patient",
                             expression="/ClinicalDocument/recordTarget")
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
        age = (_used_attr(age_el, "value"), _used_attr(age_el, "unit")) if _attr(age_el, "value") else None
        nationality = _cd(_kid(p, "nationality")) or _cd(_kid(p, "nationalityCode"))
        addr = _kid(rt, "addr")
        parts = tuple((de, _text(_kid(addr, name))) for de, name in S.ADDRESS_PARTS if _text(_kid(addr, name)))
        address = parts or ((("", _text(addr)),) if _text(addr) else ())
        birth = _kid(p, "birthTime")
        patient = Patient(
            ids=tuple(patient_ids), name=_text(_kid(p, "name")), gender=_cd(_kid(p, "administrativeGenderCode")),
            birth_time=_time(birth), age=age, marital=_cd(_kid(p, "maritalStatusCode")),
            ethnicity=_cd(_kid(p, "ethnicGroupCode")), nationality=nationality,
            telecom=tuple(v for t in _kids(rt, "telecom") if (v := _used_attr(t, "value"))), address=address,
            where=_where(p if p is not None else rt), paths={"birth_time": _where(birth), "ids": _where(rt)})
        ptype = _cd(_kid(rt, "patientType", "patienttypeCode"))
        encounter = self.encounter(ptype)
        return patient, encounter, tuple(doc_ids)

    def encounter(self, ptype: Code | None) -> Encounter | None:
        enc = _kid(self.root, "componentOf", "encompassingEncounter")
        start = end = ""
        locations: list[tuple[str, Id | None, str]] = []
        if enc is not None:
            eff = _kid(enc, "effectiveTime")
            start = _time(_kid(eff, "low")) or _time(eff)
            end = _time(_kid(eff, "high"))
            node = _kid(enc, "location", "healthCareFacility", "serviceProviderOrganization")
            while node is not None:
                node = _kid(node, "asOrganizationPartOf", "wholeOrganization")
                if node is None:
                    break
                id_el = _kid(node, "id")
                kind = _LOCATION_KIND.get(_attr(id_el, "root"), "")
                if not kind:
                    if Id(_attr(id_el, "root"), _attr(id_el, "extension")) in self.custodian_ids:
                        use(id_el, _kid(node, "name"))  # the hospital at the top: Encounter.serviceProvider
                    continue
                ident = _ii(id_el)
                name = _text(_kid(node, "name"))
                if ident or name:
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
        time_el = _kid(el, "time")
        return Party(name, ids, _used_attr(_kid(ent, "code"), "displayName"), _time(time_el),
                     paths={"time": _where(time_el), "where": _where(el)})

    def organization(self, el: etree._Element | None) -> Party | None:
        if el is None:
            return None
        name, ids = _text(_kid(el, "name")), _ids(el)
        return Party(name, ids, paths={"where": _where(el)}) if name or ids else None

    def header_codes(self) -> dict[str, Any]:
        """confidentialityCode, languageCode, versionNumber and relatedDocument."""
        out: dict[str, Any] = {"confidentiality": _cd(_kid(self.root, "confidentialityCode")),
                               "language": _used_attr(_kid(self.root, "languageCode"), "code"),
                               "version": _used_attr(_kid(self.root, "versionNumber"), "value")}
        related = []
        for rel in _kids(self.root, "relatedDocument"):
            parent = _ii(_kid(rel, "parentDocument", "id"))
            if parent:
                related.append((rel.get("typeCode") or "", parent))
        out["related"] = tuple(related)
        return out

    # --- body ---
    def sections(self) -> list[etree._Element]:
        body = _kid(self.root, "component", "structuredBody")
        if body is None:
            nb = _kid(self.root, "component", "nonXMLBody")
            if nb is not None:
                raise UnsupportedMessage("the document has a nonXMLBody; only structuredBody documents convert",
                                         details="cda-non-xml-body", expression=_where(nb))
            return []
        return [s for comp in _kids(body, "component") for s in _kids(comp, "section")]


def _share_specimen(items: list[Item]) -> list[Item]:
    """An item without specimen details uses the document's one described specimen, when there is one."""
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


class _Body:
    """The body's facts: results (organizers, flat runs, coded results), diagnoses, report-level elements."""

    def __init__(self, notes: Notes, specimen_no: str) -> None:
        self.notes = notes
        self.specimen_no = specimen_no
        self.items: list[Item] = []
        self.diagnoses: list[Diagnosis] = []
        self.fields: dict[str, str] = {}
        self.paths: dict[str, str] = {}
        self.unread: list[str] = []
        self.empty: list[str] = []
        self.absent = ""

    def section(self, section: etree._Element) -> None:
        code_el, title_el = _kid(section, "code"), _kid(section, "title")
        loinc = _attr(code_el, "code") if _attr(code_el, "codeSystem") in ("", S.OID_LOINC) else ""
        results = results_section(loinc, _attr(code_el, "displayName") + _val(title_el.text if title_el is not None
                                                                                else ""))
        use(code_el, title_el)  # the section's code and title say what it holds; its facts go to the entries
        if results and section.get("nullFlavor"):
            self.absent = section.get("nullFlavor") or ""
        run: _ItemReader | None = None
        for entry in _kids(section, "entry"):
            for stmt in (c for c in entry if isinstance(c.tag, str)):
                name = _local(stmt)
                de = _de(stmt) if name == "observation" else ""
                if de in ITEM_DES:
                    if run is None or run.starts_next(de):
                        self._end(run)
                        run = _ItemReader(stmt, self.notes, self.specimen_no)
                    run.add(stmt, de)
                    continue
                if name == "organizer":
                    self._end(run)
                    run = None
                    found = _organizer(stmt, self.notes, self.specimen_no)
                    self.items.extend(found)
                    if not found:
                        self._nothing(stmt)
                elif de:
                    self._de_entry(stmt, de)
                elif results and name == "observation" and (coded := _coded_result(stmt, self.notes)):
                    self._end(run)
                    run = None
                    self.items.append(coded)
                else:
                    self._unread(stmt, f"entry <{name}>")
        self._end(run)

    def _end(self, run: _ItemReader | None) -> None:
        if run is None:
            return
        item = run.build()
        if item is not None:
            self.items.append(item)
        elif run.fields.get("absent"):  # a result slot stated absent, naming no test
            self.absent = self.absent or run.fields["absent"]
        else:
            self.empty.append(run.fields["where"])

    def _nothing(self, org: etree._Element) -> None:
        """An organizer that gave no item: its results stated absent (a nullFlavor value), or left blank."""
        absent = next((v.get("nullFlavor") for v in org.iter() if isinstance(v.tag, str) and _local(v) == "value"
                       and v.get("nullFlavor")), "")
        if absent:
            self.absent = self.absent or absent
        else:
            self.empty.append(_where(org))

    def _de_entry(self, stmt: etree._Element, de: str) -> None:
        if de == "DE05.01.024.00":
            _, v = _value(stmt)
            eff = _kid(stmt, "effectiveTime")
            code = _cd(v)
            if code:
                self.diagnoses.append(Diagnosis(code, code.display, _time(eff), _where(stmt),
                                                paths={"date": _where(eff), "code": _where(v)}))
            else:
                self._unread(stmt, "diagnosis DE05.01.024.00 without a code")
            return
        if de in _REPORT_FIELDS:
            key = _REPORT_FIELDS[de]
            if key in self.fields and de != "DE04.50.132.00":
                self._unread(stmt, f"a second {de}")  # the first one is kept
                return
            value = _st(stmt)
            if value:
                self.fields[key] = value
                _, v = _value(stmt)
                self.paths[key] = _where(v)
            return
        label = data_element(de).get("name", "")
        self._unread(stmt, f"entry {de} {label}".strip())

    def _unread(self, stmt: etree._Element, what: str) -> None:
        """An entry no reader recognised; it counts against a report without results when it holds content beyond
        its own code (a blank template entry does not)."""
        if any(has_content(e) for e in stmt.iter() if isinstance(e.tag, str) and e is not stmt
               and not (_local(e) == "code" and e.getparent() is stmt)):
            self.unread.append(_where(stmt))
        _not_mapped(self.notes, stmt, what)


def read_document(data: bytes, notes: Notes, max_bytes: int = MAX_BYTES) -> Report:
    """Parse and read a WS/T 500 lab or exam document. Raises ParseError / UnsupportedMessage saying where.

    Every element with content that the reader did not use is reported (cda-element-not-mapped, by XPath)."""
    root, _encoding, decode_notes = parse_xml(data, max_bytes)
    for n in decode_notes:
        notes.warn("cda-encoding-undeclared", n, "line 1")
    if _local(root) != "ClinicalDocument":
        raise ParseError(f"the root element is <{_local(root)}>, not <ClinicalDocument>", details="cda-not-cda",
                         expression=_where(root))
    if etree.QName(root).namespace not in (V3, None):
        notes.warn("cda-namespace", f"the root namespace is {etree.QName(root).namespace!r}, not urn:hl7-org:v3",
                   _where(root))
    with tracking() as used, locating():
        report = _read(root, notes)
        for issue in unused(root, used):
            notes.add(issue)
    return report


def _read(root: etree._Element, notes: Notes) -> Report:
    r = _Reader(root, notes)
    type_code, spec = r.doc_type()
    for child in root:
        if isinstance(child.tag, str) and _local(child) not in _HEADER_HANDLED:
            notes.inform("cda-header-not-mapped", f"header element <{_local(child)}> was not mapped", _where(child))
            use_tree(child)
    custodian = r.organization(_kid(root, "custodian", "assignedCustodian", "representedCustodianOrganization"))
    r.custodian_ids = custodian.ids if custodian else ()
    patient, encounter, doc_ids = r.patient()
    specimen_no = next((i.extension for i in doc_ids if i.root == S.OID_SPECIMEN_NO), "")
    report_ids = tuple(i for i in doc_ids if i.root != S.OID_SPECIMEN_NO)
    authors = tuple(p for a in _kids(root, "author") if (p := r.party(a, "assignedAuthor")))
    legal = r.party(_kid(root, "legalAuthenticator"), "assignedEntity")
    auths = tuple(p for a in _kids(root, "authenticator") if (p := r.party(a, "assignedEntity")))
    req_dept = req_org = None
    requester = ""
    for part in _kids(root, "participant"):
        scoping = _kid(part, "associatedEntity", "scopingOrganization")
        if scoping is not None and part.get("typeCode") in ("PRF", None):
            req_dept = r.organization(scoping)
            req_org = r.organization(_kid(scoping, "asOrganizationPartOf", "wholeOrganization"))
            requester = _where(part)
    body = _Body(notes, specimen_no)
    for section in r.sections():
        body.section(section)
    eff_el = _kid(root, "effectiveTime")
    id_el = _kid(root, "id")
    title = _text(_kid(root, "title"))
    return Report(
        kind=spec["kind"], type_code=type_code, title=title or spec["title"], doc_id=_ii(id_el),
        effective_time=_time(eff_el), patient=patient, authors=authors, legal_authenticator=legal,
        authenticators=auths, custodian=custodian, requester_department=req_dept, requester_organization=req_org,
        encounter=encounter, diagnoses=tuple(body.diagnoses), items=tuple(_share_specimen(body.items)),
        ids=report_ids, results_absent=body.absent, unread=tuple(body.unread), empty=tuple(body.empty),
        paths={"effective_time": _where(eff_el) or "/ClinicalDocument/effectiveTime", "doc_id": _where(id_el),
               "ids": _where(_kid(root, "recordTarget", "patientRole")), "requester": requester,
               "encounter": _where(_kid(root, "componentOf", "encompassingEncounter"))
               or _where(_kid(root, "recordTarget", "patientRole")), **body.paths},
        **r.header_codes(), **body.fields)
