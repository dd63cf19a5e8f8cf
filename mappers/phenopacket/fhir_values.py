"""Reading values out of FHIR resources for the way back to a phenopacket: codings, this mapper's extensions (by
name), choice elements as TimeElements; every reader tolerates content of the wrong shape (None / empty)."""

from __future__ import annotations

from typing import Any

from mappers.phenopacket import systems, times
from mappers.phenopacket.systems import EXT


def extensions_of(res: Any, name: str) -> list[dict[str, Any]]:
    exts = res.get("extension") if isinstance(res, dict) else None
    url = EXT + name if ":" not in name else name
    return [e for e in exts or [] if isinstance(e, dict) and e.get("url") == url]


def ext_value(res: Any, name: str) -> tuple[str, Any] | None:
    for e in extensions_of(res, name):
        hit = times.read_value(e, "value")
        if hit:
            return hit
    return None


def ext_term(res: Any, name: str) -> dict[str, str] | None:
    hit = ext_value(res, name)
    return systems.term_of(hit[1]) if hit and hit[0] == "CodeableConcept" else None


def ext_scalar(res: Any, name: str) -> Any:
    hit = ext_value(res, name)
    return hit[1] if hit else None


def codes(cc: Any) -> list[dict[str, Any]]:
    codings = cc.get("coding") if isinstance(cc, dict) else None
    return [c for c in codings or [] if isinstance(c, dict)]


def has(cc: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in codes(cc))


def first_code(cc: Any) -> dict[str, Any] | None:
    return next(iter(codes(cc)), None)


def put(out: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, "", [], {}):
        out[key] = value


def text_or_code(cc: Any) -> str | None:
    if isinstance(cc, str):
        return cc
    if isinstance(cc, dict):
        code = next((c.get("code") for c in codes(cc) if c.get("code")), None)
        return str(code or cc.get("text") or "") or None
    return None
