"""Which elements of a CDA document the reader used, so every element with content that nothing used is reported.

The reader marks what it consumes (or reports by name); after reading, `unused` lists the rest by XPath, one issue
per distinct path with a count, bounded, so a large document cannot flood the conversion report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from lxml import etree

from mappers.cda_cn.xpath import generic, local, path
from mappers.exceptions import Issue

XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
# Attributes that shape an element rather than carry a fact (CDA R2 structural attributes, code-system labels).
STRUCTURAL = {"classCode", "moodCode", "typeCode", "contextControlCode", "determinerCode", "codeSystemName",
              "codeSystemVersion", "nullFlavor", "negationInd", "inversionInd", "contextConductionInd", "ID",
              f"{XSI}type", f"{XSI}schemaLocation"}
ABSENT = {"", "NA", "N/A"}  # the national templates' placeholders
MAX_PATHS = 50

_current: ContextVar[set[etree._Element] | None] = ContextVar("cda_cn_used", default=None)


@contextmanager
def tracking() -> Iterator[set[etree._Element]]:
    """Collect the elements used while reading one document (lxml keeps one proxy per node while it is held)."""
    used: set[etree._Element] = set()
    token = _current.set(used)
    try:
        yield used
    finally:
        _current.reset(token)


def use(*elements: etree._Element | None) -> None:
    """Mark elements as used (mapped, or reported by a specific issue)."""
    used = _current.get()
    if used is not None:
        used.update(e for e in elements if e is not None)


def use_tree(el: etree._Element | None) -> None:
    if el is not None:
        use(*(e for e in el.iter() if isinstance(e.tag, str)))


def has_content(el: etree._Element) -> bool:
    """Text, or an attribute that carries a fact (not a placeholder, not a structural attribute)."""
    if (el.text or "").strip() not in ABSENT:
        return True
    return any(k not in STRUCTURAL and (v or "").strip() not in ABSENT for k, v in el.attrib.items())


def _narrative(el: etree._Element) -> bool:
    """A section's narrative block is one unit: its markup is presentation, not separate facts."""
    parent = el.getparent()
    return local(el) == "text" and parent is not None and local(parent) == "section"


def _units(root: etree._Element) -> Iterator[etree._Element]:
    stack = [root]
    while stack:
        el = stack.pop()
        yield el
        if not _narrative(el):
            stack.extend(reversed([c for c in el if isinstance(c.tag, str)]))


def _describe(el: etree._Element) -> str:
    attrs = [etree.QName(k).localname for k, v in el.attrib.items()
             if k not in STRUCTURAL and (v or "").strip() not in ABSENT]
    has_text = "".join(el.itertext()).strip() not in ABSENT if _narrative(el) else (el.text or "").strip() != ""
    return ", ".join([*(f"@{a}" for a in attrs), *(["text"] if has_text else [])])


def unused(root: etree._Element, used: set[etree._Element]) -> list[Issue]:
    """One information issue per distinct path of unused elements with content, at most MAX_PATHS, then a summary."""
    groups: dict[str, list[etree._Element]] = {}
    for el in _units(root):
        if el in used:
            continue
        content = "".join(el.itertext()).strip() not in ABSENT if _narrative(el) else has_content(el)
        if content:
            groups.setdefault(generic(path(el)), []).append(el)
    issues = []
    for where, els in list(groups.items())[:MAX_PATHS]:
        first = els[0]
        issues.append(Issue("information", "informational", "cda-element-not-mapped",
                            f"{len(els)} element(s) at {where} carry content ({_describe(first)}) that was not mapped; "
                            f"first: {path(first)} (line {first.sourceline})", where))
    rest = list(groups.items())[MAX_PATHS:]
    if rest:
        issues.append(Issue("information", "informational", "cda-element-not-mapped",
                            f"{len(rest)} more path(s) with {sum(len(e) for _, e in rest)} unmapped element(s) are "
                            "not listed", "/ClinicalDocument"))
    return issues
