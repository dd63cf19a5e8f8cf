"""Internal hyperlinks in a narrative: an <a href="#x"> must lead somewhere in the resource, i.e. to an element
whose id is x or to an XHTML element with id or name x (a contained resource, an anchor). The HL7 validator
reports a link that leads nowhere ("Hyperlink ... does not resolve"). Links are looked for anywhere in the
instance being validated (a Bundle's entries link to each other's anchors), so only a link without any target
is reported."""

from __future__ import annotations

import html
import weakref
from typing import Any

from profiles import patterns
from profiles.rules import rule

# the quote that opens an attribute value closes it: one alternative per quote (RE2 has no backreferences)
_LINK = patterns.compile(r"""<a\b[^>]*?\shref\s*=\s*(?:"#([^"']*)"|'#([^"']*)')[^>]*>(.*?)</a\s*>""",
                         patterns.DOTALL | patterns.IGNORECASE)
_ANCHOR = patterns.compile(r"""\s(?:id|name)\s*=\s*(?:"([^"']*)"|'([^"']*)')""")
_TAG = patterns.compile(r"<[^>]*>")


@rule("*")
def internal_hyperlinks(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    text = resource.get("text")
    div = text.get("div") if isinstance(text, dict) else None
    if not isinstance(div, str) or not _may_link(div):
        return  # the usual narrative: no internal link, nothing to do
    links = [(m.group(1) or m.group(2), m.group(3)) for m in _LINK.finditer(div) if m.group(1) or m.group(2)]
    if not links:
        return
    targets = _run_targets(run)
    for fragment, label in links:
        if html.unescape(fragment) not in targets and fragment not in targets:
            shown = " ".join(html.unescape(_TAG.sub("", label)).split())
            run.add("error", "invalid", f"{path}.text.div", f"Hyperlink '#{fragment}' for '{shown}' does not "
                    "resolve")


def _may_link(div: str) -> bool:
    """Whether a quote opens a '#' somewhere in `div`, as in every internal link _LINK finds (href="#x" or '#x').
    Most narratives hold a '#' elsewhere (pages' #anchors, &#160;, colours), which the search would read in full;
    finding each '#' is a memchr, where `'"#' in div` costs as much as the search on these texts."""
    i = div.find("#", 1)
    while i > 0:
        if div[i - 1] in "\"'":
            return True
        i = div.find("#", i + 1)
    return False


# the targets of the run last asked about: the entries of one Bundle share them, so they are collected once per
# validate() call rather than once per entry with a link (weakly held: the run and its instance are not kept alive)
_last: tuple[weakref.ref[Any], set[str]] | None = None


def _run_targets(run: Any) -> set[str]:
    global _last
    last = _last
    if last is not None and last[0]() is run:
        return last[1]
    targets = _targets(run.root)
    _last = (weakref.ref(run), targets)
    return targets


def _targets(root: Any) -> set[str]:
    """Every id in the instance: element and resource ids, and the id and name attributes of its narratives (the
    walk of references.json_objects, inlined: it visits every object of the Bundle)."""
    out: set[str] = set()
    anchors = _ANCHOR.finditer
    stack = [root]
    pop, push = stack.pop, stack.append
    while stack:
        o = pop()
        if isinstance(o, dict):
            i = o.get("id")
            if i.__class__ is str or isinstance(i, str):
                out.add(i)
            div = o.get("div")
            if div.__class__ is str or isinstance(div, str):
                out.update(m.group(1) or m.group(2) or "" for m in anchors(div))
            for x in o.values():
                if x.__class__ is dict or x.__class__ is list or isinstance(x, dict | list):
                    push(x)
        else:
            for x in o:
                if x.__class__ is dict or x.__class__ is list or isinstance(x, dict | list):
                    push(x)
    return out
