"""Obligation profiles (a StructureDefinition flagged with the obligation-profile extension): as the HL7 validator's
StructureDefinitionValidator checks them, such a profile only adds obligations, must-support flags and additional
bindings to its base. Each differential element must exist in the base snapshot, keep its path, and carry nothing
else (min and max are checked as for any constraint); its binding may only repeat the base strength and add
additional bindings, whose purpose cannot be maximum, required or extensible.
"""

from __future__ import annotations

from typing import Any

from profiles.content import objects_at
from profiles.rules import rule
from profiles.rules.structure_definition import base_elements, elements, is_obligation_profile

_OBLIGATIONS = ("http://hl7.org/fhir/StructureDefinition/obligation",
                "http://hl7.org/fhir/tools/StructureDefinition/obligation")
_ADDITIONAL_BINDING = "http://hl7.org/fhir/tools/StructureDefinition/additional-binding"
_ALLOWED = {"mustSupport", "min", "max", "id"}


@rule("StructureDefinition")
def obligation_profile(validator: Any, sd: dict[str, Any], path: str, run: Any) -> None:
    if not is_obligation_profile(sd):
        return
    if sd.get("derivation") != "constraint":
        run.add("error", "invalid", path, "An obligation profile must be a constraint on its base")
        return
    base_url = sd.get("baseDefinition")
    base = validator.defs.structure(base_url) if isinstance(base_url, str) else None
    if base is None:
        run.add("warning", "not-found", path, f"The base {base_url} of the obligation profile is not known, so the "
                "profile cannot be checked")
        return
    by_id = base_elements(validator.defs, base)
    if not by_id:
        return  # the base's own problem, reported when it is validated
    shown = f"{base_url}|{base['version']}" if base.get("version") else base_url
    for i, el in elements(sd, "differential"):
        _element(el, by_id, shown, f"{path}.differential.element[{i}]", run)


def _element(el: dict[str, Any], by_id: dict[str, Any], base: str, where: str, run: Any) -> None:
    eid = el.get("id")
    bd = by_id.get(eid) if isinstance(eid, str) else None
    if bd is None:
        run.add("error", "invalid", where, f"The element '{eid}' is not found in the base profile {base}, which is "
                "not allowed in Obligation profiles")
        return
    for key, value in el.items():
        if key.startswith("_") or key in _ALLOWED:
            continue
        if key == "extension":
            for j, ext in enumerate(value if isinstance(value, list) else []):
                url = ext.get("url") if isinstance(ext, dict) else None
                if url not in _OBLIGATIONS:
                    run.add("error", "invalid", f"{where}.extension[{j}]", f"The element '{eid}' has a property "
                            f"'extension#{url}' which is not allowed in Obligation profiles")
        elif key == "path":
            if value != bd.get("path"):
                run.add("error", "invalid", f"{where}.path", f"The element '{eid}' has a path '{value}' that is "
                        f"different to the path in the base '{bd.get('path')}'")
        elif key == "binding":
            if not isinstance(bd.get("binding"), dict):
                run.add("error", "invalid", f"{where}.binding", f"The element '{eid}' has a binding, which is not "
                        "allowed in Obligation profiles when the base has none")
            elif isinstance(value, dict):
                _binding(value, bd["binding"], eid, f"{where}.binding", run)
        else:
            run.add("error", "invalid", f"{where}.{key}", f"The element '{eid}' has a property '{key}' which is not "
                    "allowed in Obligation profiles")


def _binding(binding: dict[str, Any], base: dict[str, Any], eid: Any, where: str, run: Any) -> None:
    for key, value in binding.items():
        if key.startswith("_"):
            continue
        if key == "extension":
            for j, ext in enumerate(value if isinstance(value, list) else []):
                url = ext.get("url") if isinstance(ext, dict) else None
                if url != _ADDITIONAL_BINDING:
                    run.add("error", "invalid", f"{where}.extension[{j}]", f"The element '{eid}' has a property "
                            f"'extension#{url}' which is not allowed in Obligation profiles")
                    continue
                purpose = next((p.get("valueCode") for p in objects_at(ext, "extension") if p.get("url") == "purpose"),
                               None)
                if purpose in ("maximum", "required", "extensible"):
                    run.add("error", "invalid", f"{where}.extension[{j}]", f"The element '{eid}' has an additional "
                            f"binding with the purpose '{purpose}', which is not allowed in Obligation profiles")
        elif key == "strength":
            if value != base.get("strength"):
                run.add("error", "invalid", f"{where}.strength", f"The element '{eid}' has a different binding "
                        f"strength ('{value}') from the base ('{base.get('strength')}') which is not allowed in "
                        "Obligation profiles")
        else:
            run.add("error", "invalid", f"{where}.{key}", f"The element '{eid}' has a binding property '{key}' which "
                    "is not allowed in Obligation profiles")
