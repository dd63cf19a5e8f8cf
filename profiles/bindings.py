"""Terminology: codes against the value set an element is bound to (required → error, extensible and preferred →
warning; value sets without local content are reported as not checked), codes against the code systems loaded
with the definitions, and Coding.display against the code system's and the bound value set's displays."""

from __future__ import annotations

from typing import Any

from profiles import content
from profiles.displays import binding_value_set, display_problem, value_set_displays
from profiles.elements import Node

CODED = frozenset({"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"})  # types a binding applies to
_MISSING: Any = object()


def check(v: Any, value: Any, typ: str, node: Node, path: str, run: Any) -> None:
    """The binding of `node` (one of the CODED types) on `value`."""
    assert node.binding is not None
    strength, vs = node.binding
    if strength not in ("required", "extensible", "preferred") or not vs:
        return
    if typ in ("code", "string", "uri"):
        codings = [(None, value)] if isinstance(value, str) else []
    elif not isinstance(value, dict):
        return  # a Coding, CodeableConcept or Quantity that is not an object: reported as such
    elif typ == "Coding":
        codings = [(value.get("system"), value.get("code"))] if value.get("code") else []
    elif typ == "Quantity":
        if strength != "required" or not value.get("code"):
            return
        codings = [(value.get("system"), value.get("code"))]
    else:
        codings = [(c.get("system"), c.get("code")) for c in content.objects(value.get("coding")) if c.get("code")]
        if not codings:
            if strength == "required" and not value.get("text"):
                run.add("error", "code-invalid", path, f"No code provided, and a code is required from the "
                        f"value set {vs}")
            return
    if len(codings) == 1:  # the common case: one code, most often in the value set
        answers = [v.tx.contains(vs, codings[0][0], codings[0][1])]
        if answers[0].in_set:
            return
    else:
        answers = [v.tx.contains(vs, s, c) for s, c in codings]
        if any(a.in_set for a in answers):
            return
    unknown = [a for a in answers if a.in_set is None]
    if unknown:
        run.add("information", "informational", path, f"Not checked against {vs}: {unknown[0].reason}",
                "binding-not-checked")
        return
    if strength == "extensible" and not v.extensible_binding_warnings:
        return
    shown = ", ".join(f"{s}#{c}" if s else str(c) for s, c in codings)
    sev = "error" if strength == "required" else "warning"
    if strength == "required" and typ in ("code", "string", "uri"):
        # A bare code carries no system: the HL7 validator infers it from the value set's codes and, when the
        # code is in none of them, reports that failure (UNABLE_TO_INFER_CODESYSTEM) beside the binding error.
        run.add("error", "not-found", path, f"The System URI could not be determined for the code '{value}' in "
                f"the ValueSet '{vs}'")
    if typ == "CodeableConcept":
        msg = f"None of the codings provided ({shown}) are in the value set {vs}"
    else:
        msg = f"The value provided ({shown}) is not in the value set {vs}"
    run.add(sev, "code-invalid", path, msg + f" (binding strength {strength})")


def codes_exist(v: Any, value: dict[str, Any], typ: str, path: str, run: Any, node: Node | None = None) -> None:
    """Each coding's code is in its code system (when the system's content is loaded), its display one the system
    or the bound value set gives it."""
    codings = [value] if typ == "Coding" else content.items(value.get("coding"))
    for i, c in enumerate(codings):
        if not isinstance(c, dict):
            continue
        system, code = c.get("system"), c.get("code")
        if not isinstance(system, str) or not system or not isinstance(code, str) or not code:
            continue  # a wrongly typed system or code is reported as such by the primitive checks
        codes = v.tx.system_codes(system)
        if codes is not None and "__fragment__" not in codes and code not in codes:
            where = path if typ == "Coding" else f"{path}.coding[{i}]"
            run.add("error", "code-invalid", where, f"Unknown code '{code}' in the CodeSystem '{system}'")
        elif codes is not None and code in codes and "display" in c and not (
                typ == "Coding" and node is not None and node.path.endswith(".coding")):  # CodeableConcept's
            problem = display_problem(system, code, c["display"], codes[code],
                                      bound_displays(v, node).get((system, code), []), language(run))
            if problem:
                where = path if typ == "Coding" else f"{path}.coding[{i}]"
                run.add(problem[0], "invalid", f"{where}.display", problem[1])


def bound_displays(v: Any, node: Node | None) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
    """Displays the ValueSet bound to `node` gives its codes (cached per element)."""
    if node is None or not node.binding or not node.binding[1]:
        return {}
    memo = v.trees.node_memo
    key = (id(node), "displays")
    hit = memo.get(key, _MISSING)
    if hit is _MISSING:
        hit = value_set_displays(binding_value_set(v.defs, node.binding[1], node.profile_url))
        memo[key] = hit
    return hit  # type: ignore[no-any-return]


def language(run: Any) -> str | None:
    """The resource's language, when it is a string (anything else is reported by the type checks)."""
    lang = (run.resource or run.root).get("language")
    return lang if isinstance(lang, str) else None
