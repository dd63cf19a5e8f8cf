"""Comparing FHIR Quantities, as FHIRPath's ordering operators (`<`, `<=`, `>`, `>=`) and minValue/maxValue do.

Two quantities compare on their values when they have the same unit: the same `code`, or, where neither has a code,
the same free-text `unit` (absent on both counts as the same: a unit-less quantity is a number). The HL7 validator
compares `code`s the same way (FHIRPathEngine: equal codes, then the values). Different UCUM codes compare when
both convert to one base unit by the table below; otherwise they do not compare (None), which FHIRPath answers with
an empty result (FHIRPath N1 §6.1 Quantity comparisons: "if the units are not comparable, the result is empty").
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

UCUM_SYSTEM = "http://unitsofmeasure.org"
# UCUM codes common in bounds and ranges → (dimension, factor to its base unit).
UCUM: dict[str, tuple[str, float]] = {
    "g": ("g", 1.0), "kg": ("g", 1e3), "mg": ("g", 1e-3), "ug": ("g", 1e-6), "m": ("m", 1.0), "cm": ("m", 1e-2),
    "mm": ("m", 1e-3), "km": ("m", 1e3), "L": ("L", 1.0), "dL": ("L", 1e-1), "mL": ("L", 1e-3),
    "s": ("s", 1.0), "min": ("s", 60.0), "h": ("s", 3600.0), "d": ("s", 86400.0), "wk": ("s", 604800.0),
}


def _number(v: Any) -> Decimal | None:
    if isinstance(v, bool) or not isinstance(v, int | float | Decimal):
        return None
    try:
        return Decimal(str(v)) if isinstance(v, float) else Decimal(v)
    except InvalidOperation:
        return None


def ucum_base(q: dict[str, Any]) -> tuple[str, float] | None:
    """(dimension, value in its base unit) of a UCUM quantity whose code the table knows, else None."""
    unit = UCUM.get(str(q.get("code")))
    v = q.get("value")
    if unit is None or isinstance(v, bool) or not isinstance(v, int | float | Decimal) or q.get("system") not in (
            None, UCUM_SYSTEM):
        return None
    return unit[0], float(v) * unit[1]


def _unit(q: dict[str, Any]) -> tuple[str, Any]:
    code = q.get("code")
    return ("code", code) if code is not None else ("unit", q.get("unit"))


def compare(a: dict[str, Any], b: dict[str, Any]) -> int | None:
    """-1, 0 or 1 as quantity `a` is below, equal to or above `b`; None when they do not compare (a value missing,
    units that differ and do not convert)."""
    x, y = _number(a.get("value")), _number(b.get("value"))
    if x is None or y is None:
        return None
    if _unit(a) != _unit(b):
        ca, cb = ucum_base(a), ucum_base(b)
        if ca is None or cb is None or ca[0] != cb[0]:
            return None
        x, y = Decimal(str(ca[1])), Decimal(str(cb[1]))
    return (x > y) - (x < y)


def is_quantity(value: Any) -> bool:
    """Whether a JSON value has a Quantity's shape: an object (not a resource) with a numeric `value`."""
    return isinstance(value, dict) and "resourceType" not in value and _number(value.get("value")) is not None
