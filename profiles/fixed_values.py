"""Where a complex value departs from the fixed[x] value of its element, child by child, as the HL7 validator
reports it (InstanceValidator.checkFixedValue): an instance child the fixed value lacks is not allowed, a child the
fixed value has must be present, and primitives must be equal. R4 ElementDefinition.fixed[x]: "the value in the
instance SHALL follow these constraints exactly" (extensions and ids on the instance aside)."""

from __future__ import annotations

from typing import Any

from profiles.matching import equal_primitive, short


def differences(value: Any, fixed: Any, path: str, source: str) -> list[tuple[str, str]]:
    """(expression, message) for each departure of `value` from `fixed`; [] when they agree."""
    if isinstance(fixed, dict) and isinstance(value, dict):
        out = [(f"{path}.{k}", f"The element {k} is present in the instance but not allowed in the applicable fixed "
                "value specified in profile")
               for k in value if k not in fixed and k not in ("extension", "id") and not k.startswith("_")]
        for k, f in fixed.items():
            if k not in value:
                out.append((path, f"Missing element '{k}' - required by fixed value assigned in profile {source}"))
            else:
                out += differences(value[k], f, f"{path}.{k}", source)
        return out
    if isinstance(fixed, list) and isinstance(value, list):
        if len(fixed) != len(value):
            return [(path, f"Expected {len(fixed)} but found {len(value)} elements (fixed in {source})")]
        out = []
        for i, (v, f) in enumerate(zip(value, fixed, strict=True)):
            out += differences(v, f, f"{path}[{i}]", source)
        return out
    if not isinstance(fixed, dict | list) and not isinstance(value, dict | list) and equal_primitive(value, fixed):
        return []
    return [(path, f"Value is {short(value)} but must be {short(fixed)} (fixed in {source})")]
