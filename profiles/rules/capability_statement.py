"""Rules the HL7 validator applies to CapabilityStatement resources beyond their definition: a search parameter
a server declares with a `definition` must have the type of that SearchParameter (FHIR R4 §3.3.1:
"rest.resource.searchParam.type: The type of value a search parameter refers to ... (must match the definition)")."""

from __future__ import annotations

from typing import Any

from profiles.rules import rule


def _objects(node: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    """(index, object) of a repeating element's objects; nothing when it is not an array (the structure checks
    report that)."""
    got = node.get(key)
    return [(i, o) for i, o in enumerate(got) if isinstance(o, dict)] if isinstance(got, list) else []


@rule("CapabilityStatement")
def capability_statement(validator: Any, cs: dict[str, Any], path: str, run: Any) -> None:
    params = ((f"{path}.rest[{i}].resource[{j}].searchParam[{k}]", param) for i, rest in _objects(cs, "rest")
              for j, res in _objects(rest, "resource") for k, param in _objects(res, "searchParam"))
    for where, param in params:
        url, ptype = param.get("definition"), param.get("type")
        if not isinstance(url, str) or not isinstance(ptype, str):
            continue
        sp = validator.defs.canonical(url, "SearchParameter")
        if sp is not None and sp.get("type") and sp["type"] != ptype:
            versioned = f"{sp.get('url')}|{sp['version']}" if sp.get("version") else sp.get("url")
            run.add("error", "invalid", where, f"Type mismatch - SearchParameter '{versioned}' type is {sp['type']}, "
                    f"but type here is {ptype}")
