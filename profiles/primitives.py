"""R4 primitive types: which JSON type carries each, and the spec's regular expressions (read from the
type StructureDefinitions, so they are the published ones)."""

from __future__ import annotations

from typing import Any

from profiles import patterns
from profiles.definitions import Definitions

INTEGER_TYPES = {"integer", "positiveInt", "unsignedInt", "integer64"}
_JSON_KIND = {"boolean": "boolean", "decimal": "number", **{t: "integer" for t in INTEGER_TYPES}}


def regexes(defs: Definitions) -> dict[str, patterns.Pattern]:
    """type name → compiled regex (on RE2: profiles/patterns.py), from `<type>.value` of each primitive type's
    snapshot. FHIR's primitive regexes match the whole value."""
    out: dict[str, patterns.Pattern] = {}
    for name, sd in defs.types.items():
        if sd.get("kind") != "primitive-type":
            continue
        for el in (sd.get("snapshot") or {}).get("element", []):
            if el.get("path") != f"{name}.value":
                continue
            for t in el.get("type", []):
                for ext in t.get("extension", []):
                    if ext.get("url", "").endswith("/regex") and ext.get("valueString"):
                        try:
                            out[name] = patterns.compile(ext["valueString"])
                        except patterns.error:  # a malformed regex in a type definition: the type goes unchecked
                            continue
    return out


def json_type_error(type_code: str, value: Any) -> str | None:
    """Why `value` cannot carry FHIR primitive `type_code` in JSON, or None when it can."""
    kind = _JSON_KIND.get(type_code, "string")
    if kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if ok:
        return None
    return f"a {type_code} must be a JSON {kind}, found {type(value).__name__} {str(value)[:40]!r}"


def lexical(type_code: str, value: Any) -> str:
    """The primitive's lexical form, as the regexes expect it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, float) else repr(value)
