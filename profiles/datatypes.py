"""Checks on a datatype's content that its definition states in prose or as bounds: an Attachment's stated size
against its data, and minValue[x] / maxValue[x] (numbers, ISO dates, Quantities converted between common UCUM
units, Durations bounding dates)."""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import Any

from profiles.elements import Node
from profiles.quantities import ucum_base

_DAYS = {"a": 365.25, "mo": 30.4375, "wk": 7.0, "d": 1.0}


def attachment(value: dict[str, Any], path: str, run: Any) -> None:
    data, size = value.get("data"), value.get("size")
    if isinstance(data, str) and isinstance(size, int):
        try:
            actual = len(base64.b64decode(data, validate=False))
        except (binascii.Error, ValueError):
            return  # the base64Binary regex reports it
        if actual != size:
            run.add("error", "invalid", path, f"Stated Attachment Size {size} does not match actual attachment "
                    f"size {actual}")


def bounds(value: Any, node: Node, path: str, run: Any) -> None:
    """minValue[x] / maxValue[x]: numbers, ISO dates, Quantities (converted between common UCUM units), and
    Durations on dates (the date must lie within that span of today)."""
    def scalar(v: Any) -> Any:
        return v.get("value") if isinstance(v, dict) else v

    got = scalar(value)
    for bound, is_min in ((node.min_value, True), (node.max_value, False)):
        if bound is None or got is None:
            continue
        limit = scalar(bound)
        if isinstance(bound, dict) and isinstance(got, str):  # a Duration bounding a date
            limit = _date_offset(bound, -1 if is_min else 1)
            if limit is None:
                continue
            got_cmp, limit_cmp = got[:10], limit
        elif isinstance(bound, dict) and isinstance(value, dict) and bound.get("code") != value.get("code"):
            a, b = ucum_base(value), ucum_base(bound)
            if a is None or b is None or a[0] != b[0]:
                continue  # units not convertible here: not compared
            got_cmp, limit_cmp = a[1], b[1]
        else:
            got_cmp, limit_cmp = got, limit
        try:
            bad = got_cmp < limit_cmp if is_min else got_cmp > limit_cmp
        except TypeError:
            continue
        if bad:
            word = "less than the specified minimum" if is_min else "greater than the specified maximum"
            run.add("error", "invalid", path, f"The value in the instance ({got}) is {word} value ({limit})")


def _date_offset(duration: dict[str, Any], sign: int) -> str | None:
    """Today plus (sign=1) or minus (sign=-1) a Duration in a, mo, wk or d, as YYYY-MM-DD."""
    days = _DAYS.get(str(duration.get("code")))
    v = duration.get("value")
    if days is None or not isinstance(v, int | float):
        return None
    return (datetime.date.today() + datetime.timedelta(days=sign * v * days)).isoformat()
