"""Report (model) → FHIR R4 resources: one module per resource family, each a pure function of the model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes, Options
from mappers.cda_cn.model import Code, Id
from mappers.cda_cn.tables import identifier_oids
from mappers.cda_cn.times import ts_to_fhir
from mappers.toolkit.fhirtime import is_datetime

# 0.2.0: no wall-clock times; flat result entries; times checked as FHIR dateTimes; origins; unmapped elements listed.
MAPPER_VERSION = "cda-cn/0.2.0"


@dataclass(slots=True)
class Ctx:
    notes: Notes
    options: Options
    org_code: str = ""  # the custodian's organisation code, scoping local code systems
    source: str = "cda"  # 'cda' | 'ws445': names the format in messages
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → resource, for de-duplication
    origins: dict[str, str] = field(default_factory=dict)  # Conversion.origins: id or "id:path" → source location

    def time(self, ts: str, where: str, what: str) -> str | None:
        """A FHIR date/dateTime for a source TS (no zone: the options' zone); None, with a warning naming the
        field, when it is not a real calendar time."""
        if not ts:
            return None
        value = ts_to_fhir(ts, self.options.timezone)
        if value is None or not is_datetime(value):
            self.notes.warn("cn-bad-time", f"{what} {ts!r} is not a valid HL7 timestamp (YYYYMMDD[HHMMSS], a real "
                            "date and time); not mapped", where or None)
            return None
        return value

    def origin(self, res: dict[str, Any], where: str, element: str | None = None) -> None:
        """Record where `res` (or its `element`, a FHIRPath from the resource) came from in the source."""
        if where:
            self.origins.setdefault(f"{res['id']}:{element}" if element else res["id"], where)

    def add(self, res: dict[str, Any]) -> dict[str, Any]:
        """Keep one resource per id (the same organisation or practitioner reached twice)."""
        return self.resources.setdefault(res["id"], res)


_MAX_DIGITS = 18  # FHIR decimal: up to 18 significant digits (R4 datatypes.html#decimal)


def fhir_number(text: str) -> int | float | None:
    """The JSON number FHIR can carry for `text` (an integer stays one), or None: not a number, not finite, or more
    than 18 significant digits (which no FHIR decimal, and no 64-bit JSON writer, carries)."""
    digits = text.strip().lstrip("+-").replace(".", "").lstrip("0")
    if len(digits) > _MAX_DIGITS:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if "." not in text and "e" not in text.lower() and value.is_integer() else value


def ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource['id']}"}


def system_uri(system: str) -> str:
    """An OID as urn:oid:…; a URI as it is."""
    return system if not system or ":" in system else S.oid_system(system)


def coding(code: Code) -> dict[str, str]:
    out = {"system": system_uri(code.system), "code": code.code} if code.system else {"code": code.code}
    if code.display:
        out["display"] = code.display
    return out


def id_type(root: str) -> dict[str, Any] | None:
    spec = identifier_oids().get(root)
    if not spec or not spec.get("type"):
        return None
    return {"coding": [{"system": S.V2_0203, "code": spec["type"]}], "text": spec["meaning"]}


def identifier(i: Id, with_type: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"system": S.oid_system(i.root), "value": i.extension}
    t = id_type(i.root) if with_type else None
    if t:
        out["type"] = t
    return out


def de_coding(de: str, display: str = "") -> dict[str, str]:
    out = {"system": S.DE_SYSTEM, "code": de}
    if display:
        out["display"] = display
    return out
