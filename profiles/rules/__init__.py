"""Rules the HL7 validator applies in code rather than through the definitions (Questionnaire answers,
Measure scoring, SearchParameter authoring, ...), keyed by resource type.

A rule module in this package registers functions with `@rule("QuestionnaireResponse")`; each is called as
`fn(validator, resource, path, run)` after the resource's structure, profiles and invariants were checked, and
reports through `run.add(severity, code, path, message)`. `run.resolve(ref)` finds resources in the Bundle,
`validator.defs.canonical(url, type)` the canonical resources loaded with the definitions.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

Rule = Callable[[Any, dict[str, Any], str, Any], None]
RULES: dict[str, list[Rule]] = {}


def rule(*resource_types: str) -> Callable[[Rule], Rule]:
    """Register a rule for resources of these types ("*" for every resource)."""

    def register(fn: Rule) -> Rule:
        for t in resource_types:
            RULES.setdefault(t, []).append(fn)
        return fn

    return register


def apply(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    for fn in (*RULES.get(resource.get("resourceType", ""), ()), *RULES.get("*", ())):
        try:
            fn(validator, resource, path, run)
        except (TypeError, AttributeError, KeyError, ValueError, IndexError):
            # Rules read content the structure checks have passed; on content they have already refused (an
            # object where an array belongs, ...) a rule may not apply. Anything else is a defect: let it surface.
            if not any(i.severity in ("error", "fatal") for i in run.issues):
                raise
            run.add("information", "informational", path, f"The {fn.__module__.rsplit('.', 1)[-1]} rules were "
                    "not applied, because the resource's content is malformed (see the errors)")


for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")
