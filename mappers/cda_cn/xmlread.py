"""Reading CDA R2 elements as the China mapper needs them: placeholders ('NA') and nullFlavors are absent, and
every element whose content is kept is marked used (mappers.cda_cn.coverage), so what is left can be reported."""

from __future__ import annotations

from lxml import etree

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes
from mappers.cda_cn.coverage import ABSENT, use, use_tree
from mappers.cda_cn.model import Code, Id
from mappers.cda_cn.xpath import local
from mappers.cda_cn.xpath import path as xpath_of

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
CODED = ("CD", "CE", "CV", "CO")


def kids(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in el if local(c) == name]


def kid(el: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if local(c) == name), None)
    return el


def val(s: str | None) -> str:
    s = (s or "").strip()
    return "" if s in ABSENT else s


def attr(el: etree._Element | None, name: str) -> str:
    if el is None or el.get("nullFlavor"):
        return ""
    return val(el.get(name))


def used_attr(el: etree._Element | None, name: str) -> str:
    """An attribute the reader keeps: its element counts as used when it has the value."""
    value = attr(el, name)
    if value:
        use(el)
    return value


def text_of(el: etree._Element | None) -> str:
    if el is None or el.get("nullFlavor"):
        return ""
    value = val("".join(el.itertext()))
    if value:
        use_tree(el)
    return value


def ii(el: etree._Element | None) -> Id | None:
    root, ext = attr(el, "root"), attr(el, "extension")
    if root and ext:
        use(el)
        return Id(root, ext)
    return None


def ids_of(el: etree._Element | None) -> tuple[Id, ...]:
    return tuple(i for c in kids(el, "id") if (i := ii(c)))


def cd(el: etree._Element | None) -> Code | None:
    code = attr(el, "code")
    if not code:
        return None
    use(el)
    return Code(code, attr(el, "codeSystem"), attr(el, "displayName"), attr(el, "codeSystemName"))


def ts_of(el: etree._Element | None) -> str:
    return used_attr(el, "value")


def de_code(obs: etree._Element) -> str:
    """The observation's data-element code; reading it identifies the entry, so its code element counts as used."""
    code = kid(obs, "code")
    if code is None or attr(code, "codeSystem") not in ("", S.OID_DE) or not attr(code, "code").startswith("DE"):
        return ""
    use(code)
    return attr(code, "code")


def value_of(obs: etree._Element) -> tuple[str, etree._Element | None]:
    """(xsi:type without prefix, the value element)."""
    v = kid(obs, "value")
    if v is None:
        return "", None
    return (v.get(XSI_TYPE) or "").split(":")[-1], v


def st(obs: etree._Element) -> str:
    """The observation's value as text (display or code of a coded value, @value of a number or time)."""
    kind, v = value_of(obs)
    if v is None:
        return ""
    if kind in CODED:
        return used_attr(v, "displayName") or used_attr(v, "code")
    if kind in ("REAL", "INT", "PQ", "TS", "BL"):
        return used_attr(v, "value")
    return text_of(v)


def nested(obs: etree._Element) -> list[etree._Element]:
    return [o for er in kids(obs, "entryRelationship") for o in kids(er, "observation")]


def not_mapped(notes: Notes, el: etree._Element, what: str) -> None:
    """Report one entry by name; its elements are then accounted for (not listed again by path)."""
    notes.inform("cda-entry-not-mapped", f"{what} was not mapped (line {el.sourceline})", xpath_of(el))
    use_tree(el)


# Item slots: the data elements one result item is made of (national-formats.md §1.5, §2).
