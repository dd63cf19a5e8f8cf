"""Applying a patch to a resource the facade has read: JSON Patch (RFC 6902, `application/json-patch+json`) and
FHIRPath Patch (FHIR R4 fhirpatch.html: a Parameters resource of `operation` parts).

Both work on a copy and raise PatchError (an HTTP status and a message) instead of applying part of a patch.
FHIRPath Patch paths are FHIRPath expressions evaluated with fhirpathpy, restricted to navigation (names, indexers,
first(), last(), where(), ofType(), exists(), empty(), not() and comparisons): the patch comes from the client, and
a path must not be able to run arbitrary work.
"""

from __future__ import annotations

import copy
import re
from typing import Any

MAX_OPERATIONS = 1000
MAX_PATH = 500
_MARK = "__helixgate_node"
_FUNCTIONS = frozenset({"where", "first", "last", "ofType", "exists", "empty", "not", "single"})
# Both are linear on re (tests/gateway/test_patterns.py): '(?:[^'\\]|\\.)*' retried from every quote of a string
# that never closes, and ([A-Za-z_]\w*)\s*\( from every letter of a name without a '(' after it, were quadratic.
# A string literal; one that never closes is taken whole (its quotes could not start a closed one either) and kept.
_STRING = re.compile(r"'(?:[^'\\]|\\.)*(')?")
# A function call's name: tried once per run of name characters (a name may follow digits: 1a( names a).
_CALL = re.compile(r"(?<![A-Za-z0-9_])[0-9]*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def _emptied(m: re.Match) -> str:
    return "''" if m.group(1) else m.group()


class PatchError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- JSON Patch (RFC 6902) over JSON Pointers (RFC 6901) ---

def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")) or len(path) > MAX_PATH:
        raise PatchError(400, f"{str(path)[:80]!r} is not a JSON Pointer (RFC 6901: '' or '/a/b')")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _walk(doc: Any, tokens: list[str]) -> Any:
    for t in tokens:
        if isinstance(doc, dict) and t in doc:
            doc = doc[t]
        elif isinstance(doc, list) and t.isdigit() and int(t) < len(doc) and (t == "0" or not t.startswith("0")):
            doc = doc[int(t)]
        else:
            raise PatchError(422, f"the path /{'/'.join(tokens)} does not exist in the resource")
    return doc


def _index(container: list[Any], token: str, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(422, f"{token!r} is not an array index")
    i = int(token)
    if i > len(container) or (not adding and i == len(container)):
        raise PatchError(422, f"array index {i} is out of range")
    return i


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], True), value)
    else:
        raise PatchError(422, f"/{'/'.join(tokens[:-1])} is not an object or array")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError(422, "the whole resource cannot be removed")
    parent = _walk(doc, tokens[:-1])
    if isinstance(parent, dict) and tokens[-1] in parent:
        return parent.pop(tokens[-1])
    if isinstance(parent, list):
        return parent.pop(_index(parent, tokens[-1], False))
    raise PatchError(422, f"the path /{'/'.join(tokens)} does not exist in the resource")


def json_patch(resource: dict[str, Any], operations: Any) -> dict[str, Any]:
    """The resource after every operation of a JSON Patch document (all or nothing)."""
    if not isinstance(operations, list):
        raise PatchError(400, "a JSON Patch document is an array of operations (RFC 6902 §3)")
    if len(operations) > MAX_OPERATIONS:
        raise PatchError(422, f"more than {MAX_OPERATIONS} patch operations")
    doc: Any = copy.deepcopy(resource)
    for n, op in enumerate(operations):
        if not isinstance(op, dict) or op.get("op") not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchError(400, f"operation {n} has no valid 'op' (add, remove, replace, move, copy, test)")
        kind, path = op["op"], _pointer(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(400, f"operation {n} ({kind}) has no 'value'")
        try:
            if kind == "add":
                doc = _add(doc, path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                _remove(doc, path)
            elif kind == "replace":
                _walk(doc, path)
                if path:
                    _remove(doc, path)
                doc = _add(doc, path, copy.deepcopy(op["value"]))
            elif kind in ("move", "copy"):
                source = _pointer(op.get("from"))
                if kind == "move" and path[: len(source)] == source and path != source:
                    raise PatchError(422, f"operation {n} moves a location into one of its children")
                value = _remove(doc, source) if kind == "move" else copy.deepcopy(_walk(doc, source))
                doc = _add(doc, path, value)
            elif _walk(doc, path) != op["value"]:
                raise PatchError(422, f"the value at {op.get('path')} differs from the test's")
        except PatchError as e:
            raise PatchError(e.status, f"operation {n} ({kind}): {e}") from None
    if not isinstance(doc, dict):
        raise PatchError(422, "the patched document is not a resource")
    return doc


# --- FHIRPath Patch (fhirpatch.html) ---

def _check_path(path: Any) -> str:
    if not isinstance(path, str) or not path.strip() or len(path) > MAX_PATH:
        raise PatchError(400, "every FHIRPath Patch operation needs a 'path' (a FHIRPath expression, ≤ 500 chars)")
    for name in _CALL.findall(_STRING.sub(_emptied, path)):
        if name not in _FUNCTIONS:
            raise PatchError(422, f"the function {name}() is not supported in a patch path (navigation only: "
                                  f"{', '.join(sorted(_FUNCTIONS))})")
    return path


def _marked(node: Any, counter: list[int], index: dict[int, tuple[Any, Any]], parent: Any = None,
            key: Any = None) -> None:
    """Gives every object a numbered mark (fhirpathpy returns copies; the marks say which original they are)."""
    if isinstance(node, dict):
        counter[0] += 1
        node[_MARK] = counter[0]
        index[counter[0]] = (parent, key)
        for k, v in list(node.items()):
            if k != _MARK:
                _marked(v, counter, index, node, k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _marked(v, counter, index, node, i)


def _unmarked(node: Any) -> Any:
    if isinstance(node, dict):
        node.pop(_MARK, None)
        for v in node.values():
            _unmarked(v)
    elif isinstance(node, list):
        for v in node:
            _unmarked(v)
    return node


def _evaluate(resource: dict[str, Any], path: str) -> list[Any]:
    import fhirpathpy

    try:
        return list(fhirpathpy.evaluate(resource, path, {}))
    except Exception as e:  # fhirpathpy raises plain exceptions for bad syntax
        raise PatchError(422, f"the path {path[:120]!r} cannot be evaluated: {str(e)[:200]}") from None


def _split_last(path: str) -> tuple[str, str] | None:
    """(parent expression, element name) when `path` ends in '.name'; None for indexers and functions."""
    m = re.fullmatch(r"(.+)\.([A-Za-z][A-Za-z0-9_]*)\s*", path)
    return (m.group(1), m.group(2)) if m else None


def _key(container: dict[str, Any], name: str) -> str | None:
    if name in container:
        return name
    return next((k for k in container if k.startswith(name) and k[len(name):][:1].isupper()), None)


def _value(part: dict[str, Any]) -> Any:
    """The value of a `value` part: its value[x], or an anonymous complex value from its parts."""
    for k, v in part.items():
        if k.startswith("value") and k != "value":
            return copy.deepcopy(v)
    if "resource" in part:
        return copy.deepcopy(part["resource"])
    if isinstance(part.get("part"), list):
        return {p.get("name"): _value(p) for p in part["part"] if isinstance(p, dict) and p.get("name")}
    raise PatchError(400, "a 'value' part has no value[x] and no parts")


def _value_key(part: dict[str, Any], name: str) -> str:
    """The JSON name of a new element: a choice element takes its value's type (value + Quantity)."""
    for k in part:
        if k.startswith("value") and k != "value" and name.endswith("[x]"):
            return name[:-3] + k[5:]
    return name.removesuffix("[x]")


def _only(found: list[Any], path: str, allow_none: bool = False) -> Any:
    if len(found) > 1:
        raise PatchError(422, f"the path {path[:120]!r} matches {len(found)} elements; a patch path must match one")
    if not found:
        if allow_none:
            return None
        raise PatchError(422, f"the path {path[:120]!r} matches nothing in the resource")
    return found[0]


def _node(found: Any, index: dict[int, tuple[Any, Any]], path: str) -> tuple[Any, Any]:
    if not isinstance(found, dict) or _MARK not in found:
        raise PatchError(422, f"the path {path[:120]!r} does not name an element of the resource")
    return index[found[_MARK]]


def fhirpath_patch(resource: dict[str, Any], parameters: Any) -> dict[str, Any]:
    """The resource after every `operation` of a FHIRPath Patch Parameters resource (all or nothing)."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise PatchError(400, "a FHIRPath Patch is a Parameters resource (fhirpatch.html)")
    ops = [p for p in parameters.get("parameter") or [] if isinstance(p, dict)]
    if not ops or any(p.get("name") != "operation" for p in ops):
        raise PatchError(400, "a FHIRPath Patch holds only 'operation' parameters, at least one")
    if len(ops) > MAX_OPERATIONS:
        raise PatchError(422, f"more than {MAX_OPERATIONS} patch operations")
    doc = copy.deepcopy(resource)
    for n, op in enumerate(ops):
        parts = {p.get("name"): p for p in op.get("part") or [] if isinstance(p, dict)}
        kind = (parts.get("type") or {}).get("valueCode")
        try:
            _apply(doc, kind, parts)
        except PatchError as e:
            raise PatchError(e.status, f"operation {n} ({kind}): {e}") from None
    return _unmarked(doc)


def _apply(doc: dict[str, Any], kind: Any, parts: dict[str, dict[str, Any]]) -> None:
    if kind not in ("add", "insert", "delete", "replace", "move"):
        raise PatchError(400, "type must be add, insert, delete, replace or move")
    path = _check_path((parts.get("path") or {}).get("valueString"))
    _unmarked(doc)
    index: dict[int, tuple[Any, Any]] = {}
    _marked(doc, [0], index)
    if kind == "add":
        name = (parts.get("name") or {}).get("valueString")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(\[x\])?", name):
            raise PatchError(400, "add needs a 'name' (an element name)")
        target = _only(_evaluate(doc, path), path)
        if not isinstance(target, dict) or _MARK not in target:
            raise PatchError(422, f"the path {path[:120]!r} does not name an element that can hold {name}")
        parent, key = index[target[_MARK]]
        container = doc if parent is None else parent[key]
        if "value" not in parts:
            raise PatchError(400, "add needs a 'value'")
        value, field = _value(parts["value"]), _value_key(parts["value"], name)
        current = container.get(field)
        if isinstance(current, list):
            current.append(value)
        elif current is not None:
            raise PatchError(422, f"{field} is already present; use replace")
        else:
            container[field] = value
        return
    whole = _split_last(path)
    if kind in ("insert", "move"):
        listing = _list_at(doc, path, whole, index)
        if kind == "insert":
            at = (parts.get("index") or {}).get("valueInteger")
            if not isinstance(at, int) or not 0 <= at <= len(listing):
                raise PatchError(422, f"insert index must be 0..{len(listing)}")
            listing.insert(at, _value(parts.get("value") or {}))
        else:
            src, dst = (parts.get("source") or {}).get("valueInteger"), (parts.get("destination") or {}).get(
                "valueInteger")
            if not (isinstance(src, int) and isinstance(dst, int) and 0 <= src < len(listing)
                    and 0 <= dst < len(listing)):
                raise PatchError(422, f"move needs source and destination within 0..{len(listing) - 1}")
            listing.insert(dst, listing.pop(src))
        return
    if whole is not None:  # Type.a.b: the element b of the one a
        parent_path, name = whole
        owner = _only(_evaluate(doc, parent_path), parent_path, allow_none=kind == "delete")
        if owner is None:
            return
        if not isinstance(owner, dict) or _MARK not in owner:
            raise PatchError(422, f"the path {parent_path[:120]!r} does not name an element")
        p, k = index[owner[_MARK]]
        container = doc if p is None else p[k]
        field = _key(container, name)
        current = container.get(field) if field else None
        if isinstance(current, list) and len(current) > 1:
            raise PatchError(422, f"the path {path[:120]!r} matches {len(current)} elements; a patch path must "
                                  "match one")
        if kind == "delete":
            if field:
                container.pop(field, None)
                container.pop("_" + field, None)
            return
        if field is None:
            raise PatchError(422, f"the path {path[:120]!r} matches nothing in the resource")
        value = _value(parts.get("value") or {})
        container[field] = [value] if isinstance(current, list) else value
        return
    found = _only(_evaluate(doc, path), path, allow_none=kind == "delete")
    if found is None:
        return
    parent, key = _node(found, index, path)
    if parent is None:
        raise PatchError(422, "the whole resource cannot be deleted or replaced by a patch")
    if kind == "delete":
        parent.pop(key)
        if isinstance(parent, list) and not parent:
            grand = [(p, k) for p, k in index.values() if p is not None and k is not None]
            for p, k in grand:
                if isinstance(p, dict) and p.get(k) is parent:
                    p.pop(k)
                    break
    else:
        parent[key] = _value(parts.get("value") or {})


def _list_at(doc: dict[str, Any], path: str, whole: tuple[str, str] | None,
             index: dict[int, tuple[Any, Any]]) -> list[Any]:
    if whole is None:
        raise PatchError(422, f"insert and move need a path that ends in an element name, not {path[:120]!r}")
    parent_path, name = whole
    owner = _only(_evaluate(doc, parent_path), parent_path)
    if not isinstance(owner, dict) or _MARK not in owner:
        raise PatchError(422, f"the path {parent_path[:120]!r} does not name an element")
    p, k = index[owner[_MARK]]
    container = doc if p is None else p[k]
    listing = container.setdefault(name, [])
    if not isinstance(listing, list):
        raise PatchError(422, f"{name} is not a repeating element")
    return listing
