"""Report → WS/T 500 ClinicalDocument (CDA R2, element order of POCD_MT000040, the national template layout).

Follows the part 6 / part 7 templates: results as organizer CLUSTERs (item code ST, result code CD, quantitative
result REAL with its unit in a nested DE04.30.016.00 observation), report entries as ST observations. Additions the
templates lack but CDA R2 allows: interpretationCode and referenceRange on the quantitative result, and the item name
as a nested DE04.30.020.00 observation. The national non-CDA elements (patientType, age, nationality) are written
where the templates put them.
"""

from __future__ import annotations

from lxml import etree

from mappers.cda_cn import systems as S
from mappers.cda_cn.model import Code, Id, Item, Party, Report
from mappers.cda_cn.tables import data_element, document_types

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {None: V3, "xsi": XSI}
DE_NAME = "卫生信息数据元目录"


def _el(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{V3}}}{name}", {k: v for k, v in attrs.items() if v})
    if text:
        el.text = text
    return el


def _ii(parent: etree._Element, name: str, i: Id | None) -> etree._Element:
    if i is None:
        return _el(parent, name, nullFlavor="UNK")
    return _el(parent, name, root=i.root, extension=i.extension)


def _cd(parent: etree._Element, name: str, c: Code, xsi_type: str = "") -> etree._Element:
    attrs = {"code": c.code, "codeSystem": c.system, "codeSystemName": c.system_name, "displayName": c.display}
    el = _el(parent, name, **attrs)
    if xsi_type:
        el.set(f"{{{XSI}}}type", xsi_type)
    return el


def _de_obs(parent: etree._Element, de: str, label: str = "") -> etree._Element:
    obs = _el(parent, "observation", classCode="OBS", moodCode="EVN")
    _el(obs, "code", code=de, codeSystem=S.OID_DE, codeSystemName=DE_NAME,
        displayName=label or data_element(de).get("name", ""))
    return obs


def _value(obs: etree._Element, xsi_type: str, text: str | None = None, **attrs: str) -> etree._Element:
    v = _el(obs, "value", text, **attrs)
    v.set(f"{{{XSI}}}type", xsi_type)
    return v


def _st_entry(section: etree._Element, de: str, text: str) -> None:
    obs = _de_obs(_el(section, "entry"), de)
    _value(obs, "ST", text)


def _time(parent: etree._Element, name: str, ts: str) -> etree._Element:
    return _el(parent, name, value=ts) if ts else _el(parent, name, nullFlavor="UNK")


def _person(parent: etree._Element, entity: str, p: Party, default_root: str) -> None:
    ent = _el(parent, entity, classCode="ASSIGNED")
    for i in p.ids or (None,):
        _ii(ent, "id", i)
    if p.role and entity == "assignedEntity":
        _el(ent, "code", displayName=p.role)
    if p.name:
        person = _el(ent, "assignedPerson", classCode="PSN", determinerCode="INSTANCE")
        _el(person, "name", p.name)


def _organization(parent: etree._Element, name: str, org: Party | None, **attrs: str) -> etree._Element:
    el = _el(parent, name, **attrs)
    for i in (org.ids if org else ()) or (None,):
        _ii(el, "id", i)
    if org and org.name:
        _el(el, "name", org.name)
    return el


def _header(doc: etree._Element, r: Report) -> None:
    spec = document_types()[r.type_code]
    _el(doc, "realmCode", code="CN")
    _el(doc, "typeId", root=S.CDA_TYPE_ID, extension="POCD_MT000040")
    _el(doc, "templateId", root=spec["templateId"])
    _ii(doc, "id", r.doc_id)
    _el(doc, "code", code=r.type_code, codeSystem=S.OID_DOC_TYPE, codeSystemName="卫生信息共享文档规范编码体系")
    _el(doc, "title", r.title or spec["title"])
    _time(doc, "effectiveTime", r.effective_time)
    _el(doc, "confidentialityCode", code="N", codeSystem=S.OID_CONFIDENTIALITY, codeSystemName="Confidentiality",
        displayName="正常访问保密级别")
    _el(doc, "languageCode", code="zh-CN")
    if r.set_id:
        _ii(doc, "setId", r.set_id)
    if r.version:
        _el(doc, "versionNumber", value=r.version)


def _record_target(doc: etree._Element, r: Report) -> None:
    p = r.patient
    role = _el(_el(doc, "recordTarget", typeCode="RCT", contextControlCode="OP"), "patientRole", classCode="PAT")
    resident = next((i for i in p.ids if i.root == S.OID_RESIDENT_ID), None)
    role_ids = [i for i in p.ids if i.root != S.OID_RESIDENT_ID] + [i for i in r.ids]
    spec_no = next((i.specimen.number for i in r.items if i.specimen and i.specimen.number), "")
    if spec_no:
        role_ids.append(Id(S.OID_SPECIMEN_NO, spec_no))
    for i in role_ids or [None]:
        _ii(role, "id", i)
    if p.address:
        parts = dict(S.ADDRESS_PARTS)
        if all(k in parts for k, _ in p.address):
            addr = _el(role, "addr")
            for key, value in p.address:
                _el(addr, parts[key], value)
        else:
            _el(role, "addr", "".join(v for _, v in p.address))
    if r.encounter and r.encounter.patient_type:
        _cd(_el(role, "patientType"), "patienttypeCode", r.encounter.patient_type)
    for t in p.telecom:
        _el(role, "telecom", value=t)
    pat = _el(role, "patient", classCode="PSN", determinerCode="INSTANCE")
    if resident:
        _ii(pat, "id", resident)
    _el(pat, "name", p.name) if p.name else _el(pat, "name", nullFlavor="UNK")
    if p.gender:
        _cd(pat, "administrativeGenderCode", Code(p.gender.code, S.OID_SEX, p.gender.display,
                                                   "生理性别代码表(GB/T 2261.1)"))
    if p.birth_time:
        _el(pat, "birthTime", value=p.birth_time)
    if p.marital:
        _cd(pat, "maritalStatusCode", p.marital)
    if p.ethnicity:
        _cd(pat, "ethnicGroupCode", Code(p.ethnicity.code, S.OID_ETHNICITY, p.ethnicity.display,
                                          "民族类别代码表(GB 3304)"))
    if p.nationality:
        _cd(pat, "nationality", p.nationality)
    if p.age:
        _el(pat, "age", value=p.age[0], unit=p.age[1])


def _parties(doc: etree._Element, r: Report) -> None:
    for a in r.authors or (Party(),):
        author = _el(doc, "author", typeCode="AUT", contextControlCode="OP")
        _time(author, "time", a.time or r.effective_time)
        _person(author, "assignedAuthor", a, S.OID_AUTHOR)
    cust = _el(_el(doc, "custodian", typeCode="CST"), "assignedCustodian", classCode="ASSIGNED")
    _organization(cust, "representedCustodianOrganization", r.custodian, classCode="ORG", determinerCode="INSTANCE")
    for name, who in [("legalAuthenticator", r.legal_authenticator), *(("authenticator", a) for a in r.authenticators)]:
        if who is None:
            continue
        el = _el(doc, name)
        _time(el, "time", who.time)
        _el(el, "signatureCode", code="S")
        _person(el, "assignedEntity", who, S.OID_PRACTITIONER)
    if r.requester_department or r.requester_organization:
        assoc = _el(_el(doc, "participant", typeCode="PRF"), "associatedEntity", classCode="ASSIGNED")
        if r.requester_department:
            scoping = _organization(assoc, "scopingOrganization", r.requester_department)
            if r.requester_organization:
                _organization(_el(scoping, "asOrganizationPartOf"), "wholeOrganization", r.requester_organization)
        else:
            _organization(assoc, "scopingOrganization", r.requester_organization)


def _encounter(doc: etree._Element, r: Report) -> None:
    enc = r.encounter
    if enc is None and not r.custodian:
        return
    ee = _el(_el(doc, "componentOf"), "encompassingEncounter")
    if enc and enc.start and enc.end:
        eff = _el(ee, "effectiveTime")
        _el(eff, "low", value=enc.start)
        _el(eff, "high", value=enc.end)
    else:
        _time(ee, "effectiveTime", enc.start if enc else "")
    order = {"bed": 0, "room": 1, "dept": 2, "ward": 3}
    locations = sorted(enc.locations if enc else (), key=lambda loc: order[loc[0]])
    if not locations and not r.custodian:
        return
    node = _el(_el(_el(ee, "location"), "healthCareFacility"), "serviceProviderOrganization")
    for _kind, ident, name in locations:
        node = _el(_el(node, "asOrganizationPartOf", classCode="PART"), "wholeOrganization", classCode="ORG",
                   determinerCode="INSTANCE")
        _ii(node, "id", ident)
        if name:
            _el(node, "name", name)
    if r.custodian:
        _organization(_el(node, "asOrganizationPartOf", classCode="PART"), "wholeOrganization", r.custodian,
                      classCode="ORG", determinerCode="INSTANCE")


def _section(body: etree._Element, code: str = "", display: str = "", title: str = "") -> etree._Element:
    section = _el(_el(body, "component"), "section")
    if code:
        _el(section, "code", code=code, codeSystem=S.OID_LOINC, codeSystemName="LOINC", displayName=display)
    else:
        _el(section, "code", displayName=display)
    if title:
        _el(section, "title", title)
    _el(section, "text")
    return section


def _organizer(section: etree._Element, item: Item) -> None:
    org = _el(_el(section, "entry"), "organizer", classCode="CLUSTER", moodCode="EVN")
    _el(org, "statusCode", code="completed")
    obs = _de_obs(_el(org, "component"), "DE04.30.019.00")
    if item.time:
        _el(obs, "effectiveTime", value=item.time)
    if item.code_system:
        _value(obs, "CD", code=item.code, codeSystem=item.code_system, displayName=item.name)
    else:
        _value(obs, "ST", item.code or item.name)
    if item.name and not item.code_system:
        _value(_de_obs(_el(obs, "entryRelationship", typeCode="COMP"), "DE04.30.020.00"), "ST", item.name)
    sp = item.specimen
    if sp and (sp.type or sp.collected or sp.received):
        sub = _de_obs(_el(obs, "entryRelationship", typeCode="COMP"), "DE04.50.134.00")
        if sp.collected or sp.received:
            eff = _el(sub, "effectiveTime")
            _time(eff, "low", sp.collected)
            _time(eff, "high", sp.received)
        _value(sub, "ST", sp.type)
    if sp and sp.status:
        _value(_de_obs(_el(obs, "entryRelationship", typeCode="COMP"), "DE04.50.135.00"), "ST", sp.status)
    if sp and sp.fixative:
        _value(_de_obs(_el(obs, "entryRelationship", typeCode="COMP"), "DE04.30.019.00", "标本固定液名称"), "ST",
               sp.fixative)
    if item.result_code:
        rc = _de_obs(_el(org, "component"), "DE04.30.017.00")
        _cd(rc, "value", item.result_code, "CD")
    elif item.text and not item.value:
        _value(_de_obs(_el(org, "component"), "DE04.30.017.00"), "ST", item.text)
    if item.value:
        q = _de_obs(_el(org, "component"), "DE04.30.015.00")
        if _is_real(item.value):
            _value(q, "REAL", value=item.value)
        else:
            _value(q, "ST", item.value)
        for c in item.interpretation:
            _el(q, "interpretationCode", code=c.code, codeSystem=S.OID_INTERPRETATION, displayName=c.display)
        if item.unit:
            _value(_de_obs(_el(q, "entryRelationship", typeCode="COMP"), "DE04.30.016.00"), "ST", item.unit)
        if item.ref_low or item.ref_high or item.ref_text:
            rng = _el(_el(q, "referenceRange"), "observationRange")
            if item.ref_text:
                _el(rng, "text", item.ref_text)
            if item.ref_low or item.ref_high:
                v = _value(rng, "IVL_PQ")
                for bound, value in (("low", item.ref_low), ("high", item.ref_high)):
                    if value:
                        _el(v, bound, value=value, unit=item.ref_unit or "1")


def _is_real(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _body(doc: etree._Element, r: Report) -> None:
    body = _el(_el(doc, "component"), "structuredBody")
    if r.diagnoses:
        section = _section(body, "29548-5", "Diagnosis")
        for dx in r.diagnoses:
            obs = _de_obs(_el(section, "entry"), "DE05.01.024.00")
            if dx.date:
                _el(obs, "effectiveTime", value=dx.date)
            _cd(obs, "value", Code(dx.code.code, dx.code.system, dx.name or dx.code.display,
                                   dx.code.system_name or "ICD-10"), "CD")
    if r.chief_complaint:
        _st_entry(_section(body, "10154-3", "CHIEF COMPLAINT"), "DE04.01.119.00", r.chief_complaint)
    if r.kind == "lab":
        results = _section(body, "30954-2", "STUDIES SUMMARY")
    else:
        results = _section(body, "29545-1", "PHYSICAL EXAMINATION")
    if r.method:
        _st_entry(results, "DE02.10.027.00", r.method)
    if r.category:
        _st_entry(results, "DE04.30.018.00", r.category)
    for item in r.items:
        _organizer(results, item)
    report = _section(body, display="检验报告" if r.kind == "lab" else "检查报告")
    if r.kind == "lab" and r.conclusion:
        _st_entry(report, "DE04.50.130.00", r.conclusion)
    if r.kind == "exam":
        if r.findings:
            _st_entry(report, "DE04.50.131.00", r.findings)
        if r.conclusion:
            _st_entry(report, "DE04.50.132.00", r.conclusion)
    for de, text in (("DE08.10.026.00", r.report_department), ("DE08.10.013.00", r.report_organization),
                     ("DE06.00.179.00", r.remarks)):
        if text:
            _st_entry(report, de, text)


def write_document(r: Report) -> etree._Element:
    doc = etree.Element(f"{{{V3}}}ClinicalDocument", nsmap=NSMAP)
    doc.set(f"{{{XSI}}}schemaLocation", "urn:hl7-org:v3 ../sdschemas/CDA.xsd")
    _header(doc, r)
    _record_target(doc, r)
    _parties(doc, r)
    _encounter(doc, r)
    _body(doc, r)
    return doc


def serialize(doc: etree._Element, encoding: str = "UTF-8") -> bytes:
    return etree.tostring(doc, xml_declaration=True, encoding=encoding, pretty_print=True)
