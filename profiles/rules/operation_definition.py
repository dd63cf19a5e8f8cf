"""OperationDefinition.inputProfile / outputProfile against the parameter list (R4 operationdefinition.html:
"inputProfile: ... a profile on Parameters that ... the parameters defined in OperationDefinition.parameter"), as the
HL7 validator's OperationDefinitionValidator cross-checks them.

Each `parameter` slice of the profile (named by its fixed or pattern `name`) must be a parameter of that use, with
the same min and max, the same types (its value[x] or resource, whichever it uses) and the same target profiles;
a slice or parameter without a counterpart is a warning.
"""

from __future__ import annotations

from typing import Any

from profiles.elements import Node
from profiles.rules import rule

_UNBOUNDED = 2**31 - 1


def _max(value: Any) -> int:
    """OperationDefinition.parameter.max as a number ('*': unbounded; -1 when it is not a number)."""
    if value == "*":
        return _UNBOUNDED
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _fixed_name(el: Node | None) -> str | None:
    """The parameter name a slice is keyed on: its `name` element's fixed or pattern string."""
    if el is None:
        return None
    return next((v for v in (el.fixed, el.pattern) if isinstance(v, str)), None)


def _used(focus: Node | None, *others: Node | None) -> bool:
    """The HL7 validator's reading of which of value[x] / resource / part a slice uses: not excluded (max 0),
    and neither of the others required."""
    if focus is None or focus.max == 0:
        return False
    return not any(o is not None and o.min > 0 for o in others)


def _join(items: list[str]) -> str:
    return ", ".join(items) if items else "(none)"


@rule("OperationDefinition")
def operation_profiles(validator: Any, od: dict[str, Any], path: str, run: Any) -> None:
    if not isinstance(od.get("inputProfile"), str) and not isinstance(od.get("outputProfile"), str):
        return
    listed = od.get("parameter")
    params = [(i, p) for i, p in enumerate(listed) if isinstance(p, dict)] if isinstance(listed, list) else []
    for prop, use in (("inputProfile", "in"), ("outputProfile", "out")):
        url = od.get(prop)
        if isinstance(url, str):
            _check_profile(validator, [(i, p) for i, p in params if p.get("use") == use], url, use,
                           f"{path}.{prop}", path, run)


def _check_profile(validator: Any, params: list[tuple[int, dict[str, Any]]], url: str, use: str, where: str,
                   path: str, run: Any) -> None:
    """The `parameter` slices of the profile against the parameters of this use (`params`: index, parameter)."""
    sd = validator.defs.structure(url)
    if sd is None:
        run.add("error", "unknown", where, f"The '{use}' profile '{url}' could not be found")
        return
    if sd.get("type") != "Parameters":
        run.add("error", "invalid", where, f"The '{use}' profile '{url}' is not a profile on Parameters")
        return
    root = validator.node(url)  # compiled once per validator
    if root is None:
        return  # a profile whose snapshot cannot be built is reported when it is validated itself
    parameter = root.children.get("parameter")
    shown = f"{url}|{sd['version']}" if sd.get("version") else url
    matched: set[int] = set()
    for s in (parameter.slices.values() if parameter is not None else ()):
        name = _fixed_name(s.children.get("name"))
        if name is None:
            continue  # a slice not keyed on the parameter name says nothing about a parameter
        hit = next(((i, p) for i, p in params if p.get("name") == name), None)
        if hit is None:
            run.add("warning", "unknown", where, f"The '{use}' profile {shown} defines a parameter '{name}' but this "
                    "is not in the parameters list in the operation definition")
            continue
        matched.add(hit[0])
        _compare(hit[1], s, name, use, shown, f"{path}.parameter[{hit[0]}]", run)
    for i, p in params:
        if i not in matched:
            run.add("warning", "unknown", f"{path}.parameter[{i}]", f"The '{use}' profile does not have a parameter "
                    f"'{p.get('name')}' but it is in the parameters list in the operation definition")


def _compare(param: dict[str, Any], s: Node, name: str, use: str, shown: str, where: str, run: Any) -> None:
    if isinstance(param.get("min"), int) and param["min"] != s.min:
        run.add("error", "unknown", where, f"The parameter '{name}' has a value for 'min' of '{s.min}' in "
                f"the '{use}' profile that is different to '{param['min']}' which is the value in the parameter "
                "definition in the operation definition")
    pmax = _max(param.get("max"))
    if pmax > -1 and pmax != (_UNBOUNDED if s.max is None else s.max):
        smax = "*" if s.max is None else s.max
        run.add("error", "unknown", where, f"The parameter '{name}' has a value for 'max' of '{smax}' in the '{use}' "
                f"profile that is different to '{param.get('max')}' which is the value in the parameter definition in "
                "the operation definition")
    allowed = [param["type"]] if isinstance(param.get("type"), str) else []
    listed = param.get("targetProfile")
    targets = [t for t in listed if isinstance(t, str)] if isinstance(listed, list) else []
    value, resource, part = (s.children.get(k) for k in ("value[x]", "resource", "part"))
    types: list[str] = []
    profile_targets: list[str] = []
    for focus, others in ((value, (resource, part)), (resource, (value, part))):
        if focus is None or not _used(focus, *others):
            continue
        for t in focus.types:
            if not t.code:
                continue
            types.append(t.code)
            profile_targets += t.targets
            if t.code not in allowed:
                run.add("error", "invalid", where, f"The type '{t.code}' is allowed for the parameter '{name}' in the "
                        f"'{use}' profile {shown} but is not in the list of allowed types for the parameter in the "
                        f"operation definition: {_join(allowed)}")
    for t in allowed:
        if t not in types:
            run.add("error", "invalid", where, f"The type '{t}' is not allowed for the parameter '{name}' in the "
                    f"'{use}' profile {shown} but is in the list of allowed types for the parameter in the operation "
                    f"definition (allowed types = {_join(types)})")
    for t in targets:
        if t not in profile_targets:
            run.add("error", "invalid", where, f"The target profile '{t}' is not allowed for the parameter '{name}' in "
                    f"the '{use}' profile but is in the list of target profiles for the parameter in the operation "
                    f"definition (profile target profiles = {_join(profile_targets)})")
    for t in profile_targets:
        if t not in targets:
            run.add("error", "invalid", where, f"The target profile '{t}' is allowed for the parameter '{name}' in "
                    f"the '{use}' profile {shown} but is not in the list of target profiles for the parameter in the "
                    f"operation definition: {_join(targets)}")
