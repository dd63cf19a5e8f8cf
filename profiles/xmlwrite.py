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

What XML cannot carry is refused, not dropped: a property no definition names, a null with nothing beside it, a
character XML 1.0 has no place for, a div that is not XHTML (XmlWriteError, naming the path).
"""

from __future__ import annotations

import re
import threading
import weakref
from decimal import Decimal
from typing import Any

from profiles.definitions import Definitions
from profiles.elements import PRIMITIVES, Node, compile_snapshot
from profiles.xml import FHIR_NS, XHTML_NS, XmlError, core_definitions, parse

_PRIMITIVE, _COMPLEX, _RESOURCE, _XHTML = range(4)
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# Characters XML 1.0 cannot hold at all (https://www.w3.org/TR/xml/#charsets), even as references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What an attribute value must escape: markup, and whitespace that attribute-value normalisation would turn into
# spaces (https://www.w3.org/TR/xml/#AVNormalize), so a newline in a string survives the trip.
_ATTR_SPECIAL = re.compile('[&<>"\n\r\t\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_XHTML_DIV = "{" + XHTML_NS + "}div"


class XmlWriteError(ValueError):
    """The JSON holds something FHIR XML cannot carry; `path` says where (FHIRPath-like, e.g. Patient.name[0])."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class _Prop:
    __slots__ = ("attr", "kind", "name", "node", "pos", "root", "shape", "type")

    def __init__(self, pos: int, name: str, kind: int, type_code: str, attr: bool = False, node: Node | None = None,
                 root: Node | None = None) -> None:
        self.pos, self.name, self.kind, self.type, self.attr = pos, name, kind, type_code, attr
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
            sd = self.sds.get(code)
            shape = None
            if sd is not None and sd.get("kind") != "primitive-type":
                try:
                    root = compile_snapshot(sd)
                except ValueError:
                    root = None
                if root is not None:
                    paths = frozenset(el["path"] for el in sd["snapshot"]["element"]
                                      if "xmlAttr" in (el.get("representation") or ()))
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
    def resource(self, res: Any, out: list[str], path: str, root: bool = False) -> None:
        if not isinstance(res, dict):
            raise XmlWriteError(f"a resource must be a JSON object, not {_what(res)}", path)
        rtype = res.get("resourceType")
        if not isinstance(rtype, str) or self._kind(rtype) != _RESOURCE:
            raise XmlWriteError(f"resourceType {rtype!r} is not a FHIR R4 resource type", path)
        shape = self.type_shape(rtype)
        if shape is None:
            raise XmlWriteError(f"no definition of {rtype} to order its elements by", path)
        here = rtype if root else f"{path}({rtype})"
        self.element(rtype, res, shape, out, here, ' xmlns="' + FHIR_NS + '"' if root else "", True)

    def element(self, name: str, obj: Any, shape: _Shape, out: list[str], path: str, ns: str = "",
                is_resource: bool = False) -> None:
        """A complex element (or a resource): attributes, then its properties in definition order."""
        if obj.__class__ is not dict:
            raise XmlWriteError(f"expected a JSON object, not {_what(obj)}", path)
        head = "<" + name + ns
        kids: list[tuple[int, str, _Prop]] = []
        for key, value in obj.items():
            if key[0] == "_":
                base = key[1:]
                if base in obj:
                    continue  # written with its value
            else:
                base = key
            prop = shape.get(base)
            if prop is None:
                if is_resource and key == "resourceType":
                    continue  # the element's name says it
                raise XmlWriteError(f"unknown property {key!r}: FHIR XML has no place for it", f"{path}.{key}")
            if prop.attr:
                if value.__class__ is not str:
                    raise XmlWriteError(f"must be a string, not {_what(value)}", f"{path}.{key}")
                head += f' {base}="{_attr(value, path)}"'
            else:
                kids.append((prop.pos, base, prop))
        if not kids:
            out.append(head + "/>")
            return
        out.append(head + ">")
        if len(kids) > 1:
            kids.sort()
        for _, key, prop in kids:
            self.prop(key, prop, obj, out, path)
        out.append("</" + name + ">")

    def prop(self, key: str, prop: _Prop, obj: dict[str, Any], out: list[str], path: str) -> None:
        value = obj.get(key)
        kind = prop.kind
        if kind == _PRIMITIVE:
            shadow = obj.get("_" + key)
            if value.__class__ is list or shadow.__class__ is list:
                values = value if value.__class__ is list else [value] if value is not None else []
                shadows = shadow if shadow.__class__ is list else [shadow] if shadow is not None else []
                if value is not None and shadow is not None and len(values) != len(shadows):
                    raise XmlWriteError(f"{key} and _{key} have different lengths ({len(values)}, {len(shadows)})",
                                        f"{path}.{key}")
                for i in range(max(len(values), len(shadows))):
                    self.primitive(key, values[i] if values else None, shadows[i] if shadows else None, out,
                                   f"{path}.{key}[{i}]")
            else:
                self.primitive(key, value, shadow, out, f"{path}.{key}")
            return
        items = value if value.__class__ is list else (value,)
        many = value.__class__ is list
        for i, item in enumerate(items):
            here = f"{path}.{key}[{i}]" if many else f"{path}.{key}"
            if kind == _COMPLEX:
                self.element(key, item, prop.shape or self.prop_shape(prop), out, here)
            elif kind == _RESOURCE:
                out.append("<" + key + ">")
                self.resource(item, out, here)
                out.append("</" + key + ">")
            else:
                out.append(_div(item, here))

    def primitive(self, name: str, value: Any, shadow: Any, out: list[str], path: str) -> None:
        head = "<" + name
        exts = None
        if shadow is not None:
            if shadow.__class__ is not dict:
                raise XmlWriteError(f"_{name} must be a JSON object, not {_what(shadow)}", path)
            for k, v in shadow.items():
                if k == "id":
                    if v.__class__ is not str:
                        raise XmlWriteError(f"must be a string, not {_what(v)}", f"{path}.id")
                    head += f' id="{_attr(v, path)}"'
                elif k == "extension":
                    exts = v
                else:
                    raise XmlWriteError(f"_{name} holds {k!r}: a primitive's JSON shadow holds only id and "
                                        "extension", f"{path}.{k}")
        elif value is None:
            raise XmlWriteError("null with no id or extension beside it", path)
        if value is not None:
            head += ' value="' + _lexical(value, path) + '"'
        if not exts:
            out.append(head + "/>")
            return
        out.append(head + ">")
        ext_shape = self.type_shape("Extension") or {}
        for i, ext in enumerate(exts if exts.__class__ is list else (exts,)):
            self.element("extension", ext, ext_shape, out, f"{path}.extension[{i}]")
        out.append("</" + name + ">")


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


def _attr(s: str, path: str) -> str:
    """`s` escaped for a double-quoted attribute value."""
    if _ATTR_SPECIAL.search(s) is None:
        return s
    bad = _NOT_XML.search(s)
    if bad is not None:
        raise XmlWriteError(f"character U+{ord(bad.group()):04X} cannot be written in XML 1.0", path)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


def _lexical(value: Any, path: str) -> str:
    """A primitive's `value` attribute: the JSON value's lexical form (http://hl7.org/fhir/R4/json.html#primitive)."""
    cls = value.__class__
    if cls is str:
        return _attr(value, path)
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise XmlWriteError(f"{value} is not a FHIR decimal", path)
        return repr(value)  # the shortest form that reads back as the same float
    if cls is Decimal:
        if not value.is_finite():
            raise XmlWriteError(f"{value} is not a FHIR decimal", path)
        return str(value)  # as written in the JSON it was parsed from (1.50 stays 1.50)
    raise XmlWriteError(f"a primitive value cannot be {_what(value)}", path)


def _div(value: Any, path: str) -> str:
    """Narrative.div as written: it must be one XHTML `div` element that declares its namespace itself (R4 json.html:
    the JSON form carries it), and well-formed, or the document written around it would not be."""
    if value.__class__ is not str:
        raise XmlWriteError(f"the narrative must be an XHTML string, not {_what(value)}", path)
    try:
        root = parse(value.encode("utf-8", "surrogatepass"))
    except XmlError as e:
        raise XmlWriteError(f"the narrative is not well-formed XHTML: {e}", path) from None
    if root.tag != _XHTML_DIV:
        raise XmlWriteError(f"the narrative's root element is {root.tag}, not an XHTML div (xmlns=\"{XHTML_NS}\")",
                            path)
    start = value.find("<div")
    return value[start:] if start > 0 else value  # an XML declaration or comment before it has no place inside


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
        w.resource(resource, out, "", root=True)
    except RecursionError:
        raise XmlWriteError("nested too deeply to write", str(resource.get("resourceType"))) from None
    text = "".join(out)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate in an id or a div (values are checked as they are written)
        raise XmlWriteError(f"character U+{ord(text[e.start]):04X} cannot be written in UTF-8", "") from None
