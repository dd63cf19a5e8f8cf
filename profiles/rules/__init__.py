"""Rules the HL7 validator applies in code rather than through the definitions (Questionnaire answers,
Measure scoring, SearchParameter authoring, ...), keyed by resource type.

A rule module in this package registers functions with `@rule("QuestionnaireResponse")`; each is called as
`fn(validator, resource, path, run)` after the resource's structure, profiles and invariants were checked, and
reports through `run.add(severity, code, path, message)`. `run.resolve(ref)` finds resources in the Bundle,
`validator.defs.canonical(url, type)` the canonical resources loaded with the definitions. Rules use the validator's
public interface only (profiles/validator.py): `node(url)`, `type_node(code)`, `element(url, path)`, `type_of(url)`,
`conforms(resource, url, run)`, `check_against(resource, node, path, run)`, `tx`, `regex`, its options.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

Rule = Callable[[Any, dict[str, Any], str, Any], None]
RULES: dict[str, list[Rule]] = {}
_BY_TYPE: dict[str, tuple[Rule, ...]] = {}  # resource type → its rules and the "*" ones (apply() runs per resource)


def rule(*resource_types: str) -> Callable[[Rule], Rule]:
    """Register a rule for resources of these types ("*" for every resource)."""

    def register(fn: Rule) -> Rule:
        for t in resource_types:
            RULES.setdefault(t, []).append(fn)
        _BY_TYPE.clear()
        return fn

    return register


def apply(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    """Run the rules registered for the resource's type and for every resource on `resource` (at `path`)."""
    rtype = resource.get("resourceType", "")
    fns = _BY_TYPE.get(rtype)
    if fns is None:
        fns = _BY_TYPE[rtype] = (*RULES.get(rtype, ()), *RULES.get("*", ()))
    for fn in fns:
        try:
            fn(validator, resource, path, run)
        except (TypeError, AttributeError, KeyError, ValueError, IndexError):
            # Rules read content the structure checks have passed; on content they have already refused (an
            # object where an array belongs, ...) a rule may not apply. Anything else is a defect: let it surface.
            if not any(i.severity in ("error", "fatal") for i in run.issues):
                raise
            run.add("information", "informational", path, f"The {fn.__module__.rsplit('.', 1)[-1]} rules were "
                    "not applied, because the resource's content is malformed (see the errors)")


def validate_against(validator: Any, resource: dict[str, Any], node: Any, path: str, run: Any) -> None:
    """Check `resource` against one more profile (`node`, its compiled root) exactly as against a claimed one: for
    the profiles a rule requires whether or not the instance claims them (vital signs, ImplementationGuide.global)."""
    validator.check_against(resource, node, path, run)


for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")
