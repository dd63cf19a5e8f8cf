"""Reading FHIR Parameters bodies the operations take ($convert, $validate, $translate, bulk)."""

from __future__ import annotations

from typing import Any

from mappers.exceptions import ParseError


def parameters(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Parameters.parameter as a list of objects. Raises ParseError when it is anything else."""
    params = doc.get("parameter", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise ParseError("Parameters.parameter must be an array of objects", details="bad-parameters",
                         expression="Parameters.parameter")
    for i, p in enumerate(params):
        for key in ("valueString", "valueBase64Binary"):
            if key in p and not isinstance(p[key], str):
                raise ParseError(f"Parameters.parameter[{i}].{key} must be a string", details="bad-parameters",
                                 expression=f"Parameters.parameter[{i}].{key}")
    return params
