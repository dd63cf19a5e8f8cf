"""Patient: identifiers (resident ID checked), name split, sex via GB/T 2261.1, birth date, age, nationality,
ethnicity. Reads recordTarget/patientRole (CDA) or DE02.01.* (WS 445)."""

from __future__ import annotations

from datetime import date
from typing import Any

from mappers.cda_cn import systems as S
from mappers.cda_cn.emit import Ctx, coding, fhir_number, identifier
from mappers.cda_cn.model import Code, Patient, Report
from mappers.cda_cn.names import human_name
from mappers.cda_cn.resident_id import ResidentId, ResidentIdError, parse_resident_id
from mappers.cda_cn.tables import identifier_oids
from mappers.ids import resource_id
from mappers.terminology import translate

RESIDENT_TYPE = {"coding": [{"system": S.V2_0203, "code": "NI", "display": "National unique individual identifier"},
                            {"system": S.ID_DOC_TYPE_SYSTEM, "code": "01", "display": "居民身份证"}],
                 "text": "居民身份证号码 resident identity number"}
_AGE_UNITS = {"岁": ("a", "year"), "月": ("mo", "month"), "天": ("d", "day"), "日": ("d", "day")}


def _resident(ctx: Ctx, value: str, where: str) -> tuple[dict[str, Any], ResidentId | None]:
    try:
        rid = parse_resident_id(value)
    except ResidentIdError as e:
        ctx.notes.warn(e.reason, f"the resident identity number is invalid: {e}; kept as given", where)
        return {"use": "official", "type": RESIDENT_TYPE, "system": S.RESIDENT_ID_SYSTEM, "value": value}, None
    if rid.legacy:
        ctx.notes.inform("resident-id-legacy", "a legacy 15-digit resident identity number was upgraded to its "
                         "18-character form (GB 11643-1999)", where)
    return {"use": "official", "type": RESIDENT_TYPE, "system": S.RESIDENT_ID_SYSTEM, "value": rid.number}, rid


def _id_document(ctx: Ctx, type_code: str, number: str, where: str) -> tuple[dict[str, Any], ResidentId | None]:
    """A WS 445 (DE02.01.031.00, DE02.01.030.00) pair; type 01 is the resident identity card."""
    if type_code == "01":
        return _resident(ctx, number, where)
    t = translate("cv02.01.101-to-v2-0203", type_code)
    codings = [{"system": S.ID_DOC_TYPE_SYSTEM, "code": type_code}]
    if t is not None and t.equivalence != "unmatched":
        codings.insert(0, {"system": S.V2_0203, "code": t.code, "display": t.display})
    else:
        ctx.notes.inform("cn-id-type-unmapped", f"ID document type {type_code!r} (CV02.01.101) has no v2-0203 "
                         "identifier type", where)
    return {"type": {"coding": codings}, "system": f"{S.NS}id-document:{type_code}", "value": number}, None


def _age(ctx: Ctx, patient: Patient) -> dict[str, Any] | None:
    if not patient.age:
        return None
    value, unit = patient.age
    number = fhir_number(value)
    if number is None or number < 0:
        ctx.notes.warn("cn-bad-age", f"age {value!r} is not a number of years, months or days; not mapped",
                       patient.where)
        return None
    code, _ = _AGE_UNITS.get(unit, ("a", "year"))
    if unit not in _AGE_UNITS:
        ctx.notes.warn("cn-age-unit", f"age unit {unit!r} is not 岁/月/天; read as years", patient.where)
    age = {"value": number, "unit": unit or "岁",
           "system": S.UCUM, "code": code}
    return {"url": S.EXT_AGE, "valueAge": age}


def _years_between(born: str, on: str) -> int:
    b, d = date.fromisoformat(born), date.fromisoformat(on)
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def _cross_check(ctx: Ctx, rid: ResidentId, res: dict[str, Any], patient: Patient, report: Report) -> None:
    """The ID number encodes birth date and sex: compare them with what the document states; fill gaps."""
    where = patient.where
    if "gender" in res and res["gender"] in ("male", "female") and res["gender"] != rid.sex:
        ctx.notes.warn("resident-id-sex-mismatch", f"the document states sex {res['gender']} but the resident "
                       f"identity number encodes {rid.sex}; kept the document's value", where)
    elif "gender" not in res:
        res["gender"] = rid.sex
        res["_gender"] = {"extension": [{"url": S.EXT_DERIVED, "valueBoolean": True}]}
        ctx.notes.inform("resident-id-derived-gender", "gender derived from the resident identity number", where)
    if "birthDate" in res and res["birthDate"][:10] != rid.birth_date and len(res["birthDate"]) >= 10:
        ctx.notes.warn("resident-id-birth-date-mismatch", f"the document states birth date {res['birthDate']} but "
                       f"the resident identity number encodes {rid.birth_date}; kept the document's value", where)
    elif "birthDate" not in res:
        res["birthDate"] = rid.birth_date
        res["_birthDate"] = {"extension": [{"url": S.EXT_DERIVED, "valueBoolean": True}]}
        ctx.notes.inform("resident-id-derived-birth-date", "birthDate derived from the resident identity number "
                         "(the document states none)", where)
    age = patient.age[0] if patient.age else ""
    if patient.age and patient.age[1] == "岁" and report.effective_time[:8].isdigit() and \
            len(report.effective_time) >= 8 and age.isascii() and age.isdigit():
        on = f"{report.effective_time[:4]}-{report.effective_time[4:6]}-{report.effective_time[6:8]}"
        try:
            expected = _years_between(res["birthDate"][:10], on)
        except ValueError:
            return
        if len(age) > 3 or abs(expected - int(age)) > 1:  # int() of thousands of digits raises
            ctx.notes.warn("cn-age-mismatch", f"the stated age {patient.age[0]}岁 does not fit the birth date "
                           f"{res['birthDate'][:10]} on the document date {on} (expected {expected})", where)


def gender(ctx: Ctx, code: Code, where: str) -> tuple[str, dict[str, Any]]:
    t = translate("gbt-2261.1-to-administrative-gender", code.code)
    gb = {"url": S.EXT_GB_SEX, "valueCoding": {"system": S.SEX_SYSTEM, "code": code.code,
                                               **({"display": code.display} if code.display else {})}}
    if t is None or t.equivalence == "unmatched":
        ctx.notes.warn("cn-code-unmapped", f"sex code {code.code!r} is not in GB/T 2261.1; gender set to unknown",
                       where)
        return "unknown", gb
    return t.code, gb


def patient(ctx: Ctx, report: Report) -> dict[str, Any]:
    p = report.patient
    oids = identifier_oids()
    identifiers: list[dict[str, Any]] = []
    rid: ResidentId | None = None
    for i in p.ids:
        if oids.get(i.root, {}).get("target") == "Encounter":
            continue
        if i.root == S.OID_RESIDENT_ID:
            ident, found = _resident(ctx, i.extension, p.where)
            rid = rid or found
        else:
            ident = identifier(i)
            if i.root not in oids:
                ctx.notes.inform("cn-identifier-oid-unknown", f"patient identifier root {i.root} is not a known "
                                 "national OID; kept as urn:oid", p.where)
        identifiers.append(ident)
    for type_code, number in p.id_documents:
        ident, found = _id_document(ctx, type_code, number, p.where)
        rid = rid or found
        identifiers.append(ident)
    key = rid.number if rid else next((f"{i['system']}|{i['value']}" for i in identifiers), None)
    if key is None:
        ctx.notes.warn("cn-patient-without-identifier", "the patient has no identifier; the Patient id derives "
                       "from the document", p.where, code="required")
        key = f"{report.doc_id or report.type_code}"
    res: dict[str, Any] = {"resourceType": "Patient", "id": resource_id("Patient", key)}
    ctx.origin(res, p.where)
    extensions: list[dict[str, Any]] = []
    if identifiers:
        res["identifier"] = identifiers
        ctx.origin(res, p.paths.get("ids", ""), "identifier")
    if p.name:
        name, split = human_name(p.name)
        res["name"] = [name]
        if not split:
            ctx.notes.warn("cn-name-not-split", "the patient name is not a Han-character name; kept as text only "
                           "(no family/given split)", p.where)
    if p.telecom:
        res["telecom"] = [{"system": "phone" if t.startswith("tel:") or t[:1].isdigit() else "other",
                           "value": t.removeprefix("tel:")} for t in p.telecom]
    if p.gender:
        res["gender"], gb = gender(ctx, p.gender, p.where)
        extensions.append(gb)
    if p.birth_time:
        born_at = p.paths.get("birth_time") or p.where
        born = ctx.time(p.birth_time[:8], born_at, "birthTime")
        if born:
            res["birthDate"] = born
            ctx.origin(res, born_at, "birthDate")
    if p.address:
        res["address"] = [_address(p.address)]
    if p.marital:
        res["maritalStatus"] = {"coding": [coding(p.marital)]}
    if rid:
        _cross_check(ctx, rid, res, p, report)
    age = _age(ctx, p)
    if age:
        extensions.append(age)
    if p.nationality:
        extensions.append(_nationality(ctx, p.nationality, p.where))
    if p.ethnicity:
        extensions.append(_ethnicity(ctx, p.ethnicity, p.where))
    if extensions:
        res["extension"] = extensions
    return res


def _address(parts: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    by = dict(parts)
    out: dict[str, Any] = {"text": "".join(v for _, v in parts)}
    if "DE02.01.009.01" in by:
        out["state"] = by["DE02.01.009.01"]
    if "DE02.01.009.02" in by:
        out["city"] = by["DE02.01.009.02"]
    if "DE02.01.009.03" in by:
        out["district"] = by["DE02.01.009.03"]
    keys = [k for k in ("DE02.01.009.04", "DE02.01.009.05", "DE02.01.009.06") if k in by]
    if keys:
        out["line"] = [by[k] for k in keys]
        out["_line"] = [{"extension": [{"url": S.EXT_ADDRESS_PART, "valueString": k}]} for k in keys]
    if len(out) > 1:
        out["country"] = "CN"
    return out


def _nationality(ctx: Ctx, code: Code, where: str) -> dict[str, Any]:
    codings = [coding(Code(code.code, code.system or S.OID_COUNTRY, code.display))]
    t = translate("gbt-2659-to-iso-3166", code.code.upper())
    if t is not None and t.equivalence != "unmatched":
        codings.append({"system": S.ISO3166, "code": t.code, "display": t.display})
    else:
        ctx.notes.warn("cn-code-unmapped", f"nationality {code.code!r} is not a GB/T 2659 country code", where)
    return {"url": S.NATIONALITY_EXT, "extension": [{"url": "code", "valueCodeableConcept": {"coding": codings}}]}


def _ethnicity(ctx: Ctx, code: Code, where: str) -> dict[str, Any]:
    codings = [{"system": S.ETHNICITY_SYSTEM, "code": code.code, **({"display": code.display} if code.display
                                                                   else {})}]
    t = translate("gb-3304-to-gb-3304-letter", code.code)
    if t is not None and t.equivalence != "unmatched":
        codings.append({"system": S.GB3304_LETTER_SYSTEM, "code": t.code, "display": t.display})
    ctx.notes.inform("cn-ethnicity-special-category", "ethnicity (GB 3304) is kept in extension "
                     f"{S.EXT_ETHNIC_GROUP}; it is special-category data (GDPR Art. 9): drop it before EU export",
                     where)
    return {"url": S.EXT_ETHNIC_GROUP, "valueCodeableConcept": {"coding": codings}}
