"""FHIR JSON → FHIR R4 XML, written through the base StructureDefinitions (http://hl7.org/fhir/R4/xml.html).

The XML format orders elements as the definitions do, so each type's snapshot is compiled once into a table from
JSON property name to (position, XML name, kind): an object's properties are sorted by position and written as
elements. Resources are elements named by their type in the FHIR namespace (declared once, on the root); resources
inside `contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`, ... are wrapped in their holder.
Elements the definitions mark `xmlAttr` (`id` of an element, `Extension.url`) are attributes; a primitive is an
element with a `value` attribute, its JSON `_name` shadow giving its `id` attribute and `extension` children (arrays
of primitives pair items with shadows by index, nulls on either side). Narrative `div` is written as given: an XHTML
fragment declaring its own namespace (checked to be one). Numbers are written as their JSON form: an int as is, a
float as its shortest round-trip form, a `decimal.Decimal` (a JSON parse that keeps decimals as written) exactly.

What XML cannot carry is refused, not dropped: a property no definition names, a null with nothing beside it, an
empty array, a character XML 1.0 has no place for, a div that is not XHTML (XmlWriteError, naming the path).
"""

from __future__ import annotations

import threading
import weakref
from decimal import Decimal
from typing import Any
from xml.parsers import expat

from profiles import patterns
from profiles.definitions import Definitions
from profiles.elements import PRIMITIVES, Node
from profiles.xml import FHIR_NS, XHTML_NS, compiled_type, core_definitions

_PRIMITIVE, _COMPLEX, _RESOURCE, _XHTML = range(4)
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# Characters XML 1.0 cannot hold at all (https://www.w3.org/TR/xml/#charsets), even as references.
_NOT_XML = patterns.character_class("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What an attribute value must escape: markup, and whitespace that attribute-value normalisation would turn into
# spaces (https://www.w3.org/TR/xml/#AVNormalize), so a newline in a string survives the trip.
_ATTR_SPECIAL = patterns.character_class('[&<>"\n\r\t\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_EMPTY = "an empty array: FHIR XML has no form for it (nor does FHIR JSON allow one)"
_XHTML_DIV = XHTML_NS + " div"  # as expat names it with " " between namespace and local name


class XmlWriteError(ValueError):
    """The JSON holds something FHIR XML cannot carry; `path` says where (FHIRPath-like, e.g. Patient.name[0])."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class _Prop:
    __slots__ = ("attr", "kind", "name", "node", "open", "pos", "root", "shadow", "shape", "type")

    def __init__(self, pos: int, name: str, kind: int, type_code: str, attr: bool = False, node: Node | None = None,
                 root: Node | None = None) -> None:
        self.pos, self.name, self.kind, self.type, self.attr = pos, name, kind, type_code, attr
        self.open = "<" + name + ' value="'  # a primitive's element up to its value
        self.shadow = "_" + name  # its JSON shadow property
        self.node, self.root = node, root  # inline (backbone) content: its children are the shape
        self.shape: dict[str, _Prop] | None = None  # resolved on first use


_Shape = dict[str, _Prop]  # JSON property name → how it is written


class _Writer:
    """Shapes compiled from one Definitions, per type and per inline element, on first use."""

    def __init__(self, defs: Definitions) -> None:
        self.sds = defs.types
        self.types: dict[str, _Shape | None] = {}
        self.inline: dict[int, _Shape] = {}
        self.attr_paths: dict[str, frozenset[str]] = {}
        self.lock = threading.Lock()

    # ---- compilation ----
    def type_shape(self, code: str) -> _Shape | None:
        shape = self.types.get(code, False)
        if shape is not False:
            return shape  # type: ignore[return-value]
        with self.lock:
            compiled = compiled_type(self.sds.get(code))
            shape = None
            if compiled is not None:
                root, paths = compiled
                self.attr_paths[root.path] = paths
                shape = self._shape(root.children, root, paths)
            self.types[code] = shape
        return shape

    def _shape(self, kids: dict[str, Node], root: Node, attr_paths: frozenset[str]) -> _Shape:
        shape: _Shape = {}
        for pos, (name, kid) in enumerate(kids.items()):
            if kid.is_choice:
                for t in kid.types:
                    key = kid.base_name + t.code[:1].upper() + t.code[1:]
                    shape[key] = _Prop(pos, key, self._kind(t.code), t.code)
            elif kid.children or kid.content_ref:
                shape[name] = _Prop(pos, name, _COMPLEX, "", False, kid, root)
            else:
                code = kid.types[0].code if kid.types else "string"
                shape[name] = _Prop(pos, name, self._kind(code), code, kid.path in attr_paths)
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
        shape = prop.shape
        if shape is None:
            if prop.node is None:
                shape = self.type_shape(prop.type) or {}
            else:
                node, root = prop.node, prop.root
                assert root is not None
                if node.content_ref:  # "#Questionnaire.item": the shape of that element
                    node = _find(root, node.content_ref.rpartition("#")[2]) or node
                with self.lock:
                    shape = self.inline.get(id(node))
                    if shape is None:
                        shape = self.inline[id(node)] = self._shape(
                            node.children, root, self.attr_paths.get(root.path, frozenset()))
            prop.shape = shape
        return shape

    # ---- writing ----
    # The happy path builds no paths: a _Fault collects them while it unwinds (each level adds its segment).
    def resource(self, res: Any, out: list[str], root: bool = False) -> None:
        if res.__class__ is not dict:
            raise _Fault(f"a resource must be a JSON object, not {_what(res)}")
        rtype = res.get("resourceType")
        if rtype.__class__ is not str or self._kind(rtype) != _RESOURCE or (self.sds.get(rtype) or {}).get("abstract"):
            raise _Fault(f"resourceType {rtype!r} is not a FHIR R4 resource type")
        shape = self.type_shape(rtype)
        if shape is None:
            raise _Fault(f"no definition of {rtype} to order its elements by")
        try:
            self.element(rtype, res, shape, out, ' xmlns="' + FHIR_NS + '"' if root else "", True)
        except _Fault as f:
            f.trail.append(rtype if root else f"({rtype})")
            raise

    def element(self, name: str, obj: Any, shape: _Shape, out: list[str], ns: str = "",
                is_resource: bool = False) -> None:
        """A complex element (or a resource): attributes, then its properties in definition order."""
        if obj.__class__ is not dict:
            raise _Fault(f"expected a JSON object, not {_what(obj)}")
        head = "<" + name + ns
        kids: list[tuple[int, str, _Prop]] = []
        key = ""
        try:
            for key, value in obj.items():
                if key[:1] == "_":
                    base = key[1:]
                    prop = shape.get(base)
                    if prop is None or prop.kind != _PRIMITIVE or prop.attr:  # only a primitive element has a shadow
                        raise _Fault(f"unknown property {key!r}: FHIR XML has no place for it")
                    if base not in obj:
                        kids.append((prop.pos, base, prop))
                    continue  # else written with its value
                base = key
                prop = shape.get(base)
                if prop is None:
                    if is_resource and key == "resourceType":
                        continue  # the element's name says it
                    raise _Fault(f"unknown property {key!r}: FHIR XML has no place for it")
                if prop.attr:
                    if value.__class__ is not str:
                        raise _Fault(f"must be a string, not {_what(value)}")
                    head += " " + base + '="' + _attr(value) + '"'
                else:
                    kids.append((prop.pos, base, prop))
            if not kids:
                out.append(head + "/>")
                return
            out.append(head + ">")
            if len(kids) > 1:
                kids.sort()
            special = _ATTR_SPECIAL.search
            for _, key, prop in kids:
                if prop.kind == _PRIMITIVE and prop.shadow not in obj:  # the usual case, inline: one plain value
                    value = obj[key]
                    cls = value.__class__
                    if cls is str:
                        if special(value) is None:
                            out.append(prop.open + value + '"/>')
                            continue
                    elif cls is bool:
                        out.append(prop.open + ("true" if value else "false") + '"/>')
                        continue
                    elif cls is int:
                        out.append(prop.open + str(value) + '"/>')
                        continue
                self.prop(key, prop, obj, out)
        except _Fault as f:
            f.trail.append("." + key.removeprefix("_"))
            raise
        out.append("</" + name + ">")

    def prop(self, key: str, prop: _Prop, obj: dict[str, Any], out: list[str]) -> None:
        value = obj.get(key)
        kind = prop.kind
        i = 0
        if kind == _PRIMITIVE:
            shadow = obj.get("_" + key)
            if value.__class__ is not list and shadow.__class__ is not list:
                self.primitive(key, value, shadow, out)
                return
            if value == [] or shadow == []:
                raise _Fault(_EMPTY)
            values = value if value.__class__ is list else [value] if value is not None else []
            shadows = shadow if shadow.__class__ is list else [shadow] if shadow is not None else []
            if values and shadows and len(values) != len(shadows):
                raise _Fault(f"{key} and _{key} have different lengths ({len(values)}, {len(shadows)})")
            try:
                for i in range(max(len(values), len(shadows))):
                    self.primitive(key, values[i] if values else None, shadows[i] if shadows else None, out)
            except _Fault as f:
                f.trail.append(f"[{i}]")
                raise
            return
        many = value.__class__ is list
        if many and not value:
            raise _Fault(_EMPTY)
        try:
            for i, item in enumerate(value if many else (value,)):  # noqa: B007 - i: for the except clause
                if kind == _COMPLEX:
                    self.element(key, item, prop.shape or self.prop_shape(prop), out)
                elif kind == _RESOURCE:
                    out.append("<" + key + ">")
                    self.resource(item, out)
                    out.append("</" + key + ">")
                else:
                    out.append(_div(item))
        except _Fault as f:
            if many:
                f.trail.append(f"[{i}]")
            raise

    def primitive(self, name: str, value: Any, shadow: Any, out: list[str]) -> None:
        head = "<" + name
        exts = None
        if shadow is not None:
            if shadow.__class__ is not dict:
                raise _Fault(f"_{name} must be a JSON object, not {_what(shadow)}")
            for k, v in shadow.items():
                if k == "id":
                    if v.__class__ is not str:
                        raise _Fault(f"must be a string, not {_what(v)}", ".id")
                    head += ' id="' + _attr(v) + '"'
                elif k == "extension":
                    if v.__class__ is not list or not v:
                        raise _Fault(_EMPTY if v == [] else f"must be an array, not {_what(v)}", ".extension")
                    exts = v
                else:
                    raise _Fault(f"_{name} holds {k!r}: a primitive's JSON shadow holds only id and extension",
                                 "." + k)
        elif value is None:
            raise _Fault("null with no id or extension beside it")
        if value is not None:
            head += ' value="' + _lexical(value) + '"'
        if not exts:
            out.append(head + "/>")
            return
        out.append(head + ">")
        ext_shape = self.type_shape("Extension") or {}
        i = 0
        try:
            for i, ext in enumerate(exts):  # noqa: B007 - i: for the except clause
                self.element("extension", ext, ext_shape, out)
        except _Fault as f:
            f.trail.extend((f"[{i}]", ".extension"))
            raise
        out.append("</" + name + ">")


class _Fault(Exception):
    """What cannot be written, on its way up: `trail` gathers the path's segments, innermost first."""

    def __init__(self, reason: str, *segments: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.trail = list(reversed(segments))


def _find(root: Node, path: str) -> Node | None:
    parts = path.split(".")
    if parts[0] != root.path.split(".")[0]:
        return None
    node: Node | None = root
    for part in parts[1:]:
        node = node.children.get(part) if node is not None else None
    return node


def _what(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _attr(s: str) -> str:
    """`s` escaped for a double-quoted attribute value."""
    if _ATTR_SPECIAL.search(s) is None:
        return s
    bad = _NOT_XML.search(s)
    if bad is not None:
        raise _Fault(f"character U+{ord(bad.group()):04X} cannot be written in XML 1.0")
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


def _lexical(value: Any) -> str:
    """A primitive's `value` attribute: the JSON value's lexical form (http://hl7.org/fhir/R4/json.html#primitive)."""
    cls = value.__class__
    if cls is str:
        return _attr(value)
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise _Fault(f"{value} is not a FHIR decimal")
        return repr(value)  # the shortest form that reads back as the same float
    if cls is Decimal:
        if not value.is_finite():
            raise _Fault(f"{value} is not a FHIR decimal")
        return str(value)  # as written in the JSON it was parsed from (1.50 stays 1.50)
    raise _Fault(f"a primitive value cannot be {_what(value)}")


def _div(value: Any) -> str:
    """Narrative.div as written: one XHTML `div` element that declares its namespace itself (R4 json.html: the JSON
    form carries it), well-formed, or the document written around it would not be. Nothing may precede the div, so
    no DOCTYPE (and no entity declaration) can reach the parser: only XML's own entities are known."""
    if value.__class__ is not str:
        raise _Fault(f"the narrative must be an XHTML string, not {_what(value)}")
    if not value.startswith("<div"):
        raise _Fault("the narrative must be its XHTML div element, with nothing before it")
    parser = expat.ParserCreate("UTF-8", " ")
    roots: list[str] = []

    def start(name: str, attrs: Any) -> None:
        roots.append(name)
        parser.StartElementHandler = None  # only the root's name matters

    parser.StartElementHandler = start
    try:
        parser.Parse(value.encode("utf-8"), True)
    except expat.ExpatError as e:
        raise _Fault(f"the narrative is not well-formed XHTML: {expat.errors.messages[e.code]} at line {e.lineno}, "
                     f"column {e.offset + 1}") from None
    except UnicodeEncodeError as e:
        raise _Fault(f"character U+{ord(value[e.start]):04X} cannot be written in XML") from None
    if roots[0] != _XHTML_DIV:
        raise _Fault(f"the narrative's root element is {roots[0].replace(' ', ':')!r}, not an XHTML div "
                     f'(xmlns="{XHTML_NS}")')
    return value


_writers: weakref.WeakKeyDictionary[Definitions, _Writer] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _writer(defs: Definitions) -> _Writer:
    w = _writers.get(defs)
    if w is None:
        with _lock:
            w = _writers.get(defs)
            if w is None:
                w = _writers[defs] = _Writer(defs)
    return w


def json_to_xml(resource: dict[str, Any], defs: Definitions | None = None, *, declaration: bool = True) -> bytes:
    """A FHIR JSON resource (a dict, as parsed) as FHIR R4 XML, UTF-8. `defs` supplies the base definitions (None:
    the installed R4 core). Raises XmlWriteError for content FHIR XML cannot carry, PackageError when the core
    definitions are needed and not installed."""
    w = _writer(defs if defs is not None else core_definitions())
    out: list[str] = [_DECLARATION] if declaration else []
    try:
        w.resource(resource, out, root=True)
    except _Fault as f:
        raise XmlWriteError(f.reason, "".join(reversed(f.trail))) from None
    except RecursionError:
        raise XmlWriteError("nested too deeply to write", str(resource.get("resourceType"))) from None
    return "".join(out).encode("utf-8")  # every string was checked for characters XML (and so UTF-8) cannot hold
