"""Phenopacket TimeElement (age, ageRange, gestationalAge, ontologyClass, timestamp, interval) ⇄ a FHIR value.

`value(te)` gives (type, value) with type one of Age, Range, Quantity (gestational age), CodeableConcept, DateTime,
Period, String: an ISO 8601 age of one unit (P34Y, P3M, P2W, P10D) is a FHIR Age (UCUM a, mo, wk, d; R4 age-1:
a positive value); any other age (P2Y3M, P0D) stays its ISO 8601 text, an age range of such ages 'start/end'.
Gestational age is a Quantity of weeks (or of days when it has days). `time_element` reads any of them back."""

from __future__ import annotations

import re
from typing import Any

from mappers.exceptions import ParseError
from mappers.phenopacket import systems

UCUM = "http://unitsofmeasure.org"
_UNITS = {"Y": ("a", "years"), "M": ("mo", "months"), "W": ("wk", "weeks"), "D": ("d", "days")}
_BACK = {code: letter for letter, (code, _) in _UNITS.items()}
_SINGLE = re.compile(r"P([1-9][0-9]{0,8})([YMWD])")
_ISO = re.compile(r"P(?!$)([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?(T(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9.]+S)?)?")


def age(text: str) -> dict[str, Any] | None:
    """An ISO 8601 duration of one unit as a FHIR Age, else None."""
    m = _SINGLE.fullmatch(text)
    if not m:
        return None
    code, unit = _UNITS[m.group(2)]
    return {"value": int(m.group(1)), "unit": unit, "system": UCUM, "code": code}


def duration(q: dict[str, Any]) -> str | None:
    """A FHIR Age back to ISO 8601, else None."""
    letter = _BACK.get(str(q.get("code")))
    value = q.get("value")
    if letter is None or not isinstance(value, int | float) or float(value) != int(value):
        return None
    return f"P{int(value)}{letter}"


def value(te: dict[str, Any], where: str) -> tuple[str, Any]:
    """The FHIR (type, value) of the TimeElement `te`; `where` is its path in the phenopacket (for the refusal)."""
    if "age" in te:
        text = str(te["age"].get("iso8601duration", ""))
        a = age(text)
        return ("Age", a) if a else ("String", text)
    if "ageRange" in te:
        start = str((te["ageRange"].get("start") or {}).get("iso8601duration", ""))
        end = str((te["ageRange"].get("end") or {}).get("iso8601duration", ""))
        lo, hi = age(start), age(end)
        if lo and hi and lo["code"] == hi["code"] and lo["value"] <= hi["value"]:  # R4 rng-2: low <= high
            return "Range", {"low": lo, "high": hi}
        return "String", f"{start}/{end}"
    if "gestationalAge" in te:
        weeks, days = int(te["gestationalAge"].get("weeks", 0)), int(te["gestationalAge"].get("days", 0))
        if days:
            return "Quantity", {"value": weeks * 7 + days, "unit": "days", "system": UCUM, "code": "d"}
        return "Quantity", {"value": weeks, "unit": "weeks", "system": UCUM, "code": "wk"}
    if "ontologyClass" in te:
        return "CodeableConcept", systems.concept(te["ontologyClass"])
    if "timestamp" in te:
        return "DateTime", str(te["timestamp"])
    if "interval" in te:
        period = {k: str(v) for k, v in te["interval"].items() if k in ("start", "end")}
        return "Period", period
    # protobuf JSON reads {} as a TimeElement with none of its oneof set: the client's input, refused
    raise ParseError(f"{where}: a TimeElement without a value (none of age, ageRange, gestationalAge, "
                     f"ontologyClass, timestamp, interval): {sorted(te)}", details="phenopacket-empty-time",
                     expression=where)


def time_element(kind: str, val: Any) -> dict[str, Any] | None:
    """A FHIR value of type `kind` (as `value` names them) back to a TimeElement; None when it is none."""
    if kind == "Age" and isinstance(val, dict):
        text = duration(val)
        return {"age": {"iso8601duration": text}} if text else None
    if kind == "String" and isinstance(val, str):
        if "/" in val:
            start, _, end = val.partition("/")
            if _ISO.fullmatch(start) and _ISO.fullmatch(end):
                return {"ageRange": {"start": {"iso8601duration": start}, "end": {"iso8601duration": end}}}
        return {"age": {"iso8601duration": val}} if _ISO.fullmatch(val) else None
    if kind == "Range" and isinstance(val, dict):
        lo, hi = duration(val.get("low") or {}), duration(val.get("high") or {})
        if lo and hi:
            return {"ageRange": {"start": {"iso8601duration": lo}, "end": {"iso8601duration": hi}}}
        return None
    if kind == "Quantity" and isinstance(val, dict) and isinstance(val.get("value"), int | float):
        n = int(val["value"])
        if val.get("code") == "wk":
            return {"gestationalAge": {"weeks": n}}
        if val.get("code") == "d":
            out = {"weeks": n // 7, "days": n % 7}
            return {"gestationalAge": {k: v for k, v in out.items() if v}}
        return None
    if kind == "CodeableConcept":
        t = systems.term_of(val)
        return {"ontologyClass": t} if t else None
    if kind == "DateTime" and isinstance(val, str):
        return {"timestamp": val}
    if kind == "Period" and isinstance(val, dict):
        return {"interval": {k: v for k, v in val.items() if k in ("start", "end")}}
    return None


def read_value(holder: dict[str, Any], stem: str) -> tuple[str, Any] | None:
    """The (type, value) of a choice element `stem`[x] on `holder` (onsetAge → ('Age', …)), if any."""
    for key, val in holder.items():
        if key.startswith(stem) and key[len(stem):][:1].isupper():
            return key[len(stem):], val
    return None
