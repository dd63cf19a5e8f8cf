"""FHIR R4 Bundle → Report: the facts a WS/T 500 document or WS 445 dataset can carry.

Picks the first DiagnosticReport (others are reported), its subject, encounter, order, results, specimens and
performers, the Composition when there is one (document id, type, attesters, custodian) and the Conditions.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes
from mappers.cda_cn.model import Code, Diagnosis, Encounter, Id, Item, Party, Patient, Report, Specimen
from mappers.cda_cn.names import name_text
from mappers.cda_cn.tables import document_types, ucum_reverse
from mappers.cda_cn.times import local_ts as fhir_to_ts
from mappers.conversion import load_bundle
from mappers.exceptions import EmitError, ParseError
from mappers.terminology import translate, translate_all

_PHYSICAL_KIND = {"bd": "bed", "ro": "room", "wa": "ward"}
_ROOT_KIND = {S.OID_BED: "bed", S.OID_ROOM: "room", S.OID_DEPT: "dept", S.OID_WARD: "ward"}
_AGE_UNIT = {"a": "岁", "mo": "月", "d": "天"}


def _codings(cc: dict[str, Any] | None) -> list[dict[str, Any]]:
    return (cc or {}).get("coding") or []


def _first(cc: dict[str, Any] | None, system: str) -> dict[str, Any] | None:
    return next((c for c in _codings(cc) if c.get("system") == system), None)


def _ids(ident: list[dict[str, Any]] | dict[str, Any] | None, notes: Notes, where: str) -> tuple[Id, ...]:
    out = []
    for i in [ident] if isinstance(ident, dict) else ident or []:
        oid = S.system_oid(i.get("system", ""))
        if i.get("system") in S.RESIDENT_ID_ALIASES:
            oid = S.OID_RESIDENT_ID
        if oid and i.get("value"):
            out.append(Id(oid, i["value"]))
        elif i.get("value") and not i.get("system", "").startswith(S.NS + "id-document:"):
            notes.inform("cn-identifier-without-oid", f"identifier system {i.get('system') or '(none)'!r} has no "
                         "OID, so it cannot be a CDA II root; not written", where)
    return tuple(out)


class _Bundle:
    def __init__(self, bundle: dict[str, Any], notes: Notes) -> None:
        self.notes = notes
        self.resources: list[dict[str, Any]] = []
        self.by_ref: dict[str, dict[str, Any]] = {}
        for n, entry in enumerate(bundle.get("entry") or []):
            res = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(res, dict) or "resourceType" not in res:
                notes.warn("fhir-entry-without-resource", f"entry {n} has no resource; skipped", f"Bundle.entry[{n}]")
                continue
            self.resources.append(res)
            if entry.get("fullUrl"):
                self.by_ref[entry["fullUrl"]] = res
            if res.get("id"):
                self.by_ref[f"{res['resourceType']}/{res['id']}"] = res

    def get(self, reference: dict[str, Any] | None) -> dict[str, Any] | None:
        if not reference or "reference" not in reference:
            return None
        ref = reference["reference"]
        return self.by_ref.get(ref) or self.by_ref.get("/".join(ref.rsplit("/", 2)[-2:]))

    def all(self, rtype: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == rtype]


def _kind(comp: dict[str, Any] | None, dr: dict[str, Any], notes: Notes) -> tuple[str, str]:
    types = document_types()
    for cc in ((comp or {}).get("type"), dr.get("code")):
        hit = _first(cc, S.DOC_TYPE_SYSTEM)
        if hit and types.get(hit.get("code", ""), {}).get("kind"):
            return types[hit["code"]]["kind"], hit["code"]
    cats = {c.get("code") for cc in dr.get("category", []) for c in _codings(cc)}
    if cats & {"RAD", "imaging", "OTH", "CUS", "EC", "CT", "MR", "US"}:
        return "exam", "C0006"
    if not cats & {"LAB", "GE", "HM", "CH", "MB", "laboratory"}:
        notes.inform("cn-document-type-assumed", "the report names no WS/T 500 document type; written as a lab "
                     "record (C0007)", "DiagnosticReport.code")
    return "lab", "C0007"


def _gender(p: dict[str, Any], notes: Notes) -> Code | None:
    ext = next((e for e in p.get("extension", []) if e.get("url") == S.EXT_GB_SEX), None)
    gender = p.get("gender")
    if ext and ext.get("valueCoding", {}).get("code"):
        code = ext["valueCoding"]["code"]
        t = translate("gbt-2261.1-to-administrative-gender", code)
        if gender is None or (t and t.code == gender):
            return Code(code, S.OID_SEX, ext["valueCoding"].get("display", ""))
    if gender is None:
        return None
    t = translate("gbt-2261.1-to-administrative-gender", gender, reverse=True)
    if t is None:
        notes.warn("cn-gender-lossy", f"gender {gender!r} has no GB/T 2261.1 code; written as 9 (未说明的性别)",
                   "Patient.gender")
        return Code("9", S.OID_SEX, "未说明的性别")
    return Code(t.code, S.OID_SEX, t.display)


def _ext(res: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in res.get("extension", []) if e.get("url") == url), None)


def _patient(p: dict[str, Any], notes: Notes) -> tuple[Patient, list[Id]]:
    ids = list(_ids(p.get("identifier"), notes, "Patient.identifier"))
    docs = []
    for i in p.get("identifier", []):
        system = i.get("system", "")
        if system.startswith(S.NS + "id-document:") and i.get("value"):
            docs.append((system.rsplit(":", 1)[1], i["value"]))
    name = next((name_text(n) for n in p.get("name", []) if n.get("use") in (None, "official", "usual")), "")
    derived = any(e.get("url") == S.EXT_DERIVED for e in p.get("_birthDate", {}).get("extension", []))
    birth = "" if derived else fhir_to_ts(p.get("birthDate", ""))
    age = None
    age_ext = _ext(p, S.EXT_AGE)
    if age_ext and "valueAge" in age_ext:
        a = age_ext["valueAge"]
        value = a.get("value")
        unit = a.get("unit") if a.get("unit") in ("岁", "月", "天") else _AGE_UNIT.get(a.get("code", ""), "岁")
        age = (str(value), unit)
    nationality = None
    nat = _ext(p, S.NATIONALITY_EXT)
    if nat:
        cc = next((e.get("valueCodeableConcept") for e in nat.get("extension", []) if e.get("url") == "code"), None)
        gb = _first(cc, S.COUNTRY_SYSTEM)
        iso = _first(cc, S.ISO3166)
        if gb:
            nationality = Code(gb["code"], S.OID_COUNTRY, gb.get("display", ""))
        elif iso:
            alpha3 = next((t.code for t in translate_all("gbt-2659-to-iso-3166", iso["code"], reverse=True)
                           if len(t.code) == 3 and t.code.isalpha()), iso["code"])
            nationality = Code(alpha3, S.OID_COUNTRY, iso.get("display", ""))
    ethnicity = None
    eth = _ext(p, S.EXT_ETHNIC_GROUP)
    if eth:
        c = _first(eth.get("valueCodeableConcept"), S.ETHNICITY_SYSTEM)
        if c:
            ethnicity = Code(c["code"], S.OID_ETHNICITY, c.get("display", ""))
    marital = None
    m = _first(p.get("maritalStatus"), f"urn:oid:{S.OID_MARITAL}")
    if m:
        marital = Code(m["code"], S.OID_MARITAL, m.get("display", ""))
    address: tuple[tuple[str, str], ...] = ()
    if p.get("address"):
        a = p["address"][0]
        parts = [("DE02.01.009.01", a.get("state")), ("DE02.01.009.02", a.get("city")),
                 ("DE02.01.009.03", a.get("district"))]
        keys = [next((e.get("valueString") for e in (x or {}).get("extension", []) if e.get("url") ==
                      S.EXT_ADDRESS_PART), None) for x in a.get("_line", [])]
        defaults = ("DE02.01.009.04", "DE02.01.009.05", "DE02.01.009.06")
        parts += [(keys[n] if n < len(keys) and keys[n] else defaults[min(n, 2)], line)
                  for n, line in enumerate(a.get("line", []))]
        address = tuple((k, v) for k, v in parts if v) or ((("", a["text"]),) if a.get("text") else ())
    telecom = tuple(f"tel:{t['value']}" if t.get("system") == "phone" else t["value"]
                    for t in p.get("telecom", []) if t.get("value"))
    return Patient(ids=tuple(ids), id_documents=tuple(docs), name=name, gender=_gender(p, notes), birth_time=birth,
                   age=age, marital=marital, ethnicity=ethnicity, nationality=nationality, telecom=telecom,
                   address=address, where="Patient"), ids


def _party(res: dict[str, Any] | None, notes: Notes, time: str = "", role: str = "") -> Party | None:
    if res is None:
        return None
    name = res.get("name", "")
    if isinstance(name, list):
        name = next((name_text(n) for n in name), "")
    return Party(name, _ids(res.get("identifier"), notes, f"{res['resourceType']}.identifier"), role, time)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _code_of(cc: dict[str, Any] | None) -> Code | None:
    for c in _codings(cc):
        oid = S.system_oid(c.get("system", ""))
        if c.get("code") and oid:
            return Code(c["code"], oid, c.get("display", ""))
    return None


def _item(b: _Bundle, obs: dict[str, Any], notes: Notes) -> tuple[Item, str]:
    where = f"Observation/{obs.get('id', '?')}"
    cc = obs.get("code") or {}
    fields: dict[str, Any] = {"where": where, "name": cc.get("text", "")}
    coding = next(iter(_codings(cc)), None)
    if coding:
        system = coding.get("system", "")
        fields["code"] = coding.get("code", "")
        fields["name"] = coding.get("display") or fields["name"]
        if system not in (S.LOINC,) and not system.startswith(S.NS + "local:") and S.system_oid(system):
            fields["code_system"] = S.system_oid(system)
        elif system not in (S.LOINC, "") and not system.startswith(S.NS + "local:"):
            notes.inform("cn-item-system-dropped", f"item code system {system!r} has no OID; the code is written "
                         "as a local code", f"{where}.code")
    if fields["name"] == fields.get("code"):
        fields["name"] = ""
    fields["time"] = fhir_to_ts(obs.get("effectiveDateTime", ""))
    interpretations, result_code = [], None
    for i in obs.get("interpretation", []):
        v3 = _first(i, S.V3_INTERPRETATION)
        rc = _first(i, S.RESULT_CODE_SYSTEM)
        if v3:
            interpretations.append(Code(v3["code"], S.OID_INTERPRETATION, i.get("text") or v3.get("display", "")))
        if rc:
            result_code = Code(rc["code"], S.OID_RESULT_CODE, rc.get("display", ""))
    if "valueQuantity" in obs:
        q = obs["valueQuantity"]
        fields["value"] = q.get("comparator", "") + _number(q.get("value", ""))
        fields["unit"] = q.get("unit") or (ucum_reverse(q["code"]) if q.get("code") else "")
    elif "valueString" in obs:
        fields["text"] = obs["valueString"]
    elif "valueCodeableConcept" in obs:
        vc = obs["valueCodeableConcept"]
        code = _code_of(vc)
        if code:
            result_code = code
        else:
            fields["text"] = vc.get("text") or next((c.get("display") or c.get("code") for c in _codings(vc)), "")
    else:
        for key in ("valueInteger", "valueBoolean", "valueDateTime"):
            if key in obs:
                fields["text"] = str(obs[key])
    if obs.get("component"):
        notes.inform("cn-components-not-mapped", f"{len(obs['component'])} component(s) have no WS/T 500 element; "
                     "not written", f"{where}.component")
    fields["interpretation"] = tuple(interpretations)
    fields["result_code"] = result_code
    for rng in obs.get("referenceRange", [])[:1]:
        fields["ref_low"] = _number(rng["low"]["value"]) if "low" in rng else ""
        fields["ref_high"] = _number(rng["high"]["value"]) if "high" in rng else ""
        bound = rng.get("low") or rng.get("high") or {}
        fields["ref_unit"] = bound.get("code") or bound.get("unit", "")
        fields["ref_text"] = rng.get("text", "")
    spec = b.get(obs.get("specimen"))
    if spec:
        fields["specimen"] = Specimen(
            type=(spec.get("type") or {}).get("text") or next((c.get("display", "") for c in
                                                                _codings(spec.get("type"))), ""),
            status=next((c.get("text", "") for c in spec.get("condition", [])), ""),
            collected=fhir_to_ts(spec.get("collection", {}).get("collectedDateTime", "")),
            received=fhir_to_ts(spec.get("receivedTime", "")),
            fixative=next((c.get("additiveCodeableConcept", {}).get("text", "") for c in spec.get("container", [])),
                          ""),
            number=spec.get("accessionIdentifier", {}).get("value", ""))
    return Item(**fields), (obs.get("method") or {}).get("text", "")


def read_bundle(data: bytes | str | dict[str, Any], notes: Notes) -> Report:
    """Bundle → Report. Raises ParseError (not a Bundle, or content not shaped as FHIR JSON) or EmitError (no
    DiagnosticReport, no patient)."""
    bundle = load_bundle(data)
    try:
        report = _read_bundle(bundle, notes)
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as e:
        # The reader walks the JSON as FHIR R4 shapes it (objects, lists, strings where the spec puts them); content
        # shaped otherwise (a number where a list belongs, a string where an object does) ends the reading here: it
        # is the client's input, not a conversion fault. The validator names the element.
        raise ParseError(f"the Bundle's content is not shaped as FHIR R4 JSON ({type(e).__name__}: {e}); validate "
                         "it to find the element", details="fhir-bad-shape", expression="Bundle") from None
    _check_text(report, "Report")
    return report


def _check_text(value: Any, where: str) -> None:
    """Every text field of the model holds text (a FHIR string where the Bundle had an object is refused here, not
    in the CDA writer)."""
    if isinstance(value, tuple):
        for n, v in enumerate(value):
            _check_text(v, f"{where}[{n}]")
        return
    if not hasattr(value, "__dataclass_fields__"):
        return
    for f in fields(value):
        v = getattr(value, f.name)
        if f.type == "str" and not isinstance(v, str):
            raise ParseError(f"the Bundle gives {where}.{f.name} as {type(v).__name__}, not a string; validate it "
                             "to find the element", details="fhir-bad-shape", expression="Bundle")
        _check_text(v, f"{where}.{f.name}")


def _read_bundle(bundle: dict[str, Any], notes: Notes) -> Report:
    b = _Bundle(bundle, notes)
    reports = b.all("DiagnosticReport")
    if not reports:
        raise EmitError("the Bundle has no DiagnosticReport; a WS/T 500 lab or exam document reports one",
                        details="fhir-no-report", expression="Bundle.entry")
    dr = reports[0]
    if len(reports) > 1:
        notes.warn("cn-extra-reports", f"the Bundle has {len(reports)} DiagnosticReports; only the first was "
                   "converted", "Bundle.entry")
    comp = next(iter(b.all("Composition")), None)
    kind, type_code = _kind(comp, dr, notes)
    subject = b.get(dr.get("subject"))
    if subject is None or subject.get("resourceType") != "Patient":
        raise EmitError("the DiagnosticReport has no Patient subject in the Bundle; recordTarget needs one",
                        details="fhir-no-patient", expression="DiagnosticReport.subject")
    patient, _ = _patient(subject, notes)
    patient_ids = list(patient.ids)
    enc = b.get(dr.get("encounter"))
    encounter = None
    if enc:
        patient_ids += _ids(enc.get("identifier"), notes, "Encounter.identifier")
        ptype = next((_code_of(t) for t in enc.get("type", []) if _code_of(t)), None)
        locations = []
        for loc in enc.get("location", []):
            ident = loc.get("location", {}).get("identifier")
            i = _ids(ident, notes, "Encounter.location") if ident else ()
            phys = next((c.get("code") for c in _codings(loc.get("physicalType"))), "")
            kind_ = _ROOT_KIND.get(i[0].root if i else "", _PHYSICAL_KIND.get(phys, ""))
            display = loc.get("location", {}).get("display", "")
            if not isinstance(display, str):  # the writer sets it as the name's text
                raise ParseError(f"the Bundle gives Encounter.location.display as {type(display).__name__}, not a "
                                 "string", details="fhir-bad-shape", expression="Encounter.location.location.display")
            if kind_:
                locations.append((kind_, i[0] if i else None, display))
        period = enc.get("period", {})
        encounter = Encounter(ptype, fhir_to_ts(period.get("start", "")), fhir_to_ts(period.get("end", "")),
                              tuple(locations))
    patient = Patient(**{**{f: getattr(patient, f) for f in patient.__slots__}, "ids": tuple(patient_ids)})
    report_ids = list(_ids(dr.get("identifier"), notes, "DiagnosticReport.identifier"))
    req_dept = req_org = None
    for based in dr.get("basedOn", []):
        sr = b.get(based)
        if sr is None and based.get("identifier"):
            report_ids += _ids(based["identifier"], notes, "DiagnosticReport.basedOn")
        if sr:
            report_ids += _ids(sr.get("identifier"), notes, "ServiceRequest.identifier")
            requester = b.get(sr.get("requester"))
            if requester and requester["resourceType"] == "Organization":
                parent = b.get(requester.get("partOf"))
                req_dept, req_org = (_party(requester, notes), _party(parent, notes)) if parent else \
                    (None, _party(requester, notes))
    authors, legal, auths, custodian = [], None, [], None
    doc_id, title, effective = None, "", ""
    if comp:
        ident = comp.get("identifier")
        ids = _ids(ident, notes, "Composition.identifier") if ident else ()
        doc_id = ids[0] if ids else None
        title = comp.get("title", "")
        effective = fhir_to_ts(comp.get("date", ""))
        authors = [p for a in comp.get("author", []) if (r := b.get(a)) and r["resourceType"] == "Practitioner"
                   and (p := _party(r, notes))]
        for att in comp.get("attester", []):
            who = _party(b.get(att.get("party")), notes, fhir_to_ts(att.get("time", "")))
            if who and att.get("mode") == "legal":
                legal = Party(who.name, who.ids, "审核医师", who.time)
            elif who:
                auths.append(Party(who.name, who.ids, "检验技师" if kind == "lab" else "检查医师", who.time))
        custodian = _party(b.get(comp.get("custodian")), notes)
    if not authors:
        authors = [p for perf in dr.get("performer", []) if (r := b.get(perf)) and r["resourceType"] == "Practitioner"
                   and (p := _party(r, notes))]
    if legal is None:
        interp = next((b.get(r) for r in dr.get("resultsInterpreter", [])), None)
        legal = _party(interp, notes, role="审核医师") if interp else None
    rep_org = rep_dept = ""
    for perf in dr.get("performer", []):
        r = b.get(perf)
        if r and r["resourceType"] == "Organization":
            parent = b.get(r.get("partOf"))
            rep_dept, rep_org = (r.get("name", ""), parent.get("name", "")) if parent else ("", r.get("name", ""))
    if custodian is None:
        org = b.get(enc.get("serviceProvider")) if enc else None
        custodian = _party(org, notes)
    if not effective:
        effective = fhir_to_ts(dr.get("issued", "") or dr.get("effectiveDateTime", ""))
    items, findings, complaint, method = [], "", "", ""
    for r in dr.get("result", []):
        obs = b.get(r)
        if obs is None:
            notes.warn("fhir-dangling-reference", f"result {r.get('reference')!r} is not in the Bundle",
                       "DiagnosticReport.result")
            continue
        de = _first(obs.get("code"), S.DE_SYSTEM)
        if de and de.get("code") == "DE04.50.131.00":
            findings = obs.get("valueString", "")
        elif de and de.get("code") == "DE04.01.119.00":
            complaint = obs.get("valueString", "")
        else:
            item, m = _item(b, obs, notes)
            items.append(item)
            method = method or m
    diagnoses = []
    for cond in b.all("Condition"):
        codings = _codings(cond.get("code"))
        national = next((c for c in codings if c.get("system") == S.ICD10_CN_SYSTEM), None)
        chosen = national or next((c for c in codings if S.system_oid(c.get("system", ""))), None)
        if chosen is None:
            notes.inform("cn-condition-not-mapped", "a Condition has no OID-coded diagnosis; not written",
                         f"Condition/{cond.get('id', '?')}")
            continue
        code = Code(chosen["code"], S.system_oid(chosen["system"]) or "", chosen.get("display", ""), "ICD-10")
        diagnoses.append(Diagnosis(code, cond.get("code", {}).get("text", "") or code.display,
                                   fhir_to_ts(cond.get("recordedDate", ""))))
    note = _ext(dr, S.DR_NOTE_EXT)
    category = next((c.get("text", "") for c in dr.get("category", []) if c.get("text")), "")
    conclusion = dr.get("conclusion", "")
    return Report(
        kind=kind, type_code=type_code, title=title or document_types()[type_code]["title"], doc_id=doc_id,
        effective_time=effective, patient=patient, authors=tuple(authors), legal_authenticator=legal,
        authenticators=tuple(auths), custodian=custodian, requester_department=req_dept,
        requester_organization=req_org, encounter=encounter, diagnoses=tuple(diagnoses), method=method,
        category=category, items=tuple(items), conclusion=conclusion, findings=findings, chief_complaint=complaint,
        report_department=rep_dept, report_organization=rep_org,
        remarks=(note or {}).get("valueAnnotation", {}).get("text", ""), ids=tuple(report_ids))
