"""OperationDefinition.inputProfile / outputProfile against the parameter list (R4 operationdefinition.html:
"inputProfile: ... a profile on Parameters that ... the parameters defined in OperationDefinition.parameter"), as the
HL7 validator's OperationDefinitionValidator cross-checks them.

Each `parameter` slice of the profile (named by its fixed or pattern `name`) must be a parameter of that use, with
the same min and max, the same types (its value[x] or resource, whichever it uses) and the same target profiles;
a slice or parameter without a counterpart is a warning.
"""

from __future__ import annotations

from typing import Any

from profiles.rules import rule
from profiles.snapshot import generate


def _max(value: Any) -> int:
    if value == "*":
        return 2**31 - 1
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _fixed_name(el: dict[str, Any] | None) -> str | None:
    for k, v in (el or {}).items():
        if k.startswith(("fixed", "pattern")) and isinstance(v, str):
            return v
    return None


def _used(focus: dict[str, Any] | None, *others: dict[str, Any] | None) -> bool:
    """The HL7 validator's reading of which of value[x] / resource / part a slice uses: not excluded (max 0),
    and neither of the others required."""
    if focus is None or str(focus.get("max")) == "0":
        return False
    return not any(o is not None and (o.get("min") or 0) > 0 for o in others)


def _join(items: list[str]) -> str:
    return ", ".join(items) if items else "(none)"


@rule("OperationDefinition")
def operation_profiles(validator: Any, od: dict[str, Any], path: str, run: Any) -> None:
    for prop, use in (("inputProfile", "in"), ("outputProfile", "out")):
        url = od.get(prop)
        if isinstance(url, str):
            _check_profile(validator, od, url, use, f"{path}.{prop}", path, run)


def _check_profile(validator: Any, od: dict[str, Any], url: str, use: str, where: str, path: str, run: Any) -> None:
    sd = validator.defs.structure(url)
    if sd is None:
        run.add("error", "unknown", where, f"The '{use}' profile '{url}' could not be found")
        return
    if sd.get("type") != "Parameters":
        run.add("error", "invalid", where, f"The '{use}' profile '{url}' is not a profile on Parameters")
        return
    try:
        elements = generate(sd, validator.defs)["snapshot"]["element"]
    except (ValueError, KeyError, TypeError):
        return  # a profile whose snapshot cannot be built is reported when it is validated itself
    by_id = {e.get("id"): e for e in elements if isinstance(e, dict)}
    slices = [e for e in elements if isinstance(e, dict) and e.get("path") == "Parameters.parameter"
              and e.get("sliceName") and ":" not in str(e.get("sliceName"))]
    params = [p for p in od.get("parameter") or [] if isinstance(p, dict)]
    shown = f"{url}|{sd['version']}" if sd.get("version") else url
    matched: set[int] = set()
    for s in slices:
        sid = s.get("id") or f"Parameters.parameter:{s['sliceName']}"
        name = _fixed_name(by_id.get(f"{sid}.name"))
        if name is None:
            continue  # a slice not keyed on the parameter name says nothing about a parameter
        idx = next((i for i, p in enumerate(params) if p.get("name") == name and p.get("use") == use), None)
        if idx is None:
            run.add("warning", "unknown", where, f"The '{use}' profile {shown} defines a parameter '{name}' but this "
                    "is not in the parameters list in the operation definition")
            continue
        matched.add(idx)
        _compare(params[idx], s, by_id, sid, name, use, shown, f"{path}.parameter[{idx}]", run)
    for i, p in enumerate(params):
        if i not in matched and p.get("use") == use:
            run.add("warning", "unknown", f"{path}.parameter[{i}]", f"The '{use}' profile does not have a parameter "
                    f"'{p.get('name')}' but it is in the parameters list in the operation definition")


def _compare(param: dict[str, Any], s: dict[str, Any], by_id: dict[str, Any], sid: str, name: str, use: str,
             shown: str, where: str, run: Any) -> None:
    if isinstance(param.get("min"), int) and param["min"] != (s.get("min") or 0):
        run.add("error", "unknown", where, f"The parameter '{name}' has a value for 'min' of '{s.get('min') or 0}' in "
                f"the '{use}' profile that is different to '{param['min']}' which is the value in the parameter "
                "definition in the operation definition")
    pmax, smax = _max(param.get("max")), _max(s.get("max"))
    if pmax > -1 and smax > -1 and pmax != smax:
        run.add("error", "unknown", where, f"The parameter '{name}' has a value for 'max' of '{s.get('max')}' in the "
                f"'{use}' profile that is different to '{param.get('max')}' which is the value in the parameter "
                "definition in the operation definition")
    allowed = [param["type"]] if isinstance(param.get("type"), str) else []
    targets = [t for t in param.get("targetProfile") or [] if isinstance(t, str)]
    value, resource, part = by_id.get(f"{sid}.value[x]"), by_id.get(f"{sid}.resource"), by_id.get(f"{sid}.part")
    types: list[str] = []
    profile_targets: list[str] = []
    for focus, others in ((value, (resource, part)), (resource, (value, part))):
        if not _used(focus, *others):
            continue
        for t in (focus or {}).get("type") or []:
            code = t.get("code")
            if not isinstance(code, str):
                continue
            types.append(code)
            profile_targets += [u for u in t.get("targetProfile") or [] if isinstance(u, str)]
            if code not in allowed:
                run.add("error", "invalid", where, f"The type '{code}' is allowed for the parameter '{name}' in the "
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
