"""Source locations in a CDA document as XPaths: the expression every issue and origin of the China CDA mapper uses.

Paths name elements by local name (the document's default namespace is urn:hl7-org:v3) with a 1-based position
among same-named siblings only where there are several, e.g.
`/ClinicalDocument/component/structuredBody/component[2]/section/entry[3]/organizer`.
"""

from __future__ import annotations

import re

from lxml import etree

_INDEX = re.compile(r"\[\d+\]")


def local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def path(el: etree._Element | None) -> str:
    """The positional XPath of `el` ('' for None)."""
    if el is None:
        return ""
    steps = []
    node: etree._Element | None = el
    while node is not None:
        name = local(node)
        parent = node.getparent()
        if parent is None:
            steps.append(name)
            break
        same = [c for c in parent if isinstance(c.tag, str) and local(c) == name]
        steps.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "/" + "/".join(reversed(steps))


def generic(xpath: str) -> str:
    """The path without positions: every element of the same kind shares it."""
    return _INDEX.sub("", xpath)


def line(el: etree._Element | None) -> int | None:
    return el.sourceline if el is not None else None
