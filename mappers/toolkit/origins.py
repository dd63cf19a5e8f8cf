"""Which source field produced an element of the output: validator issues on a converted Bundle are located in the
source through the origins a mapper recorded (Conversion.origins)."""

from __future__ import annotations

import re
from typing import Any

_ENTRY = re.compile(r"^Bundle\.entry\[(\d+)\]\.resource(?:\.(.*))?$")


def source_of(bundle: dict[str, Any], origins: dict[str, str], expression: str) -> str | None:
    """The source expression behind a FHIRPath `expression` into `bundle`: the origin recorded for the longest
    element path that prefixes it (a list element's own origin, `component[2]`, before the list's, `component`),
    else for its resource; None when the mapper recorded none."""
    m = _ENTRY.match(expression)
    if not m:
        return None
    entries = bundle.get("entry") or []
    index = int(m.group(1))
    if index >= len(entries):
        return None
    rid = (entries[index].get("resource") or {}).get("id")
    if not isinstance(rid, str):
        return None
    path = readable(m.group(2) or "")
    while path:
        for key in (path, re.sub(r"\[\d+\]", "", path)):
            hit = origins.get(f"{rid}:{key}")
            if hit:
                return hit
        path = path.rpartition(".")[0]
    return origins.get(rid)


def readable(expression: str) -> str:
    """A FHIRPath expression with choice elements named as in JSON (`effective.ofType(DateTime)`: effectiveDateTime)."""
    # (?<!\w): a name starts where a word does (a match ends in ")"), and searching from inside a long word no
    # longer rescans it to its end at each character (quadratic)
    return re.sub(r"(?<!\w)(\w+)\.ofType\((\w)(\w*)\)", lambda c: c.group(1) + c.group(2).upper() + c.group(3),
                  expression)
