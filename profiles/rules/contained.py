"""dom-3 (R4 references.html#contained): a contained resource SHALL be referenced from elsewhere in its container
or SHALL refer to the container ("#").

The published expression (`%resource.descendants().as(canonical)`, `.as()` on a collection) cannot run on a
FHIRPath engine that follows the specification, so the HL7 validator checks dom-3 in code and reports each orphan
on the contained resource itself; this does the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from profiles import patterns
from profiles.rules import rule

# a local link in narrative (<img src="#id">, <a href="#id">) also references a contained resource
_XHTML_LINK = patterns.compile(r"""\b(?:href|src)\s*=\s*["'](#[^"']*)["']""")


def _strings(node: Any, skip_contained: bool = False) -> Iterator[str]:
    """Every string in `node` (and the local links of narratives), without `contained` at the top when asked.
    Iterative: nested generators would cost time quadratic in the depth, and contained resources nest."""
    stack = [v for k, v in node.items() if k != "contained"] if skip_contained and isinstance(node, dict) else [node]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
            if v.startswith("<div"):
                yield from _XHTML_LINK.findall(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


@rule("*")
def orphan_contained(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    contained = resource.get("contained")
    if not contained or not isinstance(contained, list) or not validator.references.contained:
        return  # validateContains IGNORE: contained resources are not looked at
    # references and canonical/uri values anywhere in the container, the contained resources included
    # (one contained resource may be reached through another)
    outside = set(_strings(resource, skip_contained=True))
    inside = [set(_strings(c)) if isinstance(c, dict) else set() for c in contained]
    for i, c in enumerate(contained):
        cid = c.get("id") if isinstance(c, dict) else None
        if not isinstance(cid, str) or not cid:
            continue  # a contained resource without an id is reported by the structure checks
        local = "#" + cid
        if local in outside or "#" in inside[i] or any(local in s for j, s in enumerate(inside) if j != i):
            continue
        run.add("error", "invalid", f"{path}.contained[{i}]", f"The contained resource '{cid}' is not referenced "
                "to from elsewhere in the containing resource nor does it refer to the containing resource (dom-3)")
