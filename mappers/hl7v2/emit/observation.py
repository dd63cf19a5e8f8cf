"""OBX → Observation for plain (non-genomic) results, and OBX-5 values by OBX-2 type."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cwe_to_codeable_concept, dtm_to_fhir, number, system_uri
from mappers.hl7v2.emit import CATEGORY_GE, CATEGORY_LAB, LOINC, datetime_field, ref
from mappers.hl7v2.model import Segment
from mappers.hl7v2.structure import Observation
from mappers.ids import resource_id
from mappers.terminology import translate
from mappers.toolkit.genomics import fresh

_CODED = {"CWE", "CNE", "CE", "CF"}
_TEXT = {"ST", "TX", "FT", "ID", "IS"}
_RANGE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(?:-|to)\s*([-+]?\d+(?:\.\d+)?)\s*$")
_INTERPRETATION_MAP = "v2-0078-to-observation-interpretation"
_UCUM = "http://unitsofmeasure.org"
CATEGORY_VITAL = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs", "display": "Vital Signs"}]}


@cache
def vital_signs() -> dict[str, Any]:
    return json.loads((Path(__file__).parents[1] / "tables" / "vital-signs.json").read_text("utf-8"))


def quantity(ctx: Context, value: int | float, obx: Segment) -> dict[str, Any]:
    """A number with OBX-6 units (CWE 1 code, 2 text, 3 system) as Quantity."""
    q: dict[str, Any] = {"value": value}
    unit_code, unit_text, unit_sys = obx.get(6, 1), obx.get(6, 2), obx.get(6, 3)
    if unit_code or unit_text:
        ctx.use_component(obx, 6, 1, 2, 3)
        q["unit"] = unit_text or unit_code
        system = system_uri(unit_sys)
        if unit_code and system:
            q["system"] = system
            q["code"] = unit_code
    return q


def status(ctx: Context, obx: Segment) -> str:
    """OBX-11 through ConceptMap v2-0085-to-observation-status."""
    ctx.use(obx, 11)
    code = obx.get(11)
    t = translate("v2-0085-to-observation-status", code)
    if t is None or t.equivalence == "unmatched":
        ctx.warn("hl7v2-code-unmapped", f"OBX-11 {code!r} is not a v2 table 0085 status; status set to unknown",
                 f"{obx.ref}-11")
        return "unknown"
    return t.code


def value(ctx: Context, obx: Segment, rep: int = 1) -> tuple[str, Any] | None:
    """OBX-5 (repetition `rep`) as (FHIR value[x] element name, value) according to OBX-2."""
    vt = obx.get(2)
    raw = obx.get(5, rep=rep)
    if not obx.repetitions(5)[rep - 1:rep] or not obx.repetitions(5)[rep - 1]:
        return None
    if vt in _CODED:
        cc = cwe_to_codeable_concept(obx, 5, rep, ctx)
        return ("valueCodeableConcept", cc) if cc else None
    ctx.use(obx, 5)
    if vt == "NM":
        n = number(raw)
        if n is None:
            ctx.warn("hl7v2-bad-number", f"OBX-5 {raw!r} is not a number (OBX-2 NM); kept as text", f"{obx.ref}-5")
            return "valueString", obx.text(5, rep)
        return "valueQuantity", quantity(ctx, n, obx)
    if vt == "SN":
        comparator, n1, sep, n2 = (obx.get(5, c, rep=rep) for c in (1, 2, 3, 4))
        a, b = number(n1), number(n2)
        if sep in (":", "/") and a is not None and b is not None:
            return "valueRatio", {"numerator": {"value": a}, "denominator": {"value": b}}
        if sep == "-" and a is not None and b is not None:
            return "valueRange", {"low": quantity(ctx, a, obx), "high": quantity(ctx, b, obx)}
        if a is not None and not sep and not n2:
            q = quantity(ctx, a, obx)
            if comparator in ("<", "<=", ">", ">="):
                q["comparator"] = comparator
            return "valueQuantity", q
    if vt == "NR":
        lo, hi = number(obx.get(5, 1, rep=rep)), number(obx.get(5, 2, rep=rep))
        rng: dict[str, Any] = {}
        if lo is not None:
            rng["low"] = {"value": lo}
        if hi is not None:
            rng["high"] = {"value": hi}
        if rng:
            return "valueRange", rng
    if vt in ("DT", "DTM", "TS"):
        dt, _ = dtm_to_fhir(raw, ctx.options.timezone)
        if dt:
            return "valueDateTime", dt
        ctx.warn("hl7v2-bad-datetime", f"OBX-5 {raw!r} is not a real date/time (OBX-2 {vt}); kept as text",
                 f"{obx.ref}-5")
        return "valueString", obx.text(5, rep)
    if vt == "TM" and re.fullmatch(r"([01]\d|2[0-3])([0-5]\d([0-5]\d)?)?", raw):
        return "valueTime", f"{raw[:2]}:{raw[2:4] or '00'}:{raw[4:6] or '00'}"
    if vt not in _TEXT:
        ctx.inform("hl7v2-value-as-text", f"OBX-2 type {vt!r} has no structured mapping; OBX-5 kept as text",
                   f"{obx.ref}-5")
    return "valueString", obx.text(5, rep)


def reference_range(ctx: Context, obx: Segment) -> dict[str, Any] | None:
    text = obx.text(7)
    if not text:
        return None
    ctx.use(obx, 7)
    m = _RANGE.match(text)
    if m:
        lo, hi = number(m.group(1)), number(m.group(2))
        if lo is not None and hi is not None:
            return {"low": quantity(ctx, lo, obx), "high": quantity(ctx, hi, obx), "text": text}
    return {"text": text}


def interpretation(ctx: Context, obx: Segment) -> list[dict[str, Any]]:
    """OBX-8 (abnormal flags, table 0078; IS before v2.7, CWE since) through ConceptMap
    v2-0078-to-observation-interpretation; a flag it does not list is kept as text, with a warning."""
    out = []
    for rep in range(1, obx.repetition_count(8) + 1):
        code, text, system = obx.get(8, 1, rep=rep), obx.get(8, 2, rep=rep), obx.get(8, 3, rep=rep)
        if not (code or text):
            continue
        ctx.use_component(obx, 8, 1, 2, 3)
        t = translate(_INTERPRETATION_MAP, code) if system.upper() in ("", "HL70078") else None
        if t is not None:
            coding = {"system": t.system, "code": t.code}
            if t.display:
                coding["display"] = t.display
            out.append({"coding": [coding]})
            continue
        shown = " ".join(x for x in (code, text) if x)
        ctx.warn("hl7v2-interpretation-unmapped", f"OBX-8 {shown!r} is not an HL7 table 0078 flag; kept as "
                 "interpretation text", f"{obx.ref}-8")
        out.append({"text": text or code})
    return out


def notes(notes: list[Segment], ctx: Context) -> list[dict[str, str]]:
    """NTE-3 comments → Annotation.text (repetitions joined by line breaks)."""
    out = []
    for nte in notes:
        ctx.use(nte, 1, 2, 3)
        text = "\n".join(nte.text(3, r) for r in range(1, nte.repetition_count(3) + 1))
        if text:
            out.append({"text": text})
    return out


def _vital_sign(ctx: Context, obx: Segment, res: dict[str, Any]) -> None:
    """FHIR R4: an Observation coded with a vital-sign LOINC code SHALL conform to the vital signs profile
    (category vital-signs, subject, effective time, a UCUM Quantity of the profile's units). Conform where the
    row allows it; else the code is kept as text only, with a warning, rather than emitting what cannot conform."""
    codes = vital_signs()["codes"]
    hit = next((c["code"] for c in res["code"].get("coding", []) if c.get("system") == LOINC and c["code"] in codes),
               None)
    if hit is None:
        return
    allowed = codes[hit]["units"]
    q = res.get("valueQuantity")
    if q is not None and allowed:
        unit = q.get("code") if q.get("system") == _UCUM else None
        if unit not in allowed:
            texts = {t.lower(): code for code, ts in vital_signs()["unit_text"].items() for t in ts}
            unit = texts.get(str(q.get("unit", "")).lower())
        if unit in allowed:
            q.update(system=_UCUM, code=unit)
            q.setdefault("unit", unit)
    missing = [what for what, ok in (
        (f"a value in {' or '.join(allowed)} (UCUM)", q is not None and q.get("code") in allowed
         and q.get("system") == _UCUM),
        ("a subject (PID)", "subject" in res), ("an effective time", "effectiveDateTime" in res)) if not ok]
    if allowed and not missing:
        res["category"] = [*res["category"], fresh(CATEGORY_VITAL)]
        return
    why = "a single row cannot carry its components" if not allowed else "the row lacks " + ", ".join(missing)
    ctx.warn("hl7v2-vital-sign-not-conformant",
             f"OBX-3 {hit} is a vital-sign code (FHIR R4 vital signs profile) but {why}; the code is kept as text",
             f"{obx.ref}-3")
    text = res["code"].get("text") or next((c.get("display") for c in res["code"]["coding"] if c.get("display")),
                                           None) or hit
    res["code"] = {"text": f"{text} (LOINC {hit})" if hit not in text else text}


def lab_observation(ctx: Context, obs: Observation, key: str, subject: dict[str, Any] | None,
                    specimen: dict[str, Any] | None, effective: tuple[str, str] | None, genetic: bool,
                    ordinal: int = 1, code: dict[str, Any] | None = None) -> dict[str, Any]:
    """Reads OBX-2/3/5/6 (value), OBX-7 (reference range), OBX-8 (interpretation), OBX-11 (status),
    OBX-14 (effective time), NTE-3 (notes); `effective` is the order's (value, source field) fallback, `code` a
    CodeableConcept standing for OBX-3 (a recognised genetic variable). The id derives from the order, OBX-3,
    OBX-4 and `ordinal` (the rank among same-coded rows), not from OBX-1, so renumbered rows keep their ids."""
    obx = obs.obx
    ctx.use(obx, 1, 2)
    if genetic:
        ctx.use(obx, 4)  # sub-ID 1: carried by category GE
    cc = code or cwe_to_codeable_concept(obx, 3, used=ctx)
    if cc is None:
        ctx.warn("hl7v2-obx3-empty", "OBX-3 is empty: the result has no code; Observation.code says so in text",
                 f"{obx.ref}-3")
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id("Observation", key, "OBX", obx.get(3), obx.get(4), str(ordinal)),
        "status": status(ctx, obx),
        "category": [fresh(CATEGORY_LAB), fresh(CATEGORY_GE)] if genetic else [fresh(CATEGORY_LAB)],
        "code": cc or {"text": "(OBX-3 empty)"},
    }
    ctx.origin(res, obx.ref)
    ctx.origin(res, f"{obx.ref}-3", "code")
    ctx.origin(res, f"{obx.ref}-11", "status")
    if subject:
        res["subject"] = ref(subject)
    ctx.use(obx, 14)
    when = datetime_field(ctx, obx, 14)
    if when:
        res["effectiveDateTime"] = when
        ctx.origin(res, f"{obx.ref}-14", "effectiveDateTime")
    elif effective:
        res["effectiveDateTime"] = effective[0]
        ctx.origin(res, effective[1], "effectiveDateTime")
    reps = obx.repetition_count(5)
    if reps > 1 and obx.get(2) in _TEXT:
        ctx.use(obx, 5)
        res["valueString"] = "\n".join(obx.text(5, r) for r in range(1, reps + 1))
    elif reps:
        got = value(ctx, obx)
        if got:
            res[got[0]] = got[1]
            ctx.origin(res, f"{obx.ref}-5", got[0])
        if reps > 1:
            ctx.warn("hl7v2-repetitions-dropped", f"OBX-5 has {reps} repetitions; only the first maps to value[x]",
                     f"{obx.ref}-5")
    interp = interpretation(ctx, obx)
    if interp:
        res["interpretation"] = interp
        ctx.origin(res, f"{obx.ref}-8", "interpretation")
    if n := notes(obs.notes, ctx):
        res["note"] = n
    if specimen:
        res["specimen"] = ref(specimen)
    rr = reference_range(ctx, obx)
    if rr:
        res["referenceRange"] = [rr]
        ctx.origin(res, f"{obx.ref}-7", "referenceRange")
    _vital_sign(ctx, obx, res)
    return res
