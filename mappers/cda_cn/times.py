"""HL7 V3 TS (`YYYYMMDDHHMMSS[.fff][+ZZZZ]`) ⇄ FHIR date/dateTime."""

from __future__ import annotations

import re

_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2}(?:\.\d{1,6})?)?)?([+-]\d{4}|Z)?$")
_FHIR = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:T(\d{2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?"
                   r"(Z|[+-]\d{2}:\d{2})?)?$")


def ts_to_fhir(ts: str, default_tz: str) -> str | None:
    """FHIR date or dateTime for an HL7 TS; a time without a zone gets `default_tz`. None when not a TS."""
    ts = ts.strip()
    m = _TS.match(ts)
    if not m:
        return None
    year, month, day, hh, mi, ss, tz = m.groups()
    if (month and not 1 <= int(month) <= 12) or (day and not 1 <= int(day) <= 31):
        return None
    date = "-".join(x for x in (year, month, day) if x)
    if not hh:
        return date
    if not day or int(hh) > 23 or (mi and int(mi) > 59):
        return None
    if tz is None:
        zone = default_tz
    elif tz == "Z":
        zone = "Z"
    else:
        zone = f"{tz[:3]}:{tz[3:]}"
    seconds = ss or "00"
    return f"{date}T{hh}:{mi or '00'}:{seconds}{zone}"


def fhir_to_ts(value: str) -> str:
    """HL7 TS for a FHIR date/dateTime/instant ('2024-03-15T09:30:00+08:00' → '20240315093000+0800')."""
    m = _FHIR.match(value.strip())
    if not m:
        return ""
    year, month, day, hh, mi, ss, tz = m.groups()
    out = year + (month or "") + (day or "")
    if hh:
        out += hh + mi + (ss or "00")
        if tz:
            out += "+0000" if tz == "Z" else tz.replace(":", "")
    return out


def fhir_date(value: str) -> str:
    """The date part (YYYY-MM-DD) of a FHIR date/dateTime."""
    return value[:10]


def local_ts(value: str, zone: str = "+08:00") -> str:
    """HL7 TS for a FHIR time, without the zone when it is `zone` (WS/T 500 documents write local time)."""
    ts = fhir_to_ts(value)
    suffix = zone.replace(":", "")
    return ts[: -len(suffix)] if ts.endswith(suffix) else ts
