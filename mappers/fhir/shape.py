"""Bounded reading of FHIR JSON: before a writer reads a resource, the elements it reads are checked against their
JSON shape (tables/shapes.json), so content of the wrong type (a Coding given as a string, components that are not a
list, a quantity value that is not a number) is refused with a ParseError naming the element, never a TypeError or
KeyError deep inside a writer."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from mappers.exceptions import ParseError

_JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "integer": (int,),
                                            "boolean": (bool,), "object": (dict,)}


@cache
def shapes() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "tables" / "shapes.json").read_text("utf-8"))


def _json_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return "an object"


def _fail(where: str, expected: str, value: Any) -> None:
    raise ParseError(f"{where} must be {expected}, not {_json_name(value)}", details="fhir-wrong-type",
                     expression=where)


@cache
def _compiled(spec: str) -> tuple[str | None, tuple[type, ...] | None, tuple[tuple[str, str], ...]]:
    """(item spec of a list, JSON types of a simple value, fields of a datatype) for a shape name."""
    if spec.startswith("["):
        return spec[1:-1], None, ()
    if spec in _JSON_TYPES:
        return None, _JSON_TYPES[spec], ()
    return None, None, tuple(shapes()["datatypes"][spec].items())


def _mismatch(value: Any, spec: str) -> tuple[list[str], str, Any] | None:
    """None when `value` has the shape; else (path below it, what was expected, what was found). The path is
    built only on failure, so checking a large Bundle stays cheap."""
    item, simple, fields = _compiled(spec)
    if item is not None:
        if not isinstance(value, list):
            return [], f"a list of {item}", value
        for i, v in enumerate(value):
            bad = _mismatch(v, item)
            if bad is not None:
                bad[0].insert(0, f"[{i}]")
                return bad
        return None
    if simple is not None:
        # bool is an int in Python, but JSON true is not a FHIR integer or decimal
        if not isinstance(value, simple) or (isinstance(value, bool) and spec != "boolean"):
            return [], f"a JSON {spec}", value
        return None
    if not isinstance(value, dict):
        return [], f"an object ({spec})", value
    for key, sub in fields:
        if key in value:
            bad = _mismatch(value[key], sub)
            if bad is not None:
                bad[0].insert(0, f".{key}")
                return bad
    return None


def check_value(value: Any, spec: str, where: str) -> None:
    """Check `value` against a shape name of tables/shapes.json. Raises ParseError naming the element."""
    try:
        bad = _mismatch(value, spec)
    except RecursionError:  # Reference.identifier.assigner.identifier… nested without end
        raise ParseError(f"{where} is nested too deeply to read", details="fhir-too-deep", expression=where) from None
    if bad is not None:
        path, expected, found = bad
        _fail(where + "".join(path), expected, found)


def check_resource(res: Any, where: str) -> None:
    """Check the elements writers read of one resource (its type from resourceType). Raises ParseError."""
    if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
        raise ParseError(f"{where} is not a FHIR resource (an object with a resourceType)",
                         details="fhir-not-a-resource", expression=where)
    if "id" in res and not isinstance(res["id"], str):
        _fail(f"{where}.id", "a JSON string", res["id"])
    for key, sub in shapes()["resources"].get(res["resourceType"], {}).items():
        if key in res:
            check_value(res[key], sub, f"{where}.{key}")
