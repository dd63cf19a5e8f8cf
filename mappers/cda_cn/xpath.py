"""Source locations in a CDA document as XPaths: the expression every issue and origin of the China CDA mapper uses.

Paths name elements by local name (the document's default namespace is urn:hl7-org:v3) with a 1-based position
among same-named siblings only where there are several, e.g.
`/ClinicalDocument/component/structuredBody/component[2]/section/entry[3]/organizer`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from lxml import etree

_INDEX = re.compile(r"\[\d+\]")
# While one document is read: element → its path, so a path costs one step over its parent's (linear, not
# quadratic, in a section of thousands of entries).
_paths: ContextVar[dict[etree._Element, str] | None] = ContextVar("cda_cn_paths", default=None)


@contextmanager
def locating() -> Iterator[None]:
    token = _paths.set({})
    try:
        yield
    finally:
        _paths.reset(token)


def local(el: etree._Element) -> str:
    """The element's name without its namespace ('' for comments and processing instructions)."""
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _steps(parent: etree._Element, known: dict[etree._Element, str], prefix: str) -> None:
    """Paths of all of `parent`'s element children at once, positions counted in one pass."""
    kids = [c for c in parent if isinstance(c.tag, str)]
    names = [local(c) for c in kids]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    for kid, name in zip(kids, names, strict=True):
        seen[name] = seen.get(name, 0) + 1
        known[kid] = f"{prefix}/{name}[{seen[name]}]" if counts[name] > 1 else f"{prefix}/{name}"


def path(el: etree._Element | None) -> str:
    """The positional XPath of `el` ('' for None)."""
    if el is None:
        return ""
    known = _paths.get()
    if known is None:
        known = {}
    hit = known.get(el)
    if hit is not None:
        return hit
    parent = el.getparent()
    if parent is None:
        known[el] = "/" + local(el)
    else:
        _steps(parent, known, path(parent))
    return known[el]


def generic(xpath: str) -> str:
    """The path without positions: every element of the same kind shares it."""
    return _INDEX.sub("", xpath)
