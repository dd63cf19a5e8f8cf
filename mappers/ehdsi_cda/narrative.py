"""Section narrative: the CDA R2 narrative block (StrucDoc.Text, CDA R2 §4.3.5) ⇄ FHIR XHTML narrative (R4
narrative.html: a `div` in the XHTML namespace, basic formatting only, no active content)."""

from __future__ import annotations

from lxml import etree

from mappers.cda_cn.xpath import local

XHTML = "http://www.w3.org/1999/xhtml"
V3 = "urn:hl7-org:v3"
# CDA narrative element → XHTML element (CDA R2 §4.3.5.1-4.3.5.11).
_TO_HTML = {"paragraph": "p", "content": "span", "item": "li", "table": "table", "thead": "thead", "tbody": "tbody",
            "tfoot": "tfoot", "tr": "tr", "th": "th", "td": "td", "col": "col", "colgroup": "colgroup", "br": "br",
            "sub": "sub", "sup": "sup", "linkHtml": "a", "footnote": "span", "footnoteRef": "span",
            "caption": "caption"}
_KEEP_ATTRS = {"colspan", "rowspan", "align", "valign", "span", "width"}
_STYLE = {"Bold": "b", "Italics": "i", "Underline": "u"}
_FROM_HTML = {"p": "paragraph", "span": "content", "li": "item", "table": "table", "thead": "thead",
              "tbody": "tbody", "tfoot": "tfoot", "tr": "tr", "th": "th", "td": "td", "col": "col",
              "colgroup": "colgroup", "br": "br", "sub": "sub", "sup": "sup", "a": "linkHtml", "caption": "caption",
              "pre": "paragraph", "h1": "paragraph", "h2": "paragraph", "h3": "paragraph", "h4": "paragraph",
              "h5": "paragraph", "h6": "paragraph", "blockquote": "paragraph", "code": "content", "tt": "content"}
_STYLED = {"b": "Bold", "strong": "Bold", "i": "Italics", "em": "Italics", "u": "Underline"}
_BLOCK = {"div", "p", "table", "ul", "ol", "dl", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"}


def to_xhtml(text: etree._Element, lang: str = "") -> tuple[str, list[str]]:
    """The FHIR div for a CDA section `text`, and what could not be carried (e.g. renderMultiMedia)."""
    dropped: list[str] = []
    div = etree.Element(f"{{{XHTML}}}div", nsmap={None: XHTML})
    if lang:
        div.set("lang", lang)
        div.set("{http://www.w3.org/XML/1998/namespace}lang", lang)
    _copy_html(text, div, dropped)
    if not "".join(div.itertext()).strip():
        return "", dropped
    return etree.tostring(div, encoding="unicode"), dropped


def _copy_html(src: etree._Element, dst: etree._Element, dropped: list[str]) -> None:
    if src.text:
        _append_text(dst, src.text)
    for child in src:
        if not isinstance(child.tag, str):
            continue
        name = local(child)
        if name == "list":
            tag = "ol" if child.get("listType") == "ordered" else "ul"
        elif name == "caption" and local(src) != "table":
            tag = "b"
        else:
            tag = _TO_HTML.get(name, "")
        if not tag:
            dropped.append(name)
            if child.tail:
                _append_text(dst, child.tail)
            continue
        out = etree.SubElement(dst, f"{{{XHTML}}}{tag}")
        if child.get("ID"):
            out.set("id", child.get("ID"))
        for k, v in child.attrib.items():
            if k in _KEEP_ATTRS:
                out.set(k, v)
        href = child.get("href", "")
        if tag == "a" and href and not href.strip().lower().startswith(("javascript:", "data:", "vbscript:")):
            out.set("href", href)
        styles = [_STYLE[s] for s in (child.get("styleCode") or "").split() if s in _STYLE]
        inner = out
        for s in styles:  # CDA styleCode Bold/Italics/Underline as the XHTML elements
            inner = etree.SubElement(inner, f"{{{XHTML}}}{s}")
        _copy_html(child, inner, dropped)
        out.tail = child.tail


def _append_text(el: etree._Element, text: str) -> None:
    if len(el):
        el[-1].tail = (el[-1].tail or "") + text
    else:
        el.text = (el.text or "") + text


def from_xhtml(div: str) -> tuple[etree._Element, list[str]]:
    """The CDA section `text` for a FHIR div, and the XHTML elements that have no CDA form (kept as text)."""
    dropped: list[str] = []
    text = etree.Element(f"{{{V3}}}text")
    try:
        root = etree.fromstring(div.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True,
                                                                      load_dtd=False, remove_comments=True))
    except etree.XMLSyntaxError:
        text.text = div
        dropped.append("(not well-formed XHTML: written as text)")
        return text, dropped
    _copy_cda(root, text, dropped, True)
    return text, dropped


_HOLDS_BLOCKS = {"text", "item", "td", "th", "footnote"}  # CDA elements that may hold paragraph, list, table


def _copy_cda(src: etree._Element, dst: etree._Element, dropped: list[str], block: bool) -> None:
    if src.text:
        _append_text(dst, src.text)
    for child in src:
        if not isinstance(child.tag, str):
            continue
        name = local(child)
        tag = _FROM_HTML.get(name, "")
        if (name in ("ul", "ol", "table") and not block) or (tag == "paragraph" and (
                not block or any(local(c) in _BLOCK for c in child))) or (not tag and name not in _STYLED
                                                                          and name not in ("ul", "ol")):
            # no CDA form here (a block inside inline content, nested paragraphs, div, img...): its content only
            if not tag and name not in ("div", "dl", "dt", "dd"):
                dropped.append(name)
            _copy_cda(child, dst, dropped, block)
            if child.tail:
                _append_text(dst, child.tail)
            continue
        if name in ("ul", "ol"):
            out = etree.SubElement(dst, f"{{{V3}}}list")
            if name == "ol":
                out.set("listType", "ordered")
        elif name in _STYLED:
            out = etree.SubElement(dst, f"{{{V3}}}content", styleCode=_STYLED[name])
        else:
            out = etree.SubElement(dst, f"{{{V3}}}{tag}")
        if child.get("id"):
            out.set("ID", child.get("id"))
        for k, v in child.attrib.items():
            if k in _KEEP_ATTRS:
                out.set(k, v)
        if name == "a" and child.get("href"):
            out.set("href", child.get("href"))
        inner = out
        if name[:1] == "h" and name[1:].isdigit():
            inner = etree.SubElement(out, f"{{{V3}}}content", styleCode="Bold")
        _copy_cda(child, inner, dropped, local(inner) in _HOLDS_BLOCKS)
        out.tail = child.tail
