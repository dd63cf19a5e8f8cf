"""Rules the HL7 validator applies to CapabilityStatement resources beyond their definition: a search parameter
a server declares with a `definition` must have the type of that SearchParameter (FHIR R4 §3.3.1:
"rest.resource.searchParam.type: The type of value a search parameter refers to ... (must match the definition)")."""

from __future__ import annotations

from typing import Any

from profiles.rules import rule


@rule("CapabilityStatement")
def capability_statement(validator: Any, cs: dict[str, Any], path: str, run: Any) -> None:
    for i, rest in enumerate(cs.get("rest") or []):
        if not isinstance(rest, dict):
            continue
        for j, res in enumerate(rest.get("resource") or []):
            if not isinstance(res, dict):
                continue
            for k, param in enumerate(res.get("searchParam") or []):
                if not isinstance(param, dict):
                    continue
                url, ptype = param.get("definition"), param.get("type")
                if not isinstance(url, str) or not isinstance(ptype, str):
                    continue
                sp = validator.defs.canonical(url, "SearchParameter")
                if sp is not None and sp.get("type") and sp["type"] != ptype:
                    versioned = f"{sp.get('url')}|{sp['version']}" if sp.get("version") else sp.get("url")
                    run.add("error", "invalid", f"{path}.rest[{i}].resource[{j}].searchParam[{k}]",
                            f"Type mismatch - SearchParameter '{versioned}' type is {sp['type']}, but type here "
                            f"is {ptype}")
