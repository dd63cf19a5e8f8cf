"""FHIR R4 XML → the FHIR JSON representation, read through the base StructureDefinitions.

The XML format says nothing about arrays or JSON types, so each element is looked up in its type's compiled
snapshot: repeating elements become arrays (also with one item), primitive `value` attributes become JSON booleans,
numbers or strings by type, primitive `id`/`extension` go to the `_name` shadow property (aligned with nulls in
arrays), resources inside `contained`/`Bundle.entry.resource`/... are unwrapped, and Narrative `div` becomes an
XHTML string (https://hl7.org/fhir/R4/xml.html, https://hl7.org/fhir/R4/json.html): the div's own text as the input
holds it (UTF-8 input whose div declares the XHTML namespace itself, as FHIR XML writes it), so XML written from JSON
reads back to the same string; otherwise the XHTML is written back from its parsed elements.

Nothing in the input is dropped silently except comments (JSON has none) and `xsi:` attributes: an unknown element
is kept under its name (`{namespace}name` outside the FHIR namespace), an unknown attribute under `@name`, stray
text under `#text`, and an element that must not repeat but does becomes an array, so the validator reports each of
them. XML order carries no meaning in JSON and is not kept.

Parsing is defused: DOCTYPE (and with it every entity declaration) and external references are refused.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Comment, Element, ParseError, TreeBuilder

import re2
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from profiles import patterns
from profiles.definitions import Definitions
from profiles.elements import PRIMITIVES, Node, compile_snapshot

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_NS = "http://www.w3.org/XML/1998/namespace"
CORE_PACKAGE = "hl7.fhir.r4.core#4.0.1"

_F = "{" + FHIR_NS + "}"
_XSI = "{" + XSI_NS + "}"
_DIV = "{" + XHTML_NS + "}div"
_F_LEN = len(_F)
_TEXT = _F + "text"  # DomainResource.text: the Narrative whose div is taken as written
_VERBATIM = "{urn:helixgate}verbatim"  # marks a div element whose `text` is its XHTML exactly as the input wrote it
# RE2 (linear time) on the input; each is matched on a bounded slice: a start tag, an end tag, the XML declaration
_OWN_XHTML = re2.compile(rb"""<div\b[^>]*?\sxmlns\s*=\s*["']http://www\.w3\.org/1999/xhtml["']""")
_END_DIV = re2.compile(rb"</div\s*>")
_DECLARED = re2.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_TAG_BOUND = 65536  # a start tag longer than this is not taken verbatim: its div is rebuilt (still correct)
_INTEGER = patterns.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL = patterns.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_POSITION = patterns.compile(r": line \d+, column \d+$")  # expat's, said again in our own words
# HTML void elements: written `<br/>`; every other empty element as `<p></p>`, which HTML parsers also read right.
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})
_PREFIXES = {XML_NS: "xml", "http://www.w3.org/1999/xlink": "xlink"}

# How a property's value is read.
_PRIMITIVE, _COMPLEX, _RESOURCE, _XHTML = range(4)



def compiled_type(sd: dict[str, Any] | None) -> tuple[Node, frozenset[str]] | None:
    """A complex type's or resource's snapshot compiled, with the paths R4 writes as XML attributes
    (`representation: xmlAttr`); None for a primitive, an unknown type or a snapshot that cannot be compiled.
    The reader and the writer both shape their element walks from it."""
    if sd is None or sd.get("kind") == "primitive-type":
        return None
    try:
        root = compile_snapshot(sd)
    except ValueError:
        return None
    return root, frozenset(el["path"] for el in sd["snapshot"]["element"]
                           if "xmlAttr" in (el.get("representation") or ()))

class XmlError(ValueError):
    """The bytes are not well-formed (or not allowed) XML, or not a FHIR resource; the message says where, and
    `line` and `column` (1-based) too when the parser knows."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line, self.column = line, column


@dataclass(slots=True)
class _Shape:
    """The XML names one complex element may hold: child elements and attributes."""

    elements: dict[str, _Prop] = field(default_factory=dict)
    attrs: dict[str, _Prop] = field(default_factory=dict)


@dataclass(slots=True)
class _Prop:
    json: str  # property name in JSON (for a choice: valueQuantity)
    kind: int
    type: str  # type code; "" for inline (backbone) content
    repeats: bool
    node: Node | None = None  # inline content: its children are the shape
    root: Node | None = None  # the type's root, to resolve a contentReference
    shape: _Shape | None = None  # resolved on first use


_EMPTY = _Shape()
_PRIMITIVE_ATTRS = frozenset({"id"})  # the shadow object's own property that XML holds as an attribute


class _Reader:
    """Shapes compiled from one Definitions, per type and per inline element, on first use."""

    def __init__(self, defs: Definitions) -> None:
        self.sds = defs.types  # not `defs` itself: the cache is weakly keyed by it
        self.types: dict[str, _Shape | None] = {}
        self.inline: dict[int, _Shape] = {}
        self.attr_paths: dict[str, frozenset[str]] = {}  # per type: the elements XML writes as attributes

    # ---- compilation ----
    def type_shape(self, type_code: str) -> _Shape | None:
        if type_code not in self.types:
            compiled = compiled_type(self.sds.get(type_code))
            shape = None
            if compiled is not None:
                root, paths = compiled
                self.attr_paths[root.path] = paths
                shape = self._shape(root.children, root, paths)
            self.types[type_code] = shape
        return self.types[type_code]

    def _shape(self, kids: dict[str, Node], root: Node, attr_paths: frozenset[str]) -> _Shape:
        shape = _Shape()
        for name, kid in kids.items():
            if kid.is_choice:
                for t in kid.types:
                    xml_name = kid.base_name + t.code[:1].upper() + t.code[1:]
                    shape.elements[xml_name] = _Prop(xml_name, self._kind(t.code), t.code, kid.repeats)
                continue
            if kid.children or kid.content_ref:
                prop = _Prop(name, _COMPLEX, "", kid.repeats, kid, root)
            else:
                code = kid.types[0].code if kid.types else "string"
                prop = _Prop(name, self._kind(code), code, kid.repeats)
            (shape.attrs if kid.path in attr_paths else shape.elements)[name] = prop
        return shape

    def _kind(self, code: str) -> int:
        if code == "xhtml":
            return _XHTML
        if code in PRIMITIVES or code.startswith("System."):
            return _PRIMITIVE
        if code == "Resource" or (self.sds.get(code) or {}).get("kind") == "resource":
            return _RESOURCE
        return _COMPLEX

    def prop_shape(self, prop: _Prop) -> _Shape:
        if prop.shape is None:
            if prop.node is None:
                prop.shape = self.type_shape(prop.type) or _EMPTY
            else:
                node, root = prop.node, prop.root
                assert root is not None
                if node.content_ref:  # "#Questionnaire.item" (or "url#path"): the shape of that element
                    node = _find(root, node.content_ref.rpartition("#")[2]) or node
                key = id(node)
                if key not in self.inline:
                    self.inline[key] = self._shape(node.children, root, self.attr_paths.get(root.path, frozenset()))
                prop.shape = self.inline[key]
        return prop.shape

    # ---- conversion ----
    def resource(self, el: Element) -> dict[str, Any]:
        tag = el.tag
        rtype = tag[_F_LEN:] if tag.startswith(_F) else tag
        shape = self.type_shape(rtype) if tag.startswith(_F) and self._kind(rtype) == _RESOURCE else None
        content = self.complex(el, shape or _EMPTY, is_resource=True)
        if "resourceType" in content:  # an element of that name: must not pass for the JSON property
            content["f:resourceType"] = content.pop("resourceType")
        return {"resourceType": rtype, **content}

    def complex(self, el: Element, shape: _Shape, is_resource: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if el.attrib:
            for key, value in el.attrib.items():
                prop = None if is_resource else shape.attrs.get(key)
                if prop is not None:
                    out[prop.json] = _primitive_value(prop.type, value)
                elif not key.startswith(_XSI):
                    out["@" + key] = value  # reported by the validator as an unrecognized property
        elements = shape.elements
        groups: dict[str, list[Element]] = {}  # by tag, in order of first appearance
        head = el.text
        text = bool(head and not head.isspace())
        for child in el:
            tail = child.tail
            if tail and not text and not tail.isspace():
                text = True
            tag = child.tag
            if tag.__class__ is not str:
                continue  # comment or processing instruction
            if tag == _DIV and "div" in elements:  # Narrative.div is in the XHTML namespace
                tag = _F + "div"
            items = groups.get(tag)
            if items is None:
                groups[tag] = [child]
            else:
                items.append(child)
        for tag, items in groups.items():
            fhir = tag.startswith(_F)
            name = tag[_F_LEN:] if fhir else tag
            prop = elements.get(name) if fhir else None
            if prop is None:  # not FHIR, or not defined here: unknown whatever its local name
                values = [_generic(i) for i in items]
                out[_unknown_key(name, shape.attrs)] = values[0] if len(values) == 1 else values
                continue
            many = prop.repeats or len(items) > 1  # a single-valued element given twice: an array, so it is reported
            kind = prop.kind
            if kind == _PRIMITIVE:
                key, typ = prop.json, prop.type
                if not many:
                    value, shadow = self.primitive(items[0], typ)
                    if value is not None:
                        out[key] = value
                    if shadow is not None:
                        out["_" + key] = shadow
                    continue
                pairs = [self.primitive(i, typ) for i in items]
                if any(v is not None for v, _ in pairs):
                    out[key] = [v for v, _ in pairs]
                if any(s is not None for _, s in pairs):
                    out["_" + key] = [s for _, s in pairs]
                continue
            if kind == _COMPLEX:
                sub = prop.shape or self.prop_shape(prop)
                values = [self.complex(i, sub) for i in items]
            elif kind == _RESOURCE:
                values = [self.holder(i) for i in items]
            else:
                values = [xhtml(i) for i in items]
            out[prop.json] = values if many else values[0]
        if text:
            out["#text"] = _text(el)
        return out

    def primitive(self, el: Element, type_code: str) -> tuple[Any, dict[str, Any] | None]:
        """(value, shadow): the JSON value and the `_name` object with id/extension (None when absent)."""
        attrib = el.attrib
        if len(attrib) == 1 and "value" in attrib and not len(el) and (not el.text or el.text.isspace()):
            return _primitive_value(type_code, attrib["value"]), None  # the usual case, quickly
        value: Any = None
        shadow: dict[str, Any] = {}
        for key, raw in el.attrib.items():
            if key == "value":
                value = _primitive_value(type_code, raw)
            elif key == "id":
                shadow["id"] = raw
            elif not key.startswith(_XSI):
                shadow["@" + key] = raw
        if len(el):
            extension = self.type_shape("Extension") or _EMPTY
            extras: dict[str, list[Any]] = {}
            for child in el:
                tag = child.tag
                if not isinstance(tag, str):
                    continue
                if tag == _F + "extension":
                    shadow.setdefault("extension", []).append(self.complex(child, extension))
                else:
                    extras.setdefault(tag[_F_LEN:] if tag.startswith(_F) else tag, []).append(_generic(child))
            for name, values in extras.items():
                shadow[_unknown_key(name, _PRIMITIVE_ATTRS)] = values[0] if len(values) == 1 else values
        if _has_text(el):
            shadow["#text"] = _text(el)
        if value is None or shadow:
            return value, shadow  # an element with nothing at all stays visible as `_name: {}`
        return value, None

    def holder(self, el: Element) -> dict[str, Any]:
        """An element of type Resource: it holds one element named by the resource type."""
        kids = [c for c in el if isinstance(c.tag, str)]
        out: dict[str, Any] = self.resource(kids[0]) if kids else {}
        for extra in kids[1:]:  # more than one resource: kept, so the validator reports them
            tag = extra.tag
            out.setdefault(tag[_F_LEN:] if tag.startswith(_F) else tag, self.resource(extra))
        for key, value in el.attrib.items():
            if not key.startswith(_XSI):
                out["@" + key] = value
        return out


def _unknown_key(name: str, attrs: Collection[str]) -> str:
    """The JSON key for an element no definition describes: its name, unless that would pass for a known property
    (`<url value=".."/>` for Extension's url attribute) or a shadow (`_name`)."""
    return "f:" + name if name in attrs or name.startswith("_") else name


def _find(root: Node, path: str) -> Node | None:
    parts = path.split(".")
    if parts[0] != root.path.split(".")[0]:
        return None
    node: Node | None = root
    for part in parts[1:]:
        node = node.children.get(part) if node is not None else None
    return node


def _boolean(raw: str) -> Any:
    return True if raw == "true" else False if raw == "false" else raw


def _integer(raw: str) -> Any:
    return int(raw) if _INTEGER.full(raw) and len(raw) <= _DIGITS else raw


# Python reads integers of up to 4300 digits from text (sys.get_int_max_str_digits); FHIR's largest, integer64, has
# 19. Longer digit strings stay text, which the validator reports as not a JSON number.
_DIGITS = 4000


def _decimal(raw: str) -> Any:
    """An int when written without fraction or exponent, else a float (JSON has one number type, so this is
    what a JSON parser gives for the same lexical form)."""
    if not _DECIMAL.full(raw) or len(raw) > _DIGITS:
        return raw
    if _INTEGER.full(raw):
        return int(raw)
    number = float(raw)
    return number if number not in (math.inf, -math.inf) else raw


# Primitive types that JSON does not carry as strings (integer64 is a string in JSON, like the rest).
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "boolean": _boolean, "integer": _integer, "positiveInt": _integer, "unsignedInt": _integer, "decimal": _decimal,
}


def _primitive_value(type_code: str, raw: str) -> Any:
    """The JSON value of a primitive's lexical form; kept a string when it is not valid for the type, so the
    validator reports it instead of this reader guessing."""
    convert = _CONVERTERS.get(type_code)
    return raw if convert is None else convert(raw)


def _has_text(el: Element) -> bool:
    if el.text and not el.text.isspace():
        return True
    return any(c.tail and not c.tail.isspace() for c in el)


def _text(el: Element) -> str:
    return "".join([el.text or "", *(c.tail or "" for c in el)]).strip()


def _generic(el: Element) -> Any:
    """An element no definition describes: its `value`, or its attributes and children by name."""
    if _VERBATIM in el.attrib:
        return el.text
    tag_kids = [c for c in el if isinstance(c.tag, str)]
    if not tag_kids and list(el.attrib) == ["value"] and not _has_text(el):
        return el.attrib["value"]
    out: dict[str, Any] = dict(el.attrib)
    for child in tag_kids:
        tag = child.tag
        name = tag[_F_LEN:] if tag.startswith(_F) else tag
        value = _generic(child)
        if name in out:
            prev = out[name]
            out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[name] = value
    if _has_text(el):
        out["#text"] = _text(el)
    return out


# ---- XHTML ----
def _escape_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(s: str) -> str:
    return (_escape_text(s).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;")
            .replace("\t", "&#9;"))


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def xhtml(el: Element) -> str:
    """The element (Narrative.div) as XHTML: as the input wrote it when the parser kept that, else written back from
    its parsed elements, declaring its namespace on the root."""
    if _VERBATIM in el.attrib:
        return el.text or ""
    parts: list[str] = []
    _write(el, None, parts)
    return "".join(parts)


def _write(el: Element, parent_ns: str | None, out: list[str]) -> None:
    tag = el.tag
    if not isinstance(tag, str):
        if tag is Comment:
            out.append(f"<!--{el.text or ''}-->")
        if el.tail:
            out.append(_escape_text(el.tail))
        return
    ns, local = _split(tag)
    out.append("<" + local)
    if ns != parent_ns:
        out.append(f' xmlns="{_escape_attr(ns)}"')
    declared: dict[str, str] = {}
    for key, value in el.attrib.items():
        ans, alocal = _split(key)
        if ans:
            prefix = _PREFIXES.get(ans) or declared.get(ans) or f"ns{len(declared)}"
            if ans != XML_NS and ans not in declared:
                declared[ans] = prefix
                out.append(f' xmlns:{prefix}="{_escape_attr(ans)}"')
            alocal = f"{prefix}:{alocal}"
        out.append(f' {alocal}="{_escape_attr(value)}"')
    if not len(el) and not el.text and local in _VOID:
        out.append("/>")
    else:
        out.append(">")
        if el.text:
            out.append(_escape_text(el.text))
        for child in el:
            _write(child, ns, out)
        out.append(f"</{local}>")
    if el.tail and parent_ns is not None:
        out.append(_escape_text(el.tail))


# ---- parsing ----
def parse(data: bytes | str) -> Element:
    """The document's root element. Raises XmlError (with line and column) for malformed XML, a DOCTYPE (and so
    any entity declaration) or an external reference."""
    target = _Target(data)
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    target.expat = parser.parser
    try:
        parser.feed(data)
        return parser.close()
    except ParseError as e:
        line, column = e.position
        reason = _POSITION.sub("", str(e))
        raise XmlError(f"{reason} at line {line}, column {column + 1}", line, column + 1) from None
    except DefusedXmlException as e:
        expat = parser.parser
        what = type(e).__name__.removesuffix("Forbidden")
        raise XmlError(f"{what} is not allowed (at line {expat.CurrentLineNumber}, column "
                       f"{expat.CurrentColumnNumber + 1}): FHIR XML has no DOCTYPE or entity declarations",
                       expat.CurrentLineNumber, expat.CurrentColumnNumber + 1) from None
    except (LookupError, ValueError) as e:  # an encoding expat does not know, or a multi-byte one it cannot read
        raise XmlError(f"the declared encoding cannot be read ({e}); FHIR XML is UTF-8") from None


class _Target:
    """The tree builder's target, except inside a Narrative div that can be taken as written: its elements are not
    built, and at its end the div holds the input's bytes from `<div` to `</div>` (decoded), marked _VERBATIM.

    Taken as written only when the bytes are the document's text: UTF-8 input, the div in `text` declaring the XHTML
    namespace on itself, and no prefix declared before it (an ancestor's `xmlns:x` would be missing from the copy);
    anything else is built and written back (xhtml)."""

    def __init__(self, data: bytes | str) -> None:
        self.builder = TreeBuilder(insert_comments=True)
        self.expat: Any = None
        self.raw = data if isinstance(data, bytes) and _utf8(data) else None
        self.prefixes = self.raw.find(b"xmlns:") if self.raw is not None else -1  # the first prefix declaration
        self.tags: list[str] = []
        self.depth = 0  # > 0: inside a div taken as written
        self.begin = 0

    def start(self, tag: str, attrib: dict[str, str]) -> Element:
        if self.depth:
            self.depth += 1
            return None  # type: ignore[return-value]
        if tag == _DIV and self.raw is not None and self.tags and self.tags[-1] == _TEXT:
            begin = self.expat.CurrentByteIndex
            if (self.prefixes < 0 or self.prefixes > begin) and _OWN_XHTML.match(self.raw[begin:begin + _TAG_BOUND]):
                self.depth, self.begin = 1, begin
        self.tags.append(tag)
        return self.builder.start(tag, attrib)

    def end(self, tag: str) -> Element:
        if self.depth > 1:
            self.depth -= 1
            return None  # type: ignore[return-value]
        self.tags.pop()
        el = self.builder.end(tag)
        if self.depth:  # the div taken as written ends
            self.depth = 0
            assert self.raw is not None
            # expat's position: at `</div>` for an end tag; just past `<div .../>` for an empty element (whose
            # parent, `text`, cannot be closed by `</div`)
            stop = self.expat.CurrentByteIndex
            closing = _END_DIV.match(self.raw[stop:stop + 256])
            el.attrib.clear()
            el.attrib[_VERBATIM] = ""
            el.text = self.raw[self.begin:stop + closing.end() if closing else stop].decode("utf-8")
        return el

    def data(self, text: str) -> None:
        if not self.depth:
            self.builder.data(text)

    def comment(self, text: str) -> Element:
        return None if self.depth else self.builder.comment(text)  # type: ignore[return-value]

    def pi(self, target: str, text: str | None = None) -> Element:
        return None if self.depth else self.builder.pi(target, text)  # type: ignore[return-value]

    def close(self) -> Element:
        return self.builder.close()


def _utf8(data: bytes) -> bool:
    """Whether the bytes are UTF-8 as XML reads them: no other encoding declared, no UTF-16 byte order mark."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return False
    declared = _DECLARED.match(data[:_TAG_BOUND].removeprefix(b"\xef\xbb\xbf"))
    return declared is None or declared.group(1).lower() in (b"utf-8", b"utf8")


_readers: weakref.WeakKeyDictionary[Definitions, _Reader] = weakref.WeakKeyDictionary()
_core: Definitions | None = None
_lock = threading.Lock()


def core_definitions() -> Definitions:
    """The R4 core StructureDefinitions from the installed package, read once per process. Raises PackageError
    (saying how to install it) when the package is not installed."""
    global _core
    with _lock:
        if _core is None:
            from profiles.deferred import package_entries  # only when no definitions are given
            from profiles.packages import closure

            _core = Definitions(label=CORE_PACKAGE)
            _core.defer(package_entries(closure([CORE_PACKAGE]), ("StructureDefinition",)))  # read as used
        return _core


def _reader(defs: Definitions) -> _Reader:
    reader = _readers.get(defs)
    if reader is None:
        with _lock:
            reader = _readers.get(defs)
            if reader is None:
                reader = _readers[defs] = _Reader(defs)
    return reader


def xml_to_json(data: bytes, defs: Definitions | None) -> dict[str, Any]:
    """A FHIR R4 XML resource as FHIR JSON (a dict). `defs` supplies the base definitions (None: the installed
    R4 core). Raises XmlError for malformed or refused XML and for a root element outside the FHIR namespace."""
    root = parse(data)
    if not root.tag.startswith(_F):
        ns, local = _split(root.tag)
        raise XmlError(f"the root element <{local}> is in namespace {ns or '(none)'!r}, not {FHIR_NS!r}: "
                       "not a FHIR resource")
    reader = _reader(defs if defs is not None else core_definitions())
    try:
        return reader.resource(root)
    except RecursionError:  # the parser takes any depth; the conversion recurses per level
        raise XmlError("the XML is nested too deeply to be a FHIR resource") from None

