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

A datatype's function whose checker has met UPGRADE more objects is written again with the datatypes of INLINED
in it (a component's CodeableConcepts and their Codings, a Range's Quantities) checked in its own code, as their
value checkers would: the memo lookup with the same key (skipped below a remembered owner, where values seldom
recur, unless a pattern makes them), a first look at the value's properties that raises _Bail on anything unusual
(then the value's checker body takes it whole), its properties' checks, its type's and element's rules. The depth
limit is checked once for the deepest inlined object: an owner near it is left to the closures.

    fast = generated.object_fast(checkers, owner, kids, typ, keymap, required, inline)   # or None
    fast(obj, path, run, is_resource) -> bool
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

import orjson

from profiles import bindings, datatypes, extensions, invariants, primitives
from profiles import checkers as checkers_module
from profiles.elements import PRIMITIVES, Node
from profiles.memo import LIMIT

ObjectFast = Callable[[dict[str, Any], str, Any, bool], bool]

_CODE: dict[str, types.CodeType] = {}  # source text → code object (the same shapes recur across profiles)
_LOCK = threading.Lock()
INT32 = 2**31 - 1
MAX_LEVEL = 2  # datatypes inlined in datatypes inlined in the owner, no deeper
MAX_OBJECTS = 24  # objects per generated function (its source and compile time stay small)
UPGRADE = 8  # the happy paths' uses before their owner's is written again with the datatypes inlined
# the datatypes whose happy path is inlined in their owner's function
INLINED = frozenset({"Coding", "CodeableConcept", "Quantity", "Range"})


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
        self.inline: _Object | None = None  # a datatype checked in the owner's function (its happy path inlined)
        self.first: tuple[str, ...] = ()
        self.second: tuple[str, ...] = ()


class _Bail(Exception):
    """An inlined datatype value off the happy path: its checker's body takes it whole."""


class _Writer:
    """The namespace and counters of one generated function: each object written into it (the owner, then the
    datatypes inlined in it) has its own number `n`, which suffixes the names of its objects in the namespace."""

    def __init__(self, checkers: Any, owner: Node, typ: str, max_level: int) -> None:
        self.checkers = checkers
        self.max_level = max_level  # 0: nothing inlined
        self.v = checkers.v
        self.ns: dict[str, Any] = {"_contexts": extensions.contexts, "_v": self.v, "_owner": owner, "_typ": typ,
                                   "_value": checkers.value, "_element": checkers.element}
        self.objects = 0
        self.deepest = 0  # the deepest level a datatype is inlined at (the depth limit is checked up front)

    def inlinable(self, kid: Node, ktyp: str, level: int, within: bool) -> _Object | None:
        """The inlined happy path of a value of `ktyp` in element `kid` at `level`, or None where the value goes
        to its checker (primitives, resources, extensions, type profiles, deep or large functions)."""
        if level >= self.max_level or self.objects >= MAX_OBJECTS or ktyp not in INLINED:
            return None
        c = self.checkers
        parts = c.parts(kid, ktyp)
        if parts.typed or not parts.children:
            return None
        keymap, required = checkers_module.keyed(parts.children)
        if not keymap:
            return None
        remembered, shape = c.remembered(kid, ktyp)
        below = within or remembered  # what is inlined below it is checked only when the value is new too
        if within and kid.pattern is None and kid.fixed is None:
            # inside a remembered owner, checked only when the owner's content is new: a value of it rarely
            # recurs there (a Coding in a CodeableConcept, a Quantity in a Range: ~1 in 100 on a first pass)
            # unless its element fixes a pattern (a component's code: the same across a report's components)
            remembered, shape = False, None
        return _Object(self, kid, parts.children, ktyp, keymap, required, level + 1, parts,
                       remembered, shape, below)


class _Object:
    """The code of one object checker's happy path, at `level` (0: the function's own object `obj` at `path`;
    deeper: a datatype value `o{level}` at `p{level}` inlined in its owner's code)."""

    def __init__(self, w: _Writer, owner: Node, kids: dict[str, Node], typ: str,
                 keymap: dict[str, tuple[Node, str]], required: list[Node], level: int, parts: Any = None,
                 remembered: bool = False, shape: Any = None, within: bool = False) -> None:
        self.level = level
        self.n = n = "" if level == 0 else str(w.objects)
        w.objects += 1
        w.deepest = max(w.deepest, level)
        self.obj = "obj" if level == 0 else f"o{level}"
        self.path = "path" if level == 0 else f"p{level}"
        ns, v = w.ns, w.v
        if level:
            ns[f"_owner{n}"], ns[f"_typ{n}"] = owner, typ
        self.parts, self.remembered, self.shape, self.node, self.typ = parts, remembered, shape, owner, typ
        slots: list[_Slot] = []
        per_kid: dict[int, int] = {}
        for key, (kid, ktyp) in keymap.items():
            s = _Slot(key, kid, ktyp)
            slots.append(s)
            per_kid[id(kid)] = per_kid.get(id(kid), 0) + 1
            lo, hi = kid.min, kid.max
            if (kid.slicing is not None and kid.slices) or kid.name in ("extension", "modifierExtension") or (
                    lo > 1 or (hi is not None and hi < 1)):
                s.via_element = True
            else:
                s.test = primitive_test(v, ktyp, kid, ns)
                if s.test is not None:
                    s.tail = w.checkers.tail(kid, ktyp)
                else:
                    s.inline = w.inlinable(kid, ktyp, level, within)
            if s.test is not None and n:
                s.test = s.test.replace("_rx[k]", f"_rx{n}[k]")
        flags: dict[int, str] = {}  # choice elements with several properties: at most one of them may be present
        for s in slots:
            if s.kid.is_choice and per_kid[id(s.kid)] > 1 and id(s.kid) not in flags:
                flags[id(s.kid)] = f"c{n}_{len(flags)}" if n else f"c{len(flags)}"
        self.flags = sorted(flags.values())
        for s in slots:
            s.first = tuple(self._first(s, flags.get(id(s.kid))))
            s.second = tuple(self._second(s))
        # slots with the same code get neighbouring numbers, so that one leaf of the dispatch serves them all
        slots.sort(key=lambda s: (s.first, s.second))
        self.slots = slots
        ns[f"_KEYS{n}"] = {s.key: k for k, s in enumerate(slots)}
        ns[f"_kids{n}"] = [s.kid for s in slots]
        ns[f"_ktyps{n}"] = [s.ktyp for s in slots]
        ns[f"_rx{n}"] = [v.regex.get(s.ktyp) for s in slots]
        ns[f"_t{n}"] = [s.tail for s in slots]
        ns[f"_fns{n}"] = [None] * len(slots)
        ns[f"_els{n}"] = [None] * len(slots)
        ns[f"_suffix{n}"] = [f".{s.kid.base_name}.ofType({s.ktyp[:1].upper() + s.ktyp[1:]})" if s.kid.is_choice
                             else f".{s.kid.base_name}" for s in slots]
        ns[f"_where{n}"] = [f".{s.kid.base_name}" for s in slots]
        ns[f"_required{n}"] = required
        self.absent: list[str] = []
        for j, kid in enumerate(required):  # (reading neither the depth nor anything below the object)
            absent = " and ".join(f"{k!r} not in {self.obj}" for k, (other, _) in keymap.items() if other is kid)
            self.absent += [f"if {absent or 'True'}:", f"    _element(_required{n}[{j}])([], {self.path}, run)"]
        self.acting = any(s.second for s in slots)
        if level:
            self._value_names(w)

    # ---- the first pass: only looks ----
    def first_of(self, var: str) -> list[str]:
        """The first pass over the inlined object in `var`, in its owner's second pass: `raise _Bail` unless it is
        a non-empty object with every property on the happy path (its owner's first pass has seen no element id
        on it). (`x`, `k` and `key` are the owner's loop's: it reads them no more once here.)"""
        lines = [f"if {var}.__class__ is not dict or not {var}:", "    raise _Bail"]
        if self.flags:
            lines.append(f"{' = '.join(self.flags)} = False")
        lines += [f"for key, x in {var}.items():",
                  f"    k = _KEYS{self.n}.get(key, -1)",
                  "    if k < 0:",
                  "        raise _Bail"]
        return lines + _tree(_groups(self.slots, lambda s: s.first), 1)

    def _first(self, s: _Slot, flag: str | None) -> list[str]:
        """The first pass's test of slot `s` on `x`: return False (raise _Bail, inlined) unless the value is on
        the happy path."""
        fail = "    raise _Bail" if self.level else "    return False"
        lines: list[str] = []
        kid = s.kid
        if flag is not None:
            lines += [f"if {flag}:", fail, f"{flag} = True"]
        if kid.repeats:
            lines += ["if x.__class__ is not list or not x:", fail]
            if not s.via_element and kid.max is not None:
                lines += [f"if len(x) > {kid.max}:", fail]
            if s.test is not None:  # the test reads `x`: each item in turn
                lines += ["for x in x:", f"    if not ({s.test}):", f"    {fail}"]
            else:
                lines += ["for x in x:", f"    if x is None or {_holder('x')}:", f"    {fail}"]
        elif s.test is not None:
            lines += [f"if not ({s.test}):", fail]
        else:
            lines += [f"if x is None or x.__class__ is list or {_holder('x')}:", fail]
        return lines

    # ---- the second pass: reports ----
    def second_of(self) -> list[str]:
        """The second pass over this (inlined) object's properties, then its required elements absent."""
        lines: list[str] = []
        if self.acting:
            lines += ["run.depth += 1",
                      f"for key, x in {self.obj}.items():",
                      f"    k = _KEYS{self.n}.get(key, -1)",
                      "    if k < 0:",
                      "        continue",
                      *_tree(_groups(self.slots, lambda s: s.second), 1),
                      "run.depth -= 1"]
        return lines + self.absent

    def _second(self, s: _Slot) -> list[str]:
        """What the second pass does for slot `s` with its value `x`, in the closures' order (nothing for an
        inlined primitive without checks of its element)."""
        kid, n, path = s.kid, self.n, self.path
        value_fn = [f"f = _fns{n}[k]", "if f is None:", f"    f = _fns{n}[k] = _value(_kids{n}[k], _ktyps{n}[k])"]
        if s.via_element:
            lines = [f"e = _els{n}[k]", "if e is None:", f"    e = _els{n}[k] = _element(_kids{n}[k])",
                     f"items = [(key, y, None, _ktyps{n}[k]) for y in x]" if kid.repeats else
                     f"items = [(key, x, None, _ktyps{n}[k])]", f"e(items, {path}, run)"]
            if kid.name in ("extension", "modifierExtension"):
                lines.append(f"_contexts(_v, items, _owner{n}, _typ{n}, {path}, run, {self.obj})")
            return lines
        inline = s.inline
        if inline is not None:
            o, p, m = inline.obj, inline.path, inline.level
            if kid.repeats:
                return [f"w{m} = {path} + _where{n}[k]", f"for i, {o} in enumerate(x):",
                        f"    {p} = f'{{w{m}}}[{{i}}]'", *_indent(inline.value_lines())]
            return [f"{o} = x", f"{p} = {path} + _suffix{n}[k]", *inline.value_lines()]
        if kid.repeats:
            if s.test is not None:
                return [f"t = _t{n}[k]", f"w = {path} + _where{n}[k]", "for i, y in enumerate(x):",
                        "    t(y, f'{w}[{i}]', run)"] if s.tail is not None else []
            return [*value_fn, f"w = {path} + _where{n}[k]", "for i, y in enumerate(x):",
                    "    f(y, None, f'{w}[{i}]', run)"]
        if s.test is not None:
            return [f"_t{n}[k](x, {path} + _suffix{n}[k], run)"] if s.tail is not None else []
        return [*value_fn, f"f(x, None, {path} + _suffix{n}[k], run)"]

    # ---- an inlined datatype value: what its value checker (checkers._compile_value) does ----
    def _value_names(self, w: _Writer) -> None:
        n, ns, parts = self.n, w.ns, self.parts
        c, node, typ = w.checkers, self.node, self.typ
        # the value's whole check (unusual values, values the memo cannot key) and the same without the memo
        # (unusual content), looked up when first needed: nothing is compiled for values that never come
        ns[f"_fn{n}"] = lambda value, ext, path, run: c.value(node, typ)(value, ext, path, run)
        ns[f"_body{n}"] = lambda value, ext, path, run: c.body(node, typ)(value, ext, path, run)
        ns["_Bail"] = _Bail
        ns[f"_nid{n}"], ns[f"_vt{n}"], ns[f"_shape{n}"] = id(self.node), self.typ, self.shape
        ns[f"_node{n}"], ns[f"_bp{n}"], ns[f"_bpath{n}"] = self.node, parts.base_planned, parts.base_path
        ns[f"_ref{n}"], ns[f"_tail{n}"] = parts.reference, parts.tail
        if self.remembered:
            ns.update(_dumps=orjson.dumps, _plain=checkers_module._plain, _store=checkers_module.store,
                      _replay=checkers_module.replay, _NOTHING=checkers_module._NOTHING, _LIMIT=LIMIT)
        if parts.coded:
            ns["_codes_exist"] = bindings.codes_exist
        if parts.attachment:
            ns["_attachment"] = datatypes.attachment
        if parts.base_planned:
            ns["_invariants"] = invariants.check

    def value_lines(self) -> list[str]:
        """The check of the datatype value in `o{level}` at `p{level}` (its owner's first pass has seen it is no
        list, null or element id holder): the memo lookup its checker makes; then, when the value is on the happy
        path, its children and its type's and element's own rules (_complex_body), else the checker's body."""
        n, o, p, m = self.n, self.obj, self.path, self.level
        parts = self.parts
        body = self.second_of()
        if parts.reference is not None:
            body.append(f"_ref{n}({o}, {p}, run)")
        if parts.attachment:
            body.append(f"_attachment({o}, {p}, run)")
        if parts.coded:
            body.append(f"_codes_exist(_v, {o}, _vt{n}, {p}, run, _node{n})")
        if parts.base_planned:
            body.append(f"_invariants(_bp{n}, _bpath{n}, {o}, {p}, run)")
        if parts.tail is not None:
            body.append(f"_tail{n}({o}, {p}, run)")
        checked = ["try:", *_indent(self.first_of(o)), "except _Bail:", f"    _body{n}({o}, None, {p}, run)",
                   "else:", *_indent(body)]
        if not self.remembered:
            return checked
        # remembered (checkers._remembering): the same key; a value it cannot key goes to the checker whole
        digest = f"_dumps({o}) if _plain({o}, _shape{n}) else None" if self.shape is not None else f"_dumps({o})"
        lang = "g" if self.shape is None else "(g, run.depth)"
        return [
            f"if {o}.__class__ is dict:",
            "    try:",
            f"        d = {digest}",
            "    except TypeError:",
            "        d = None",
            "else:",
            "    d = None",
            "if d is None:",
            f"    _fn{n}({o}, None, {p}, run)",
            "else:",
            "    g = (run.resource or run.root).get('language')",
            "    if g is not None and g.__class__ is not str and not isinstance(g, str):",
            "        g = None",
            f"    mk{m} = (_nid{n}, _vt{n}, d, {lang})",
            f"    seen = run.validator.memo.get(mk{m})",
            "    if seen is not None:",
            "        if seen:",
            f"            _replay(seen, {p}, run)",
            "    else:",
            f"        st{m} = len(run.issues)",
            *_indent(_indent(checked)),
            f"        if len(run.issues) == st{m} and len(run.validator.memo) <= _LIMIT:",
            f"            run.validator.memo[mk{m}] = _NOTHING",
            "        else:",
            f"            _store(mk{m}, st{m}, {p}, run)"]


def inlines(checkers: Any, typ: str, keymap: dict[str, tuple[Node, str]]) -> bool:
    """Whether object_fast(..., inline=True) may inline a datatype (the owner is no resource — inlining in a
    resource's function measured nothing but four times the source — and has a datatype child it may inline)."""
    if (checkers.v.defs.type_definition(typ) or {}).get("kind") == "resource":
        return False
    return any(ktyp in INLINED and not (kid.slicing is not None and kid.slices) for kid, ktyp in keymap.values())


def object_fast(checkers: Any, owner: Node, kids: dict[str, Node], typ: str,
                keymap: dict[str, tuple[Node, str]], required: list[Node], inline: bool = False) -> ObjectFast | None:
    """The happy path of checkers' object checker for (owner, kids, typ), or None where it has none (Extension:
    ext-1 and the url rules stay with the closures). `inline`: the datatypes in it checked in its own code (what
    their checkers do, to MAX_LEVEL deep), not by their checkers."""
    if typ == "Extension" or not keymap:
        return None
    w = _Writer(checkers, owner, typ, MAX_LEVEL if inline else 0)
    top = _Object(w, owner, kids, typ, keymap, required, 0, within=checkers.remembered(owner, typ)[0])
    slots = top.slots
    acting = top.acting
    out: list[str] = ["def fast(obj, path, run, is_resource):"]
    if w.deepest:  # the datatypes inlined below are as deep as their checks would be: within the walk's limit
        out += [f"    if run.depth + {w.deepest} >= {checkers_module.MAX_DEPTH}:", "        return False"]
    if top.flags:
        out.append(f"    {' = '.join(top.flags)} = False")
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
                "        d0 = run.depth",
                "        run.depth = d0 + 1",
                "        try:",
                "            for key, x in obj.items():",
                "                k = get(key, -1)",
                "                if k < 0:",
                "                    continue"]
        out += _tree(_groups(slots, lambda s: s.second), 4)
        out += ["        finally:",
                "            run.depth = d0"]
    out += _indent(top.absent)
    out.append("    return True")
    source = "\n".join(out) + "\n"
    with _LOCK:
        code = _CODE.get(source)
        if code is None:
            module = compile(source, f"<generated object checker {typ}>", "exec")
            code = _CODE[source] = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(code, w.ns, "fast")  # type: ignore[return-value]


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" for line in lines]


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
