"""Internal hyperlinks in a narrative: an <a href="#x"> must lead somewhere in the resource, i.e. to an element
whose id is x or to an XHTML element with id or name x (a contained resource, an anchor). The HL7 validator
reports a link that leads nowhere ("Hyperlink ... does not resolve"). Links are looked for anywhere in the
instance being validated (a Bundle's entries link to each other's anchors), so only a link without any target
is reported."""

from __future__ import annotations

import html
import re
from typing import Any

from profiles.rules import rule

_LINK = re.compile(r"""<a\b[^>]*?\shref\s*=\s*(["'])#([^"']*)\1[^>]*>(.*?)</a\s*>""", re.S | re.I)
_ANCHOR = re.compile(r"""\s(?:id|name)\s*=\s*(["'])([^"']*)\1""")
_TAG = re.compile(r"<[^>]*>")


@rule("*")
def internal_hyperlinks(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    text = resource.get("text")
    div = text.get("div") if isinstance(text, dict) else None
    if not isinstance(div, str) or "#" not in div:
        return  # the usual narrative: no internal link, nothing to do
    links = [(m.group(2), m.group(3)) for m in _LINK.finditer(div) if m.group(2)]
    if not links:
        return
    targets = _targets(run.root)
    for fragment, label in links:
        if html.unescape(fragment) not in targets and fragment not in targets:
            shown = " ".join(html.unescape(_TAG.sub("", label)).split())
            run.add("error", "invalid", f"{path}.text.div", f"Hyperlink '#{fragment}' for '{shown}' does not "
                    "resolve")


def _targets(root: Any) -> set[str]:
    """Every id in the instance: element and resource ids, and the id and name attributes of its narratives."""
    out: set[str] = set()
    stack = [root]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "id" and isinstance(x, str):
                    out.add(x)
                elif k == "div" and isinstance(x, str):
                    out.update(m.group(2) for m in _ANCHOR.finditer(x))
                elif isinstance(x, dict | list):
                    stack.append(x)
        elif isinstance(v, list):
            stack.extend(x for x in v if isinstance(x, dict | list))
    return out
