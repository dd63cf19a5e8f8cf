"""Global profiles: an ImplementationGuide's `global` entries name a profile that every resource of a type
must conform to (http://hl7.org/fhir/R4/implementationguide-definitions.html#ImplementationGuide.global), so
the validator checks instances of that type against it even without a meta.profile claim."""

from __future__ import annotations

import weakref
from typing import Any

from profiles.rules import rule, validate_against

# Definitions → resource type → [(profile url, ImplementationGuide url)]; the rule runs for every resource
_tables: weakref.WeakKeyDictionary[Any, dict[str, list[tuple[str, str]]]] = weakref.WeakKeyDictionary()


def global_profiles(defs: Any) -> dict[str, list[tuple[str, str]]]:
    """Resource type → [(profile url, ImplementationGuide url)] over the ImplementationGuides in `defs` (computed
    once per Definitions)."""
    table = _tables.get(defs)
    if table is None:
        table = {}
        for guide in defs.canonicals("ImplementationGuide"):  # each once, though indexed under url and url|version
            for g in guide.get("global") or []:
                if isinstance(g, dict) and isinstance(g.get("type"), str) and isinstance(g.get("profile"), str):
                    table.setdefault(g["type"], []).append((g["profile"], str(guide.get("url", ""))))
        _tables[defs] = table
    return table


@rule("*")
def check_global_profiles(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    wanted = global_profiles(validator.defs).get(resource["resourceType"])
    if not wanted:
        return
    for url, ig in dict.fromkeys(wanted):
        if url in run.applied:
            continue  # already checked as a claimed (or requested) profile
        node = validator.node(url)
        if node is None or node.path != resource["resourceType"]:
            run.add("warning", "not-found", path, f"The global profile {url} declared in {ig} is not known "
                    "locally, so it was not checked")
            continue
        run.add("information", "informational", path, f"Validate resource against profile {url} - a global "
                f"profile in {ig}")
        validate_against(validator, resource, node, path, run)
