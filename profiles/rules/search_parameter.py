"""Rules the HL7 validator applies to SearchParameter resources themselves (its SearchParameterValidator):
the expression must make sense for the declared bases, a parameter derived from another one (derivedFrom) must
keep its bases and type, and a composite parameter needs components.

FHIR R4 §3.1.1 (SearchParameter): "derivedFrom: Where this search parameter is originally defined. If a
derivedFrom is provided, then the details in the search parameter must be consistent with the definition from
which it is defined." R4 spc-1 only asks for *some* component on composites; the HL7 validator asks for two or
more, since a composite of one part is a plain parameter.
"""

from __future__ import annotations

import weakref
from typing import Any

from profiles import patterns
from profiles.definitions import CORE_PREFIX
from profiles.rules import rule

_LEADING_NAME = patterns.compile(r"\s*\(*\s*([A-Za-z_][A-Za-z0-9_]*)")
_ABSTRACT_ROOTS = ("Resource", "DomainResource")
_names: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


def resource_names(defs: Any) -> frozenset[str]:
    """The resource type names the definitions know (Patient, Observation, ..., Resource, DomainResource)."""
    hit = _names.get(defs)
    if hit is None:
        hit = _names[defs] = frozenset(defs.types_of_kind("resource"))
    return hit


def union_branches(expression: str) -> list[tuple[int, str]]:
    """The top-level `|` branches of a FHIRPath expression, with their offsets (quotes and brackets respected)."""
    out: list[tuple[int, str]] = []
    depth, start, quote = 0, 0, ""
    for i, ch in enumerate(expression):
        if quote:
            if ch == quote and expression[i - 1] != "\\":
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append((start, expression[start:i]))
            start = i + 1
    out.append((start, expression[start:]))
    return out


def _bases(sp: dict[str, Any]) -> list[str]:
    bases = sp.get("base")
    return [b for b in bases if isinstance(b, str)] if isinstance(bases, list) else []


def _expression_error(defs: Any, expression: str, bases: list[str]) -> str | None:
    """Why `expression` cannot select anything from resources of the `bases` types (None when it can).

    The check the HL7 validator's FHIRPath type checker makes on the leading name of each union branch: a
    branch starting with a resource type name must start with one of the bases (or one of their abstract
    ancestors); other names are left to the full evaluation."""
    names = resource_names(defs)
    if not names or any(b in _ABSTRACT_ROOTS for b in bases):
        return None
    for offset, branch in union_branches(expression):
        m = _LEADING_NAME.match(branch)
        if not m:
            continue
        name = m.group(1)
        if name in names and name not in bases and name not in _ABSTRACT_ROOTS:
            types = ", ".join(CORE_PREFIX + b for b in bases)
            return (f"The name '{name}' is not valid for any of the possible types: [{types}] "
                    f"(@char {offset + m.start(1) + 1})")
    return None


def _canonical_expression(defs: Any, expression: str, bases: list[str]) -> list[str]:
    """The union branches that apply to `bases`, sorted (the HL7 validator's comparison of derived expressions)."""
    names = resource_names(defs)
    keep = []
    for _, branch in union_branches(expression):
        branch = branch.strip()
        m = _LEADING_NAME.match(branch)
        if m and m.group(1) in names and m.group(1) not in bases:
            continue
        keep.append(branch)
    return sorted(keep)


@rule("SearchParameter")
def search_parameter(validator: Any, sp: dict[str, Any], path: str, run: Any) -> None:
    defs = validator.defs
    bases = _bases(sp)
    expression = sp.get("expression")
    if isinstance(expression, str) and expression.strip() and bases:
        why = _expression_error(defs, expression, bases)
        if why:
            run.add("error", "invalid", f"{path}.expression", f"Error in search expression '{expression}': Error "
                    f"evaluating FHIRPath expression: {why}")
    master_url = sp.get("derivedFrom")
    if isinstance(master_url, str) and master_url:
        _derived(defs, sp, master_url, bases, path, run)
    components = sp.get("component")
    if sp.get("type") == "composite" and (not isinstance(components, list) or len(components) < 2):
        run.add("error", "business-rule", path, "When the SearchParameter has a type of 'composite', then the "
                "SearchParameter must define two or more components")


def _derived(defs: Any, sp: dict[str, Any], master_url: str, bases: list[str], path: str, run: Any) -> None:
    """derivedFrom: "the details in the search parameter must be consistent with the definition from which it is
    defined" (R4 searchparameter-definitions.html#SearchParameter.derivedFrom)."""
    master = defs.canonical(master_url, "SearchParameter")
    if master is None:
        run.add("warning", "business-rule", path, f"The SearchParameter {master_url} could not be found")
        return
    master_bases = _bases(master)
    for b in bases:
        if b not in master_bases and "Resource" not in master_bases:
            run.add("error", "business-rule", path, f"The resource type {b} is not listed as a base in the "
                    f"SearchParameter this is derived from ({master_url})")
    if sp.get("type") and sp.get("type") != master.get("type"):
        run.add("error", "business-rule", path, f"The type {sp.get('type')} is different to the type "
                f"{master.get('type')} of {master_url} in the derivedFrom SearchParameter")
    expression, theirs = sp.get("expression"), master.get("expression")
    if (isinstance(expression, str) and isinstance(theirs, str) and expression != theirs
            and _canonical_expression(defs, expression, bases) != _canonical_expression(defs, theirs, bases)):
        run.add("warning", "business-rule", path, f"The expression '{expression}' is not compatible with "
                f"the expression '{theirs}' in the derivedFrom SearchParameter {master_url}, and this likely "
                "indicates that the derivation relationship is not valid")
