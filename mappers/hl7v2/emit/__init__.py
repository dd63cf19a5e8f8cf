"""Emitters: one module per FHIR resource family, each a pure function of parsed segments."""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import dtm_to_fhir
from mappers.hl7v2.model import Segment

LOINC = "http://loinc.org"
CATEGORY_LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory", "display": "Laboratory"}]}
CATEGORY_GE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "GE",
                           "display": "Genetics"}]}
GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
TBD = "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/tbd-codes-cs"


def ref(resource: dict[str, Any]) -> dict[str, str]:
    """A reference resolvable inside the Bundle (entries carry fullUrl urn:uuid:<id>)."""
    return {"reference": f"urn:uuid:{resource['id']}"}


def datetime_field(ctx: Context, seg: Segment, n: int, comp: int = 1) -> str | None:
    """A DTM field as FHIR dateTime; warns when its time had to be dropped for want of a time zone."""
    raw = seg.get(n, comp)
    if not raw:
        return None
    value, dropped = dtm_to_fhir(raw, ctx.options.timezone)
    if value is None:
        ctx.warn("hl7v2-bad-datetime", f"{seg.name}-{n} {raw!r} is not a real date/time; not mapped",
                 f"{seg.ref}-{n}")
        return None
    if dropped:
        ctx.warn("hl7v2-time-without-zone",
                 f"{seg.name}-{n} has a time but no time zone; kept the date only (set a default time zone to keep it)",
                 f"{seg.ref}-{n}")
    return value


def instant_field(ctx: Context, seg: Segment, n: int) -> str | None:
    """A DTM as FHIR instant (needs seconds and a zone): None, with a warning, when it cannot be one."""
    value = datetime_field(ctx, seg, n)
    if value and "T" not in value:
        return None
    return value
