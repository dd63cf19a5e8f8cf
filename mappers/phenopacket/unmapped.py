"""Nothing lost in silence: every leaf of the canonical phenopacket JSON that no mapping used is reported, one
warning per field (indices left out) with its count and first place."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mappers.exceptions import Issue
from mappers.phenopacket.context import Context

_INDEX = re.compile(r"\[\d+\]")


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every scalar in a JSON value; paths like `subject.sex`, `diseases[0].term.id`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def _prefixes(path: str) -> Iterator[str]:
    yield path
    for m in reversed(list(re.finditer(r"[.\[]", path))):
        yield path[: m.start()]


def report(doc: dict[str, Any], ctx: Context) -> list[Issue]:
    used = ctx.used
    missed: dict[str, tuple[int, str]] = {}
    for path, _ in leaves(doc):
        if any(p in used for p in _prefixes(path)):
            continue
        field = _INDEX.sub("", path)
        n, first = missed.get(field, (0, path))
        missed[field] = (n + 1, first)
    out = []
    for field, (n, first) in missed.items():
        times = f" ({n} times)" if n > 1 else ""
        out.append(Issue("warning", "informational", "phenopacket-field-not-mapped",
                         f"{ctx.kind}.{field} has no place in the FHIR output and is not carried{times}",
                         ctx.where(first)))
    return out
