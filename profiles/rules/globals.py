"""Global profiles: an ImplementationGuide's `global` entries name a profile that every resource of a type
must conform to (http://hl7.org/fhir/R4/implementationguide-definitions.html#ImplementationGuide.global), so
the validator checks instances of that type against it even without a meta.profile claim."""

from __future__ import annotations

from typing import Any

from profiles.rules import rule


def global_profiles(validator: Any) -> dict[str, list[tuple[str, str]]]:
    """Resource type → [(profile url, ImplementationGuide url)] over the loaded ImplementationGuides (once per
    validator)."""
    table = getattr(validator, "_global_profiles", None)
    if table is None:
        table = {}
        seen: set[int] = set()
        for res in validator.defs.others.values():
            if res.get("resourceType") != "ImplementationGuide" or id(res) in seen:
                continue
            seen.add(id(res))  # indexed under url and url|version
            for g in res.get("global") or []:
                if isinstance(g, dict) and isinstance(g.get("type"), str) and isinstance(g.get("profile"), str):
                    table.setdefault(g["type"], []).append((g["profile"], str(res.get("url", ""))))
        validator._global_profiles = table
    return table


@rule("*")
def check_global_profiles(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    wanted = global_profiles(validator).get(resource.get("resourceType", ""))
    if not wanted:
        return
    claimed = (resource.get("meta") or {}).get("profile") or []
    for url, ig in dict.fromkeys(wanted):
        if url in claimed:
            continue  # already checked as a claimed profile
        node = validator.node(url)
        if node is None or node.path != resource.get("resourceType"):
            run.add("warning", "not-found", path, f"The global profile {url} declared in {ig} is not known "
                    "locally, so it was not checked")
            continue
        run.add("information", "informational", path, f"Validate resource against profile {url} - a global "
                f"profile in {ig}")
        validator._object(resource, node, node.children, path, node.path, run, is_resource=True)
        validator._constraints(resource, node, node.path, path, run)
