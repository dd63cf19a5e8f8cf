"""Generated straight-line Python for the happy path of an object checker (profiles/checkers.py), the way
fastjsonschema compiles a JSON Schema: the source of one function per (element, children, type) is written once from
what the definitions say, compiled, and kept (code objects are shared by every checker whose source is the same).

The function does nothing but what the closures would do when the object is ordinary — every property known,
single values where the element is single and non-empty arrays where it repeats, no `_name` holders, no nulls, no
element ids, at most one type per choice element — and returns False without reporting anything as soon as it
meets anything else, so that the closures (the exact fallback) take the object from the start. Two passes over the
properties: the first only looks (the primitives' lexical rules inlined: JSON type, emptiness, whitespace, the
regex or its exact shortcut, the string rules of the type and element), the second reports in property order what
the closures report in that order — the primitives' fixed/pattern/binding/invariant checks, the other values'
checkers, sliced elements and extensions through the element checker, then the required elements absent.

    fast = generated.object_fast(checkers, owner, kids, typ, keymap, required)   # or None
    fast(obj, path, run, is_resource) -> bool
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

from profiles import extensions, primitives
from profiles.elements import PRIMITIVES, Node

ObjectFast = Callable[[dict[str, Any], str, Any, bool], bool]

_CODE: dict[str, types.CodeType] = {}  # source text → code object (the same shapes recur across profiles)
_LOCK = threading.Lock()
INT32 = 2**31 - 1


def primitive_test(v: Any, typ: str, node: Node, ns: dict[str, Any]) -> str | None:
    """A Python expression on `x` that is true only when primitives.checker(v, typ, node) and the primitive body
    report nothing for the value `x` (no `_name` holder); None when the type's rules are not inlined (the value
    then goes to its checker). The type's regex is `_rx[k]` (k: the slot number); other objects it calls go in
    `ns`."""
    if typ.startswith("System."):
        return "True"  # no lexical check of its own (the body checks the value is present, which it is)
    if typ not in PRIMITIVES or typ == "xhtml":
        return None
    kind = primitives.JSON_KIND.get(typ, "string")
    rx = v.regex.get(typ)
    conds: list[str] = []
    if kind == "string":
        conds += ["x.__class__ is str", "x"]
        sure = primitives.SURE_SOURCE.get(rx.pattern) if rx is not None else None
        if rx is not None:
            conds.append(f"({sure})" if sure is not None else "_rx[k].full(x)")
        if typ not in ("markdown", "string") and (sure is None or rx is None or rx.pattern not in primitives.TRIMMED):
            conds.append("x == x.strip()")
        if (v.security_checks and typ in ("string", "markdown")) or (
                typ == "markdown" and v.html_in_markdown != "ignore"):
            conds.append('"<" not in x')
        if typ == "canonical":
            ns["_absolute"] = primitives.ABSOLUTE_CANONICAL
            conds.append("_absolute.match(x)")
        if not v.examples and typ in ("uri", "url", "canonical"):
            from profiles.references import EXAMPLE_DOMAIN

            ns["_example_domain"] = EXAMPLE_DOMAIN
            conds.append("not _example_domain.match(x)")
        conds.append(f"len(x) <= {primitives.MAX_STRING}")
        if node.min_length:
            conds.append(f"len(x) >= {int(node.min_length)}")
        if node.max_length:
            conds.append(f"len(x) <= {int(node.max_length)}")
    elif kind == "boolean":
        if rx is not None and not (rx.full("true") and rx.full("false")):
            return None
        conds.append("x.__class__ is bool")
    elif kind == "integer":
        conds.append("x.__class__ is int")
        if rx is not None:
            conds.append("_rx[k].full(str(x))")
        if typ == "positiveInt":
            conds.append("x >= 1")
        if typ in ("integer", "positiveInt", "unsignedInt"):
            conds.append(f"-{INT32} <= x <= {INT32}")
    else:  # decimal
        conds.append("(x.__class__ is float or x.__class__ is int)")
        if rx is not None:
            conds.append("_rx[k].full(repr(x) if x.__class__ is float else str(x))")
    return " and ".join(conds)


class _Slot:
    """One JSON property of the object: what the first pass tests and what the second pass does, as code that
    reads the slot's own objects through its number `k` (so that slots with the same rules share their code)."""

    def __init__(self, key: str, kid: Node, ktyp: str) -> None:
        self.key, self.kid, self.ktyp = key, kid, ktyp
        self.test: str | None = None  # inlined primitive test on `x` (None: the value goes to its checker)
        self.tail: Any = None  # the inlined primitive's element checks (fixed, pattern, binding, bounds, invariants)
        self.via_element = False  # handed to the element checker (slicing, extensions, unusual cardinality)
        self.first: tuple[str, ...] = ()
        self.second: tuple[str, ...] = ()


def object_fast(checkers: Any, owner: Node, kids: dict[str, Node], typ: str,
                keymap: dict[str, tuple[Node, str]], required: list[Node]) -> ObjectFast | None:
    """The happy path of checkers' object checker for (owner, kids, typ), or None where it has none (Extension:
    ext-1 and the url rules stay with the closures)."""
    if typ == "Extension" or not keymap:
        return None
    v = checkers.v
    ns: dict[str, Any] = {"_contexts": extensions.contexts, "_v": v, "_owner": owner, "_typ": typ,
                          "_value": checkers.value, "_element": checkers.element}
    slots: list[_Slot] = []
    per_kid: dict[int, int] = {}
    for key, (kid, ktyp) in keymap.items():
        s = _Slot(key, kid, ktyp)
        slots.append(s)
        per_kid[id(kid)] = per_kid.get(id(kid), 0) + 1
        lo, hi = kid.min, kid.max
        if (kid.slicing is not None and kid.slices) or kid.name in ("extension", "modifierExtension") or lo > 1 or (
                hi is not None and hi < 1):
            s.via_element = True
        else:
            s.test = primitive_test(v, ktyp, kid, ns)
            if s.test is not None:
                s.tail = checkers.tail(kid, ktyp)
    flags: dict[int, str] = {}  # choice elements with several properties: at most one of them may be present
    for s in slots:
        if s.kid.is_choice and per_kid[id(s.kid)] > 1 and id(s.kid) not in flags:
            flags[id(s.kid)] = f"c{len(flags)}"
    for s in slots:
        s.first = tuple(_first(s, flags.get(id(s.kid))))
        s.second = tuple(_second(s))
    # slots with the same code get neighbouring numbers, so that one leaf of the dispatch serves them all
    slots.sort(key=lambda s: (s.first, s.second))
    ns["_KEYS"] = {s.key: k for k, s in enumerate(slots)}
    ns["_kids"] = [s.kid for s in slots]
    ns["_ktyps"] = [s.ktyp for s in slots]
    ns["_rx"] = [v.regex.get(s.ktyp) for s in slots]
    ns["_t"] = [s.tail for s in slots]
    ns["_fns"] = [None] * len(slots)
    ns["_els"] = [None] * len(slots)
    ns["_suffix"] = [f".{s.kid.base_name}.ofType({s.ktyp[:1].upper() + s.ktyp[1:]})" if s.kid.is_choice
                     else f".{s.kid.base_name}" for s in slots]
    ns["_where"] = [f".{s.kid.base_name}" for s in slots]
    ns["_required"] = required

    acting = any(s.second for s in slots)
    out: list[str] = ["def fast(obj, path, run, is_resource):"]
    if flags:
        out.append(f"    {' = '.join(sorted(flags.values()))} = False")
    out += ["    act = False"] if acting else []
    out += ["    get = _KEYS.get",
            "    for key, x in obj.items():",
            "        k = get(key, -1)",
            "        if k < 0:",
            "            if is_resource and key == 'resourceType':",
            "                continue",
            "            return False"]
    # the first pass notes whether a property with work for the second pass is present (`act`)
    out += _tree(_groups(slots, lambda s: (*s.first, "act = True") if s.second else s.first), 2)
    if acting:
        out += ["    if act:",
                "        run.depth += 1",
                "        try:",
                "            for key, x in obj.items():",
                "                k = get(key, -1)",
                "                if k < 0:",
                "                    continue"]
        out += _tree(_groups(slots, lambda s: s.second), 4)
        out += ["        finally:",
                "            run.depth -= 1"]
    for n, kid in enumerate(required):  # (reading neither the depth nor anything below the object)
        absent = " and ".join(f"{k!r} not in obj" for k, (other, _) in keymap.items() if other is kid) or "True"
        out += [f"    if {absent}:", f"        _element(_required[{n}])([], path, run)"]
    out.append("    return True")
    source = "\n".join(out) + "\n"
    with _LOCK:
        code = _CODE.get(source)
        if code is None:
            module = compile(source, "<generated object checker>", "exec")
            code = _CODE[source] = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(code, ns, "fast")  # type: ignore[return-value]


def _groups(slots: list[_Slot], code: Callable[[_Slot], tuple[str, ...]]) -> list[tuple[int, int, tuple[str, ...]]]:
    """Runs of neighbouring slot numbers whose code is the same: (first number, last number, code)."""
    out: list[tuple[int, int, tuple[str, ...]]] = []
    for k, s in enumerate(slots):
        c = code(s)
        if out and out[-1][2] == c:
            out[-1] = (out[-1][0], k, c)
        else:
            out.append((k, k, c))
    return out


def _tree(groups: list[tuple[int, int, tuple[str, ...]]], depth: int) -> list[str]:
    """Dispatch on the slot number `k` (one of the groups' numbers) by a balanced tree of comparisons."""
    pad = "    " * depth
    if len(groups) == 1:
        return [f"{pad}{line}" for line in groups[0][2] or ("pass",)]
    mid = len(groups) // 2
    return [f"{pad}if k < {groups[mid][0]}:", *_tree(groups[:mid], depth + 1),
            f"{pad}else:", *_tree(groups[mid:], depth + 1)]


def _holder(var: str) -> str:
    """An object carrying an element id (the closures check ids are unique among the element's children)."""
    return f"({var}.__class__ is dict and 'id' in {var} and 'resourceType' not in {var})"


def _first(s: _Slot, flag: str | None) -> list[str]:
    """The first pass's test of slot `s` on `x`: return False unless the value is on the happy path."""
    lines: list[str] = []
    kid = s.kid
    if flag is not None:
        lines += [f"if {flag}:", "    return False", f"{flag} = True"]
    if kid.repeats:
        lines += ["if x.__class__ is not list or not x:", "    return False"]
        if not s.via_element and kid.max is not None:
            lines += [f"if len(x) > {kid.max}:", "    return False"]
        if s.test is not None:  # the test reads `x`: each item in turn
            lines += ["for x in x:", f"    if not ({s.test}):", "        return False"]
        else:
            lines += ["for x in x:", f"    if x is None or {_holder('x')}:", "        return False"]
    elif s.test is not None:
        lines += [f"if not ({s.test}):", "    return False"]
    else:
        lines += [f"if x is None or x.__class__ is list or {_holder('x')}:", "    return False"]
    return lines


def _second(s: _Slot) -> list[str]:
    """What the second pass does for slot `s` with its value `x`, in the closures' order (nothing for an inlined
    primitive without checks of its element)."""
    kid = s.kid
    value_fn = ["f = _fns[k]", "if f is None:", "    f = _fns[k] = _value(_kids[k], _ktyps[k])"]
    if s.via_element:
        lines = ["e = _els[k]", "if e is None:", "    e = _els[k] = _element(_kids[k])",
                 "items = [(key, y, None, _ktyps[k]) for y in x]" if kid.repeats else
                 "items = [(key, x, None, _ktyps[k])]", "e(items, path, run)"]
        if kid.name in ("extension", "modifierExtension"):
            lines.append("_contexts(_v, items, _owner, _typ, path, run, obj)")
        return lines
    if kid.repeats:
        if s.test is not None:
            return ["t = _t[k]", "w = path + _where[k]", "for i, y in enumerate(x):",
                    "    t(y, f'{w}[{i}]', run)"] if s.tail is not None else []
        return [*value_fn, "w = path + _where[k]", "for i, y in enumerate(x):", "    f(y, None, f'{w}[{i}]', run)"]
    if s.test is not None:
        return ["_t[k](x, path + _suffix[k], run)"] if s.tail is not None else []
    return [*value_fn, "f(x, None, path + _suffix[k], run)"]
