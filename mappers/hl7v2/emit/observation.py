"""OBX → Observation for plain (non-genomic) results, and OBX-5 values by OBX-2 type."""

from __future__ import annotations

import re
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cwe_to_codeable_concept, dtm_to_fhir, number, system_uri
from mappers.hl7v2.emit import CATEGORY_GE, CATEGORY_LAB, datetime_field, ref
from mappers.hl7v2.model import Segment
from mappers.hl7v2.structure import Observation
from mappers.ids import resource_id
from mappers.terminology import translate

_CODED = {"CWE", "CNE", "CE", "CF"}
_TEXT = {"ST", "TX", "FT", "ID", "IS"}
_RANGE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(?:-|to)\s*([-+]?\d+(?:\.\d+)?)\s*$")
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def quantity(value: int | float, obx: Segment) -> dict[str, Any]:
    """A number with OBX-6 units (CWE) as Quantity."""
    q: dict[str, Any] = {"value": value}
    unit_code, unit_text, unit_sys = obx.get(6, 1), obx.get(6, 2), obx.get(6, 3)
    if unit_code or unit_text:
        q["unit"] = unit_text or unit_code
        system = system_uri(unit_sys)
        if unit_code and system:
            q["system"] = system
            q["code"] = unit_code
    return q


def status(ctx: Context, obx: Segment) -> str:
    """OBX-11 through ConceptMap v2-0085-to-observation-status."""
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
        cc = cwe_to_codeable_concept(obx, 5, rep)
        return ("valueCodeableConcept", cc) if cc else None
    if vt == "NM":
        n = number(raw)
        if n is None:
            ctx.warn("hl7v2-bad-number", f"OBX-5 {raw!r} is not a number (OBX-2 NM); kept as text", f"{obx.ref}-5")
            return "valueString", obx.text(5, rep)
        return "valueQuantity", quantity(n, obx)
    if vt == "SN":
        comparator, n1, sep, n2 = (obx.get(5, c, rep=rep) for c in (1, 2, 3, 4))
        a, b = number(n1), number(n2)
        if sep in (":", "/") and a is not None and b is not None:
            return "valueRatio", {"numerator": {"value": a}, "denominator": {"value": b}}
        if sep == "-" and a is not None and b is not None:
            return "valueRange", {"low": quantity(a, obx), "high": quantity(b, obx)}
        if a is not None and not sep:
            q = quantity(a, obx)
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
        return ("valueRange", rng) if rng else None
    if vt in ("DT", "DTM", "TS"):
        dt, _ = dtm_to_fhir(raw, ctx.options.timezone)
        if dt:
            return "valueDateTime", dt
    if vt == "TM" and re.fullmatch(r"\d{2}(\d{2}(\d{2})?)?", raw):
        return "valueTime", f"{raw[:2]}:{raw[2:4] or '00'}:{raw[4:6] or '00'}"
    if vt not in _TEXT:
        ctx.inform("hl7v2-value-as-text", f"OBX-2 type {vt!r} has no structured mapping; OBX-5 kept as text",
                   f"{obx.ref}-5")
    return "valueString", obx.text(5, rep)


def reference_range(obx: Segment) -> dict[str, Any] | None:
    text = obx.text(7)
    if not text:
        return None
    m = _RANGE.match(text)
    if m:
        lo, hi = number(m.group(1)), number(m.group(2))
        if lo is not None and hi is not None:
            return {"low": quantity(lo, obx), "high": quantity(hi, obx), "text": text}
    return {"text": text}


def notes(notes: list[Segment], ctx: Context) -> list[dict[str, str]]:
    """NTE-3 comments → Annotation.text (repetitions joined by line breaks)."""
    out = []
    for nte in notes:
        ctx.use(nte, 1, 2, 3)
        text = "\n".join(nte.text(3, r) for r in range(1, len(nte.repetitions(3)) + 1))
        if text:
            out.append({"text": text})
    return out


def lab_observation(ctx: Context, obs: Observation, key: str, subject: dict[str, Any] | None,
                    specimen: dict[str, Any] | None, effective: str | None, genetic: bool,
                    ordinal: int = 1) -> dict[str, Any]:
    """Reads OBX-2/3/5/6 (value), OBX-7 (reference range), OBX-8 (interpretation), OBX-11 (status),
    OBX-14 (effective time), NTE-3 (notes). The id derives from the order, OBX-3, OBX-4 and `ordinal` (the
    rank among same-coded rows), not from OBX-1, so renumbered rows keep their ids."""
    obx = obs.obx
    ctx.use(obx, 1, 2, 3, 5, 6, 7, 8, 11, 14)
    if genetic:
        ctx.use(obx, 4)  # sub-ID 1: carried by category GE
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id("Observation", key, "OBX", obx.get(3), obx.get(4), str(ordinal)),
        "status": status(ctx, obx),
        "category": [CATEGORY_LAB, CATEGORY_GE] if genetic else [CATEGORY_LAB],
        "code": cwe_to_codeable_concept(obx, 3) or {"text": "(OBX-3 empty)"},
    }
    if subject:
        res["subject"] = ref(subject)
    when = datetime_field(ctx, obx, 14) or effective
    if when:
        res["effectiveDateTime"] = when
    reps = len(obx.repetitions(5))
    if reps > 1 and obx.get(2) in _TEXT:
        res["valueString"] = "\n".join(obx.text(5, r) for r in range(1, reps + 1))
    elif reps:
        got = value(ctx, obx)
        if got:
            res[got[0]] = got[1]
        if reps > 1:
            ctx.warn("hl7v2-repetitions-dropped", f"OBX-5 has {reps} repetitions; only the first maps to value[x]",
                     f"{obx.ref}-5")
    interp = [{"coding": [{"system": _INTERPRETATION, "code": c}]}
              for r in range(1, len(obx.repetitions(8)) + 1) if (c := obx.get(8, 1, rep=r))]
    if interp:
        res["interpretation"] = interp
    if n := notes(obs.notes, ctx):
        res["note"] = n
    if specimen:
        res["specimen"] = ref(specimen)
    rr = reference_range(obx)
    if rr:
        res["referenceRange"] = [rr]
    return res
