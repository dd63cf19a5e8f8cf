"""Phenopacket TimeElement (age, ageRange, gestationalAge, ontologyClass, timestamp, interval) ⇄ a FHIR value.

`value(te)` gives (type, value) with type one of Age, Range, Quantity (gestational age), CodeableConcept, DateTime,
Period, String: an ISO 8601 age of one unit (P34Y, P3M, P2W, P10D) is a FHIR Age (UCUM a, mo, wk, d; R4 age-1:
a positive value); any other age (P2Y3M, P0D) stays its ISO 8601 text, an age range of such ages 'start/end'.
Gestational age is a Quantity of weeks (or of days when it has days). `time_element` reads any of them back; a
FHIR date or dateTime only when it is a full date-time with a zone (`timestamp`)."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from mappers.exceptions import ParseError
from mappers.phenopacket import systems

UCUM = "http://unitsofmeasure.org"
_UNITS = {"Y": ("a", "years"), "M": ("mo", "months"), "W": ("wk", "weeks"), "D": ("d", "days")}
_BACK = {code: letter for letter, (code, _) in _UNITS.items()}
_SINGLE = re.compile(r"P([1-9][0-9]{0,8})([YMWD])")
_PRECISION = {4: "year", 7: "month", 10: "day"}
_DATE = re.compile(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?")
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


def timestamp(text: Any) -> bool:
    """Whether a FHIR date/dateTime/instant is a phenopacket Timestamp, as the official schema reads one.

    Phenopackets v2 writes every point in time as a google.protobuf.Timestamp: "{year}-{month}-{day}T{hour}:{min}:
    {sec}[.{frac_sec}]Z ... the timezone is required" (phenopacket-schema docs/timestamp.rst); a TimeElement's
    `timestamp` "indicates a specific time" and a TimeInterval's bounds are Timestamps too (time-element.rst,
    time-interval.rst). The TimeElement's other forms are ages, gestational ages and ontology classes, none of which
    is a calendar date. So a FHIR value of year, month or day precision (2015, 2015-10, 2015-10-10), or a time
    without a zone, has no honest place in a TimeElement: writing 2015-10-01T00:00:00Z would invent a day, a time
    of day and a zone the source does not state, and the reader could not tell it from a real midnight. Such a
    value is left out and reported (`why_not`). The schema's rounding down to midnight UTC is documented for
    Individual.date_of_birth alone (individual.rst), where from_fhir applies it to a full birthDate."""
    if not isinstance(text, str):
        return False
    try:
        Timestamp().FromJsonString(text)
    except (ValueError, TypeError):
        return False
    return True


def why_not(kind: str, val: Any) -> str | None:
    """Why the FHIR value (kind, val) cannot become a TimeElement of the same meaning (see `timestamp`); None
    when it can, or when it is not a date at all."""
    if kind == "DateTime":
        return None if timestamp(val) else _why(val)
    if kind == "Period" and isinstance(val, dict):
        bad = [f"{k} {_why(val[k])}" for k in ("start", "end") if k in val and not timestamp(val[k])]
        return "; ".join(bad) or None
    return None


def _why(text: Any) -> str:
    if isinstance(text, str) and _DATE.fullmatch(text):
        return f"'{text}' is a date of {_PRECISION[len(text)]} precision, without a time of day and zone"
    if isinstance(text, str) and "T" in text and not re.search(r"(Z|[+-][0-9]{2}:[0-9]{2})$", text):
        return f"'{text}' states no time zone"
    return f"{text!r} is not an RFC 3339 date-time a protobuf Timestamp holds"


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
    if why_not(kind, val):
        return None
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
