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


def check_value(value: Any, spec: str, where: str) -> None:
    """Check `value` against a shape name of tables/shapes.json. Raises ParseError naming `where`."""
    if spec.startswith("["):
        if not isinstance(value, list):
            _fail(where, f"a list of {spec[1:-1]}", value)
        for i, item in enumerate(value):
            check_value(item, spec[1:-1], f"{where}[{i}]")
        return
    simple = _JSON_TYPES.get(spec)
    if simple is not None:
        # bool is an int in Python, but JSON true is not a FHIR integer or decimal
        if not isinstance(value, simple) or (isinstance(value, bool) and spec != "boolean"):
            _fail(where, f"a JSON {spec}", value)
        return
    if not isinstance(value, dict):
        _fail(where, f"an object ({spec})", value)
    fields = shapes()["datatypes"][spec]
    for key, sub in fields.items():
        if key in value:
            check_value(value[key], sub, f"{where}.{key}")


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
