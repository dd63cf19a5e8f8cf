"""DiagnosticReport, Observations (one per result organizer), Specimens and Conditions (diagnoses).

Reads the results section (DE04.30.015.00 value, .016.00 unit, .017.00 result code, .019.00 item code, .020.00 item
name, DE04.50.134.00/.135.00 specimen, referenceRange, interpretationCode), the report entries (DE04.50.130.00
result, .131.00 findings, .132.00 impression, DE08.10.026.00/.013.00 reporting department/organisation,
DE06.00.179.00 remarks, DE02.10.027.00 method, DE04.30.018.00 category) and the diagnosis section
(DE05.01.024.00, national ICD-10 clinical edition → WHO ICD-10 by the icd-10-cn-to-icd-10 ConceptMap).
"""

from __future__ import annotations

import re
from typing import Any

from mappers.cda_cn import systems as S
from mappers.cda_cn.emit import Ctx, coding, de_coding, fhir_number, identifier, ref
from mappers.cda_cn.model import Code, Diagnosis, Item, Report, Specimen
from mappers.cda_cn.tables import data_element, ucum
from mappers.ids import resource_id
from mappers.terminology import translate, translate_all

_LOINC_SHAPE = re.compile(r"^\d{1,7}-\d$")
# the space after a comparator belongs to it: `\s*([<>]=?)?\s*` split a run of spaces quadratically
_NUMBER = re.compile(r"^\s*(?:([<>]=?)\s*)?([-+]?\d+(?:\.\d+)?)\s*$")
_GENETIC = re.compile(r"基因|分子|遗传|测序|突变|PCR|NGS", re.IGNORECASE)
_IMAGING = re.compile(r"CT|MR|磁共振|X线|DR|超声|彩超|影像|造影|PET", re.IGNORECASE)
_CATEGORY_LAB = {"system": S.V2_0074, "code": "LAB", "display": "Laboratory"}
_CATEGORY_GE = {"system": S.V2_0074, "code": "GE", "display": "Genetics"}
_CATEGORY_RAD = {"system": S.V2_0074, "code": "RAD", "display": "Radiology"}


def loinc_check(code: str) -> bool:
    """True for a LOINC code whose check digit (mod 10, Luhn over the digits before '-') is right."""
    if not _LOINC_SHAPE.match(code):
        return False
    body, check = code.split("-")
    total = 0
    for n, d in enumerate(reversed(body)):
        v = int(d) * (2 if n % 2 == 0 else 1)
        total += v // 10 + v % 10
    return (10 - total % 10) % 10 == int(check)


def is_genetic(report: Report) -> bool:
    return bool(_GENETIC.search(report.category) or _GENETIC.search(report.method))


def _number(text: str) -> int | float | None:
    return fhir_number(text)


def quantity(ctx: Ctx, value: str, unit: str, where: str) -> dict[str, Any] | None:
    m = _NUMBER.match(value)
    number = _number(m.group(2)) if m else None
    if number is None:
        return None
    q: dict[str, Any] = {"value": number}
    if m.group(1):
        q["comparator"] = m.group(1)
    if unit:
        q["unit"] = unit
        code = ucum(unit)
        if code:
            q.update(system=S.UCUM, code=code)
        else:
            ctx.notes.inform("cn-unit-not-ucum", f"unit {unit!r} has no UCUM equivalent in tables/units.json; kept "
                             "as text", where)
    return q


def _item_code(ctx: Ctx, item: Item) -> dict[str, Any]:
    codings = []
    if item.code:
        if item.code_system:
            system = S.oid_system(item.code_system) if ":" not in item.code_system else item.code_system
        elif loinc_check(item.code):
            system = S.LOINC
        else:
            system = S.local_system(ctx.org_code, "lab-item")
        c = {"system": system, "code": item.code}
        if item.name:
            c["display"] = item.name
        codings.append(c)
    out: dict[str, Any] = {"coding": codings} if codings else {}
    out["text"] = item.name or item.code or "(no item code)"
    return out


def specimen(ctx: Ctx, spec: Specimen, subject: dict[str, Any], where: str) -> dict[str, Any]:
    received_at = spec.paths.get("received") or where
    collected_at = spec.paths.get("collected") or where
    received = ctx.time(spec.received, received_at, "specimen received (DE04.50.141.00)")
    collected = ctx.time(spec.collected, collected_at, "specimen collected (DE04.50.137.00)")
    key = "|".join((spec.number, spec.type, collected or "", received or "", spec.status, spec.fixative))
    res: dict[str, Any] = {"resourceType": "Specimen", "id": resource_id("Specimen", key)}
    if res["id"] in ctx.resources:
        return ctx.resources[res["id"]]
    if spec.number:
        res["accessionIdentifier"] = {"system": S.oid_system(S.OID_SPECIMEN_NO), "value": spec.number}
    if spec.type:
        res["type"] = {"text": spec.type}
    res["subject"] = ref(subject)
    if received:
        res["receivedTime"] = received
    if collected:
        res["collection"] = {"collectedDateTime": collected}
    if spec.fixative:
        res["container"] = [{"additiveCodeableConcept": {"text": spec.fixative}}]
    if spec.status:
        res["condition"] = [{"text": spec.status}]
    ctx.origin(res, where)
    if received:
        ctx.origin(res, received_at, "receivedTime")
    if collected:
        ctx.origin(res, collected_at, "collection.collectedDateTime")
    return ctx.add(res)


def _status(ctx: Ctx, item: Item) -> str:
    """Observation.status from the organizer's statusCode (v3-actstatus-to-observation-status); none stated: final."""
    if not item.status:
        return "final"
    t = translate("v3-actstatus-to-observation-status", item.status)
    if t is None or t.equivalence == "unmatched":
        ctx.notes.warn("cn-status-unmapped", f"statusCode {item.status!r} has no Observation.status; 'unknown'",
                       item.paths.get("status") or item.where)
        return "unknown"
    return t.code


def _interpretation(code: Code) -> dict[str, Any]:
    """interpretationCode: v3 ObservationInterpretation (the CDA default) keeps its canonical URI; another system
    keeps its own. The document's wording (e.g. 偏高) is the concept's text: Coding.display may only hold a display
    the code system defines (R4 datatypes.html#Coding), and v3-ObservationInterpretation has no Chinese designations."""
    if code.system in ("", S.OID_INTERPRETATION):
        cc: dict[str, Any] = {"coding": [{"system": S.V3_INTERPRETATION, "code": code.code}]}
    else:
        cc = {"coding": [{k: v for k, v in coding(code).items() if k != "display"}]}
    if code.display:
        cc["text"] = code.display
    return cc


def observation(ctx: Ctx, report: Report, item: Item, key: str, n: int, subject: dict[str, Any],
                encounter: dict[str, Any] | None, spec: dict[str, Any] | None,
                effective: tuple[str | None, str], category: list[dict[str, Any]]) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Observation",
                           "id": resource_id("Observation", key, item.code or item.name, str(n)),
                           "status": _status(ctx, item), "category": category, "code": _item_code(ctx, item),
                           "subject": ref(subject)}
    ctx.origin(res, item.where)
    ctx.origin(res, item.paths.get("code", ""), "code")
    if item.status:
        ctx.origin(res, item.paths.get("status", ""), "status")
    if encounter:
        res["encounter"] = ref(encounter)
    when = ctx.time(item.time, item.paths.get("time") or item.where, "test time")
    if when:
        res["effectiveDateTime"] = when
        ctx.origin(res, item.paths.get("time", ""), "effectiveDateTime")
    elif effective[0]:
        res["effectiveDateTime"] = effective[0]
        ctx.origin(res, effective[1], "effectiveDateTime")
    interpretation = [_interpretation(c) for c in item.interpretation]
    value_at = item.paths.get("value") or item.where
    if item.value:
        q = quantity(ctx, item.value, item.unit, value_at)
        if q is not None:
            res["valueQuantity"] = q
            ctx.origin(res, value_at, "valueQuantity")
        else:
            res["valueString"] = f"{item.value} {item.unit}".strip()
            ctx.origin(res, value_at, "valueString")
            ctx.notes.warn("cn-result-not-numeric", f"quantitative result {item.value!r} (DE04.30.015.00) is not "
                           "a number FHIR can carry (at most 18 digits); kept as a string", value_at)
        if item.text:
            ctx.notes.warn("cn-result-text-dropped", "the item has both a quantitative and a text result; the text "
                           "was not mapped", item.paths.get("result") or item.where)
    elif item.text:
        res["valueString"] = item.text
        ctx.origin(res, item.paths.get("result", ""), "valueString")
    if item.result_code:
        rc = {"coding": [coding(item.result_code)]}
        if "valueQuantity" in res or "valueString" in res:
            interpretation.append(rc)
        else:
            res["valueCodeableConcept"] = rc
            ctx.origin(res, item.paths.get("result", ""), "valueCodeableConcept")
    if item.absent and not any(k.startswith("value") for k in res):
        t = translate("v3-nullflavor-to-data-absent-reason", item.absent)
        res["dataAbsentReason"] = {"coding": [{"system": t.system, "code": t.code, "display": t.display}]} if t \
            else {"text": item.absent}
        ctx.origin(res, item.paths.get("absent", ""), "dataAbsentReason")
    if interpretation:
        res["interpretation"] = interpretation
        ctx.origin(res, item.paths.get("interpretation", ""), "interpretation")
    if report.method:
        res["method"] = {"text": report.method}
    if spec:
        res["specimen"] = ref(spec)
    rng = _reference_range(ctx, item)
    if rng:
        res["referenceRange"] = [rng]
    return res


def _reference_range(ctx: Ctx, item: Item) -> dict[str, Any] | None:
    rng: dict[str, Any] = {}
    unit = item.unit or item.ref_unit
    for bound, value in (("low", item.ref_low), ("high", item.ref_high)):
        if value:
            q = quantity(ctx, value, unit, item.where) if unit != item.unit else _plain(value, item)
            if q:
                q.pop("comparator", None)
                rng[bound] = q
    if item.ref_text:
        rng["text"] = item.ref_text
    return rng or None


def _plain(value: str, item: Item) -> dict[str, Any] | None:
    n = _number(value)
    if n is None:
        return None
    q: dict[str, Any] = {"value": n}
    if item.unit:
        q["unit"] = item.unit
        code = ucum(item.unit)
        if code:
            q.update(system=S.UCUM, code=code)
    return q


def condition(ctx: Ctx, dx: Diagnosis, subject: dict[str, Any], encounter: dict[str, Any] | None
              ) -> dict[str, Any]:
    """DE05.01.024.00: the national code kept; WHO ICD-10 codings added by the ConceptMap (rule for unlisted)."""
    codings = [coding(dx.code)]
    # the national edition arrives under 2.16.156.10011.2.3.3.11 and its sub-variants .11.1, .11.3 (templates)
    if dx.code.system in (S.OID_ICD10_CN, S.ICD10_CN_SYSTEM) or dx.code.system.startswith(S.OID_ICD10_CN + "."):
        matches = translate_all("icd-10-cn-to-icd-10", dx.code.code)
        for t in matches:
            codings.append({"system": t.system, "code": t.code, **({"display": t.display} if t.display else {})})
        if not matches:
            ctx.notes.warn("cn-icd10-unmapped", f"diagnosis code {dx.code.code!r} is not a national ICD-10 "
                           "clinical-edition code; no WHO ICD-10 code added", dx.where)
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": resource_id("Condition", subject["id"], dx.code.system, dx.code.code),
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}],
        "code": {"coding": codings, **({"text": dx.name} if dx.name else {})},
        "subject": ref(subject),
    }
    if encounter:
        res["encounter"] = ref(encounter)
    ctx.origin(res, dx.where)
    ctx.origin(res, dx.paths.get("code", ""), "code")
    recorded = ctx.time(dx.date, dx.paths.get("date") or dx.where, "diagnosis date")
    if recorded:
        res["recordedDate"] = recorded
        ctx.origin(res, dx.paths.get("date", ""), "recordedDate")
    return res


def report_category(report: Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(DiagnosticReport.category, Observation.category)."""
    if report.kind == "lab":
        codings = [_CATEGORY_LAB, *([_CATEGORY_GE] if is_genetic(report) else [])]
        obs = [{"coding": [{"system": S.OBS_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}]
    else:
        imaging = bool(_IMAGING.search(report.category) or any(_IMAGING.search(i.name) for i in report.items))
        codings = [_CATEGORY_RAD] if imaging else []
        code = "imaging" if imaging else "procedure"
        obs = [{"coding": [{"system": S.OBS_CATEGORY, "code": code, "display": code.capitalize()}]}]
    cat: dict[str, Any] = {"coding": codings} if codings else {}
    if report.category:
        cat["text"] = report.category
    return ([cat] if cat else []), obs


def text_observation(ctx: Ctx, report: Report, key: str, de: str, text: str, subject: dict[str, Any],
                     encounter: dict[str, Any] | None, effective: str | None,
                     category: list[dict[str, Any]]) -> dict[str, Any]:
    """A report-level DE-coded text element (e.g. DE04.50.131.00 findings) as an Observation."""
    name = data_element(de).get("name", "")
    res: dict[str, Any] = {"resourceType": "Observation", "id": resource_id("Observation", key, de),
                           "status": "final", "category": category,
                           "code": {"coding": [de_coding(de, name)], "text": name or de},
                           "subject": ref(subject), "valueString": text}
    field = "findings" if de == "DE04.50.131.00" else "chief_complaint"
    ctx.origin(res, report.paths.get(field, ""))
    if encounter:
        res["encounter"] = ref(encounter)
    if effective:
        res["effectiveDateTime"] = effective
    return res


def report_identifiers(report: Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(DiagnosticReport.identifier, basedOn logical references for electronic order numbers)."""
    idents, based_on = [], []
    for i in report.ids:
        if i.root == S.OID_ORDER_NO:
            based_on.append({"type": "ServiceRequest", "identifier": identifier(i)})
        else:
            idents.append(identifier(i))
    return idents, based_on


def service_request(ctx: Ctx, report: Report, subject: dict[str, Any], encounter: dict[str, Any] | None,
                    orders: list[dict[str, Any]], requester: dict[str, Any] | None, key: str
                    ) -> dict[str, Any] | None:
    """The order behind the report: electronic order number (patientRole/id .1.24) and the requesting department
    (participant[@typeCode=PRF]/associatedEntity/scopingOrganization)."""
    if not orders and requester is None:
        return None
    res: dict[str, Any] = {"resourceType": "ServiceRequest", "id": resource_id("ServiceRequest", key)}
    ctx.origin(res, report.paths.get("ids", "") if orders else report.paths.get("requester", ""))
    if orders:
        res["identifier"] = [o["identifier"] for o in orders]
        ctx.origin(res, report.paths.get("ids", ""), "identifier")
    res.update(status="completed", intent="order", subject=ref(subject))
    if encounter:
        res["encounter"] = ref(encounter)
    if requester:
        res["requester"] = ref(requester)
    return res
