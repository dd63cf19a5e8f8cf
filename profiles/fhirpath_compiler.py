"""FHIRPath invariants compiled into Python closures over the instance JSON, for the subset that core and IG
invariants are written in: paths (choice types through the R4 model, as fhirpathpy navigates them), exists / empty /
count / where / all / select / first / iif ..., the boolean operators with FHIRPath's three-valued logic
(FHIRPath N1 §6.5), equality and comparison of strings, numbers and same-precision dates, string functions,
membership, union, resolve() / memberOf() / conformsTo() / htmlChecks() through the validation's scope.

Two rules keep a compiled invariant's verdict the FHIRPath engine's (profiles/fhirpath.py, fhirpathpy):
- an expression outside the subset is not compiled (`compile_invariant` returns None with the reason in
  `refusal`): the engine evaluates it;
- at run time, whatever the subset cannot answer exactly (a comparison of dates of different precisions or with
  time zones, a quantity without units, a non-boolean where a boolean is due, ...) raises Undecided, and the engine
  evaluates that one instance.
`tests/profiles/test_fhirpath_compiler.py` runs both on every corpus and example resource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from profiles import patterns, quantities
from profiles.fhirpath import R4, Scope, _codings, _div_has_content, _div_ok, _replace_matches

Collection = list[Any]


class Undecided(Exception):
    """The compiled form cannot answer this instance exactly: the FHIRPath engine decides."""


class Refused(Exception):
    """The expression is outside the compiled subset (the message says what)."""


class _NoValue:
    """A primitive element that carries only extensions (`_name` without `name`): it exists, has no value."""

    __slots__ = ("ext",)

    def __init__(self, ext: Any) -> None:
        self.ext = ext

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NoValue) and other.ext == self.ext

    def __hash__(self) -> int:
        return 0


@dataclass(slots=True)
class Env:
    """What an expression sees besides its focus: $this, %resource, %rootResource and the validation's scope; and
    the values of the function arguments that do not depend on the focus, computed once per evaluation (`hoisted`,
    shared by the Envs of one evaluation)."""

    this: Any
    resource: Any
    root: Any
    scope: Scope | None
    hoisted: dict[Any, Collection]


Fn = Callable[[Collection, Env], Collection]

# ---------------------------------------------------------------- the R4 model (fhirpathpy's, so paths agree)
_ELSEWHERE: dict[str, str] = R4["pathsDefinedElsewhere"]
_CHOICES: dict[str, list[str]] = R4["choiceTypePaths"]
_PATH2TYPE: dict[str, str] = R4["path2Type"]
_PARENT: dict[str, str] = R4["type2Parent"]
_STRINGY = {"string", "code", "id", "uri", "url", "canonical", "markdown", "oid", "uuid", "base64Binary", "xhtml",
            "System.String", "String"}
_TEMPORAL = {"date", "dateTime", "instant", "time", "System.Date", "System.DateTime", "System.Time"}
_DATE = patterns.compile(r"\d{4}(-\d{2}(-\d{2})?)?")  # a date without time or zone: same length, same precision
_INTEGER = patterns.compile(r"[+-]?\d+")
_TEMPORAL_LOOK = patterns.compile(r"\d")  # date, dateTime, instant and time values start with a digit
_NAV: dict[tuple[str | None, str], tuple[tuple[str, ...], str | None]] = {}
_KNOWN: set[str] = set()  # every path the model knows, backbone elements included (filled on first use)


def _known(path: str) -> bool:
    """Whether the model knows `path` (path2Type names only typed leaves: their parents are backbone elements)."""
    if not _KNOWN:
        _KNOWN.update(p.rsplit(".", i)[0] for p in (*_PATH2TYPE, *_CHOICES) for i in range(p.count(".") + 1))
    return path in _KNOWN


def _navigation(path: str | None, name: str) -> tuple[tuple[str, ...], str | None]:
    """(JSON keys to try, in order, the child's type path) for element `name` under model path `path`."""
    hit = _NAV.get((path, name))
    if hit is None:
        if path is None:
            hit = ((name,), None)
        else:
            child = f"{path}.{name}"
            child = _ELSEWHERE.get(child, child)
            types = _CHOICES.get(child)
            if types:
                hit = (tuple(name + t for t in types), None)
            elif name == "extension":
                hit = ((name,), "Extension")
            elif _known(child):
                hit = ((name,), _PATH2TYPE.get(child, child))
            else:  # a path the model does not know: its type (and whether it is a choice) is not known
                hit = ((name,), None)
        _NAV[(path, name)] = hit
    return hit


def _is_resource_path(path: str | None) -> bool:
    seen = 0
    while path and seen < 10:
        if path in ("Resource", "DomainResource"):
            return True
        path = _PARENT.get(path)
        seen += 1
    return False


def _type_is(actual: str, wanted: str) -> bool:
    seen = 0
    t: str | None = actual
    while t and seen < 10:
        if t == wanted:
            return True
        t = _PARENT.get(t)
        seen += 1
    return False


def _member(src: Fn | None, name: str, static: str | None) -> tuple[Fn, str | None]:
    """Navigation to child `name` of each item (choice types through the model; a resource item by its own type,
    as fhirpathpy types it). The result's static type path is known unless the element is a choice."""
    resource_items = static is None or _is_resource_path(static)
    keys0, out_static = _navigation(static, name)
    if static in ("Resource", "DomainResource"):  # the item's own type decides
        out_static = None

    def nav(focus: Collection, env: Env) -> Collection:
        items = src(focus, env) if src is not None else focus
        out: Collection = []
        for item in items:
            if not isinstance(item, dict):
                continue
            keys = keys0
            if resource_items:
                rtype = item.get("resourceType")
                if isinstance(rtype, str):
                    keys = _navigation(rtype, name)[0]
                elif static is None and name not in item and any(
                        k.startswith(name) and k[len(name):len(name) + 1].isupper() for k in item):
                    raise Undecided(f"{name}: a choice element of an item whose type is not known")
            for key in keys:
                v = item.get(key)
                ext = item.get("_" + key)
                if v is None and ext is None:
                    continue
                if isinstance(v, list):
                    for i, x in enumerate(v):
                        if x is None:
                            e = ext[i] if isinstance(ext, list) and i < len(ext) else None
                            if e is not None:
                                out.append(_NoValue(e))
                        else:
                            out.append(x)
                elif v is not None:
                    out.append(v)
                elif isinstance(ext, list):
                    out.extend(_NoValue(e) for e in ext if e is not None)
                else:
                    out.append(_NoValue(ext))
                break
        return out

    return nav, out_static


# ---------------------------------------------------------------- values and logic
def _boolean(coll: Collection) -> bool | None:
    """FHIRPath singleton evaluation for a Boolean operand: None when empty; Undecided when it is not one Boolean
    (the engines part ways there: the spec says a single non-Boolean is true, fhirpathpy raises)."""
    if not coll:
        return None
    if len(coll) == 1 and isinstance(coll[0], bool):
        return coll[0]
    raise Undecided("not a single Boolean")


def _as_result(value: bool | None) -> Collection:
    return [] if value is None else [value]


def _kind(static: str | None) -> str | None:
    if static in _STRINGY:
        return "string"
    if static in _TEMPORAL:
        return "temporal"
    return None


def _compare_strings(a: str, b: str, ka: str | None, kb: str | None) -> tuple[str, str]:
    """Strings that can be compared as they are: both known to be strings, or both dates of the same precision
    (lexical order is then date order)."""
    if ka == "string" and kb == "string":
        return a, b
    if len(a) == len(b) and _DATE.full(a) and _DATE.full(b):
        return a, b
    if "temporal" not in (ka, kb) and not _TEMPORAL_LOOK.match(a) and not _TEMPORAL_LOOK.match(b):
        return a, b  # an untyped value that cannot be a date or time (their lexical forms start with digits)
    raise Undecided("temporal or untyped strings")


def _equal_items(a: Any, b: Any, ka: str | None, kb: str | None) -> bool | None:
    if isinstance(a, _NoValue) or isinstance(b, _NoValue):
        return None
    if isinstance(a, str) != isinstance(b, str):
        # a string beside a number, Boolean or object (`kind` sent as 5 or {...}): no implicit conversion makes them
        # one type, so they are not equal (FHIRPath §6.1.1; the engine agrees). Decided here, such content stays
        # off the engine, where sdf-8a is cubic
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, bool) and isinstance(b, bool):
            return a is b
        raise Undecided("a Boolean beside another type")
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        x, y = _compare_strings(a, b, ka, kb)
        return x == y
    raise Undecided("equality of complex or mixed values")


def _equal(left: Collection, right: Collection, ka: str | None, kb: str | None) -> bool | None:
    if not left or not right:
        return None
    if len(left) != len(right):
        return False
    verdict: bool | None = True
    for a, b in zip(left, right, strict=True):
        r = _equal_items(a, b, ka, kb)
        if r is False:
            return False
        if r is None:
            verdict = None
    return verdict


def _quantity_order(a: Any, b: Any) -> tuple[int, int] | None:
    """Quantities ordered as the engine orders them (profiles/quantities.py): (order, 0), or None when the units do
    not compare (an empty result)."""
    if not (quantities.is_quantity(a) and quantities.is_quantity(b)):
        raise Undecided("ordering of values that are not quantities")
    order = quantities.compare(a, b)
    return None if order is None else (order, 0)


def _order(left: Collection, right: Collection, ka: str | None, kb: str | None) -> tuple[Any, Any] | None:
    """The two comparable singletons of `<`, `<=`, ...; None when either side is empty."""
    if not left or not right:
        return None
    if len(left) != 1 or len(right) != 1:
        raise Undecided("comparison of collections")
    a, b = left[0], right[0]
    if isinstance(a, _NoValue) or isinstance(b, _NoValue):
        return None
    if isinstance(a, bool) or isinstance(b, bool):
        raise Undecided("ordering Booleans")
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return _compare_strings(a, b, ka, kb)
    return _quantity_order(a, b)


def _key(item: Any) -> Any:
    """A hashable identity for union/distinct/intersect: equal FHIRPath values, equal keys."""
    if isinstance(item, bool):
        return ("b", item)
    if isinstance(item, int | float):
        return ("n", float(item))
    if isinstance(item, str):
        return ("s", item)
    if isinstance(item, _NoValue):
        raise Undecided("a value-less primitive in a set operation")
    try:
        return ("o", orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    except TypeError:
        raise Undecided("unserialisable content") from None


def _distinct(coll: Collection) -> Collection:
    seen: set[Any] = set()
    out = []
    for item in coll:
        k = _key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _string(coll: Collection) -> str | None:
    """The input of a string function: None when empty, else its single string (Undecided otherwise)."""
    if not coll:
        return None
    if len(coll) == 1 and isinstance(coll[0], str):
        return coll[0]
    raise Undecided("not a single string")


# ---------------------------------------------------------------- tokens and parser
_TOKEN = patterns.compile(
    r"\s+|//[^\n]*|/\*.*?\*/"
    r"|('(?:[^'\\]|\\.)*')"  # 1 string
    r"|(`(?:[^`\\]|\\.)*`)"  # 2 quoted identifier
    r"|(\d+(?:\.\d+)?)"  # 3 number
    r"|(@[0-9T:.+\-Z]*)"  # 4 date/time
    r"|([$%](?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`|'[^']*'))"  # 5 variable
    r"|([A-Za-z_][A-Za-z0-9_]*)"  # 6 identifier
    r"|(<=|>=|!=|!~|[.()\[\]{},=~<>|&+\-*/])",  # 7 operator
    patterns.DOTALL,
)
_KINDS = ("str", "qid", "num", "date", "var", "id", "op")
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 6 <= len(body):
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise Refused(f"escape \\{nxt}")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text[pos:])
        if m is None or m.end() == 0:
            raise Refused(f"cannot read {text[pos:pos + 20]!r}")
        pos += m.end()
        for i, kind in enumerate(_KINDS, 1):
            value = m.group(i)
            if value is not None:
                out.append((kind, value))
                break
    return out


# binary operators: precedence (higher binds tighter), FHIRPath N1 §6 / Appendix "Operator precedence"
_BINARY = {"implies": 1, "or": 2, "xor": 2, "and": 3, "in": 4, "contains": 4, "=": 5, "~": 5, "!=": 5, "!~": 5,
           "<": 6, ">": 6, "<=": 6, ">=": 6, "|": 7, "is": 8, "as": 8, "+": 9, "-": 9, "&": 9, "*": 10, "/": 10,
           "div": 10, "mod": 10}
_KEYWORDS = {"and", "or", "xor", "implies", "in", "contains", "is", "as", "div", "mod", "true", "false"}

Ast = tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise Refused("unexpected end")
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise Refused(f"expected {value!r}, found {tok[1]!r}")

    def parse(self) -> Ast:
        ast = self.expression(0)
        if self.peek() is not None:
            raise Refused(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return ast

    def expression(self, min_prec: int) -> Ast:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] not in ("op", "id") or tok[1] not in _BINARY:
                return left
            op = tok[1]
            prec = _BINARY[op]
            if prec < min_prec:
                return left
            self.take()
            if op in ("is", "as"):
                left = ("typeop", op, left, self.type_name())
                continue
            right = self.expression(prec + 1)
            left = ("op", op, left, right)

    def type_name(self) -> str:
        kind, value = self.take()
        if kind not in ("id", "qid"):
            raise Refused("type name expected")
        name = value.strip("`")
        if self.peek() == ("op", "."):  # FHIR.Patient, System.String
            self.take()
            name = f"{name}.{self.take()[1]}"
        return name

    def unary(self) -> Ast:
        tok = self.peek()
        if tok in (("op", "-"), ("op", "+")):
            self.take()
            inner = self.unary()
            return inner if tok[1] == "+" else ("neg", inner)  # type: ignore[index]
        return self.postfix(self.term())

    def term(self) -> Ast:
        kind, value = self.take()
        if kind == "str":
            return ("lit", [_unescape(value[1:-1])], "String")
        if kind == "num":
            if self.peek() is not None and self.peek()[0] == "str":  # type: ignore[index]
                raise Refused("quantity literal")
            return ("lit", [float(value) if "." in value else int(value)], "Decimal" if "." in value else "Integer")
        if kind == "date":
            raise Refused("date/time literal")
        if kind == "var":
            return ("var", value[1:].strip("`'"))
        if kind == "op" and value == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        if kind == "op" and value == "{":
            self.expect("}")
            return ("lit", [], None)
        if kind == "id" and value in ("true", "false"):
            return ("lit", [value == "true"], "Boolean")
        if kind in ("id", "qid"):
            name = value.strip("`") if kind == "qid" else value
            if kind == "id" and name in _KEYWORDS - {"contains", "is", "as", "in"}:
                raise Refused(f"keyword {name} as a term")
            if self.peek() == ("op", "("):
                return ("fn", None, name, self.arguments())
            return ("member", None, name)
        raise Refused(f"unexpected {value!r}")

    def arguments(self) -> list[Ast]:
        self.expect("(")
        args: list[Ast] = []
        if self.peek() == ("op", ")"):
            self.take()
            return args
        while True:
            args.append(self.expression(0))
            tok = self.take()
            if tok == ("op", ")"):
                return args
            if tok != ("op", ","):
                raise Refused("expected , or )")

    def postfix(self, ast: Ast) -> Ast:
        while True:
            tok = self.peek()
            if tok == ("op", "."):
                self.take()
                kind, value = self.take()
                if kind not in ("id", "qid"):
                    raise Refused("name expected after .")
                name = value.strip("`")
                ast = ("fn", ast, name, self.arguments()) if self.peek() == ("op", "(") else ("member", ast, name)
            elif tok == ("op", "["):
                self.take()
                index = self.expression(0)
                self.expect("]")
                ast = ("index", ast, index)
            else:
                return ast


# ---------------------------------------------------------------- compiler
_LAMBDA = {"where", "all", "select", "exists", "repeat"}  # functions whose argument runs once per input item
_CONSTANTS = {"ucum", "sct", "loinc"}
_HOISTABLE = {"startsWith", "endsWith", "contains", "matches", "replaceMatches"}  # computed String arguments


def _literal(ast: Ast) -> bool:
    return ast[0] == "lit" or (ast[0] == "var" and ast[1] in _CONSTANTS)


def _independent(ast: Ast) -> bool:
    """Whether the value of `ast` is the same wherever it is evaluated in one evaluation: it starts from literals,
    %resource, %rootResource or %ucum-like constants, never from the focus or $this (a where() / all() / select() /
    iif() criterion runs on the items of its own source, so it may use them)."""
    kind = ast[0]
    if kind == "lit":
        return True
    if kind == "var":
        return ast[1] in _CONSTANTS or ast[1] in ("resource", "rootResource")
    if kind == "member":
        return ast[1] is not None and _independent(ast[1])
    if kind == "fn":
        _, src, name, args = ast
        if src is None or not _independent(src):
            return False
        return name in _LAMBDA or name in ("iif", "ofType", "as", "is") or all(_independent(a) for a in args)
    if kind in ("index", "op"):
        return _independent(ast[-2]) and _independent(ast[-1])
    if kind in ("neg", "typeop"):
        return _independent(ast[1] if kind == "neg" else ast[2])
    return False


class _Compiler:
    def __init__(self, base: str | None) -> None:
        self.base = base

    def compile(self, ast: Ast, static: str | None, at_start: bool) -> tuple[Fn, str | None]:
        """(closure over (focus, env), static type path of its result). `at_start`: the expression's first term,
        where a type name selects rather than navigates."""
        kind = ast[0]
        if kind == "lit":
            values = ast[1]
            return (lambda focus, env: values), ast[2] and ("System." + ast[2] if ast[2] != "String" else "String")
        if kind == "var":
            return self.variable(ast[1])
        if kind == "member":
            src_ast, name = ast[1], ast[2]
            if src_ast is None:
                if at_start and name[:1].isupper():
                    return self.type_filter(name, static)
                return _member(None, name, static)
            src, src_static = self.compile(src_ast, static, at_start)
            return _member(src, name, src_static)
        if kind == "fn":
            return self.function(ast, static, at_start)
        if kind == "index":
            src, src_static = self.compile(ast[1], static, at_start)
            idx, _ = self.compile(ast[2], static, True)

            def index(focus: Collection, env: Env) -> Collection:
                items = src(focus, env)
                i = idx([env.this], env)
                if not i:
                    return []
                if len(i) != 1 or not isinstance(i[0], int) or isinstance(i[0], bool):
                    raise Undecided("index")
                return [items[i[0]]] if 0 <= i[0] < len(items) else []

            return index, src_static
        if kind == "neg":
            inner, st = self.compile(ast[1], static, at_start)

            def neg(focus: Collection, env: Env) -> Collection:
                v = inner(focus, env)
                if not v:
                    return []
                if len(v) == 1 and isinstance(v[0], int | float) and not isinstance(v[0], bool):
                    return [-v[0]]
                raise Undecided("negation")

            return neg, st
        if kind == "op":
            return self.binary(ast[1], ast[2], ast[3], static, at_start)
        if kind == "typeop":
            return self.type_operator(ast[1], ast[2], ast[3], static, at_start)
        raise Refused(f"{kind}")

    # -- terms
    def variable(self, name: str) -> tuple[Fn, str | None]:
        if name == "this":
            return (lambda focus, env: [env.this] if env.this is not None else []), None
        if name == "resource":
            return (lambda focus, env: [env.resource]), None
        if name == "rootResource":
            return (lambda focus, env: [env.root]), None
        if name == "ucum":
            return (lambda focus, env: ["http://unitsofmeasure.org"]), "String"
        if name == "sct":
            return (lambda focus, env: ["http://snomed.info/sct"]), "String"
        if name == "loinc":
            return (lambda focus, env: ["http://loinc.org"]), "String"
        raise Refused(f"%{name}")

    def type_filter(self, name: str, static: str | None) -> tuple[Fn, str | None]:
        """A leading type name (`Patient.name`): the focus when it is of that type, as fhirpathpy selects."""
        if static is not None and not _is_resource_path(static) and static.split(".", 1)[0] != name:
            raise Refused(f"leading type name {name} on {static}")

        def select(focus: Collection, env: Env) -> Collection:
            out = [x for x in focus if isinstance(x, dict) and x.get("resourceType") == name]
            if len(out) != len(focus):
                raise Undecided("a leading type name that does not select the focus")
            return out

        return select, name

    # -- operators
    def binary(self, op: str, left_ast: Ast, right_ast: Ast, static: str | None, at_start: bool
               ) -> tuple[Fn, str | None]:
        left, ls = self.compile(left_ast, static, at_start)
        right, rs = self.compile(right_ast, static, True)
        ka, kb = _kind(ls), _kind(rs)
        if op == "and":
            def f_and(focus: Collection, env: Env) -> Collection:
                a = _boolean(left(focus, env))
                if a is False:
                    b = right(focus, env)  # evaluated as the engine does, so that its errors are the same
                    _boolean(b)
                    return [False]
                b2 = _boolean(right(focus, env))
                if b2 is False:
                    return [False]
                return [True] if a is True and b2 is True else []
            return f_and, "System.Boolean"
        if op == "or":
            def f_or(focus: Collection, env: Env) -> Collection:
                a = _boolean(left(focus, env))
                b = _boolean(right(focus, env))
                if a is True or b is True:
                    return [True]
                return [False] if a is False and b is False else []
            return f_or, "System.Boolean"
        if op == "xor":
            def f_xor(focus: Collection, env: Env) -> Collection:
                a = _boolean(left(focus, env))
                b = _boolean(right(focus, env))
                return [] if a is None or b is None else [a is not b]
            return f_xor, "System.Boolean"
        if op == "implies":
            def f_implies(focus: Collection, env: Env) -> Collection:
                a = _boolean(left(focus, env))
                b = _boolean(right(focus, env))
                if a is False:
                    return [True]
                if a is True:
                    return _as_result(b)
                return [True] if b is True else []
            return f_implies, "System.Boolean"
        if op in ("=", "!="):
            negate = op == "!="

            def f_eq(focus: Collection, env: Env) -> Collection:
                r = _equal(left(focus, env), right(focus, env), ka, kb)
                return [] if r is None else [r is not negate]
            return f_eq, "System.Boolean"
        if op in ("<", ">", "<=", ">="):
            test = {"<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
                    ">=": lambda a, b: a >= b}[op]

            def f_cmp(focus: Collection, env: Env) -> Collection:
                pair = _order(left(focus, env), right(focus, env), ka, kb)
                return [] if pair is None else [test(*pair)]
            return f_cmp, "System.Boolean"
        if op in ("in", "contains"):
            elem, coll, ke, kc = (left, right, ka, kb) if op == "in" else (right, left, kb, ka)

            def f_in(focus: Collection, env: Env) -> Collection:
                e = elem(focus, env)
                if not e:
                    return []
                if len(e) != 1:
                    raise Undecided("membership of several items")
                items = coll(focus, env)
                for x in items:
                    if _equal_items(e[0], x, ke, kc):
                        return [True]
                return [False]
            return f_in, "System.Boolean"
        if op == "|":
            def f_union(focus: Collection, env: Env) -> Collection:
                return _distinct([*left(focus, env), *right(focus, env)])
            return f_union, ls if ls == rs else None
        if op == "&":
            def f_concat(focus: Collection, env: Env) -> Collection:
                a, b = left(focus, env), right(focus, env)
                if len(a) > 1 or len(b) > 1 or any(not isinstance(x, str) for x in (*a, *b)):
                    raise Undecided("& of non-strings")
                return [(a[0] if a else "") + (b[0] if b else "")]
            return f_concat, "String"
        if op in ("+", "-", "*", "div", "mod", "/"):
            def f_arith(focus: Collection, env: Env) -> Collection:
                a, b = left(focus, env), right(focus, env)
                if not a or not b:
                    return []
                if len(a) != 1 or len(b) != 1:
                    raise Undecided("arithmetic on collections")
                x, y = a[0], b[0]
                if op == "+" and isinstance(x, str) and isinstance(y, str):
                    return [x + y]
                if not (isinstance(x, int) and isinstance(y, int)) or isinstance(x, bool) or isinstance(y, bool):
                    raise Undecided("arithmetic beyond integers")  # decimals and quantities keep their precision
                if op == "+":
                    return [x + y]
                if op == "-":
                    return [x - y]
                if op == "*":
                    return [x * y]
                raise Undecided(f"integer {op}")
            return f_arith, ls
        raise Refused(f"operator {op}")

    def type_operator(self, op: str, src_ast: Ast, type_name: str, static: str | None, at_start: bool
                      ) -> tuple[Fn, str | None]:
        return self.typed(op, src_ast, type_name, static, at_start)

    def typed(self, op: str, src_ast: Ast, type_name: str, static: str | None, at_start: bool
              ) -> tuple[Fn, str | None]:
        """is / as / ofType: on a choice element (valueQuantity for value.ofType(Quantity)) or on resources."""
        name = type_name.removeprefix("FHIR.")
        if src_ast[0] == "member":
            parent_ast, member = src_ast[1], src_ast[2]
            if parent_ast is None:
                parent, parent_static = (lambda focus, env: focus), static
            else:
                parent, parent_static = self.compile(parent_ast, static, at_start)
            keys, _ = _navigation(parent_static, member) if parent_static is not None else ((), None)
            if len(keys) > 1:  # a choice element: its key for that type, if the model allows it
                key = member + name[:1].upper() + name[1:]
                if key not in keys:
                    raise Refused(f"{member} cannot be a {name}")
                nav, _ = _member(None, key, None)

                generic, _ = _member(None, member, parent_static)

                def choice(focus: Collection, env: Env) -> Collection:
                    items = parent(focus, env)
                    found = nav(items, env)
                    if op != "is":
                        return found
                    present = generic(items, env)
                    if not present:
                        return []
                    if len(present) > 1:
                        raise Undecided("is on several items")
                    return [bool(found)]
                return choice, name
        if not name[:1].isupper() or type_name.startswith("System."):
            raise Refused(f"{op} {type_name} on a value that is not a choice element")
        src, _ = self.compile(src_ast, static, at_start)

        def resource_type(focus: Collection, env: Env) -> Collection:
            items = src(focus, env)
            hits = []
            for x in items:
                rtype = x.get("resourceType") if isinstance(x, dict) else None
                if not isinstance(rtype, str):
                    raise Undecided(f"{op} {name} on a value that is not a resource")
                if _type_is(rtype, name):
                    hits.append(x)
            if op == "is":
                if not items:
                    return []
                if len(items) > 1:
                    raise Undecided("is on several items")
                return [bool(hits)]
            return hits
        return resource_type, None

    # -- functions
    def function(self, ast: Ast, static: str | None, at_start: bool) -> tuple[Fn, str | None]:
        _, src_ast, name, args = ast
        if name in ("ofType", "as", "is"):
            if len(args) != 1 or args[0][0] != "member" or args[0][1] is not None:
                raise Refused(f"{name}() with that argument")
            src = src_ast if src_ast is not None else ("this_focus",)
            if src[0] == "this_focus":
                raise Refused(f"{name}() on the focus")
            return self.typed(name if name != "ofType" else "as", src, args[0][2], static, at_start)
        if src_ast is None:
            src: Fn = lambda focus, env: focus  # noqa: E731
            src_static = static
        else:
            src, src_static = self.compile(src_ast, static, at_start)
        n = len(args)
        if name in _LAMBDA and n == 1:
            crit, crit_static = self.compile(args[0], src_static, True)
            return self.lambda_fn(name, src, crit, crit_static, src_static)
        if name == "iif" and n in (2, 3):
            return self.iif(src, [self.compile(a, src_static, True)[0] for a in args])
        if name == "trace":
            return src, src_static
        simple = _SIMPLE.get((name, n))
        if simple is not None:
            if n and not all(_literal(a) for a in args):
                if name not in _HOISTABLE:
                    raise Refused("a function argument that is not a literal")
                return (self.apply_hoisted(name, src, simple, [self.hoisted_argument(a) for a in args]),
                        _RESULT_TYPE.get(name, src_static))
            if n:
                arg_fns = [self.literal_argument(a) for a in args]
                values = [f([], Env(None, None, None, None, {})) for f in arg_fns]
                return self.apply_simple(src, simple, values), _RESULT_TYPE.get(name, src_static)
            return self.apply_simple(src, simple, []), _RESULT_TYPE.get(name, src_static)
        if name in ("intersect", "combine", "union", "exclude") and n == 1:
            other, _ = self.compile(args[0], static, True)  # evaluated at $this, as fhirpathpy's AnyAtRoot

            def set_op(focus: Collection, env: Env) -> Collection:
                a = src(focus, env)
                b = other([env.this], env)
                if name == "combine":
                    return [*a, *b]
                if name == "union":
                    return _distinct([*a, *b])
                keys = {_key(x) for x in b}
                if name == "exclude":
                    return [x for x in a if _key(x) not in keys]
                return _distinct([x for x in a if _key(x) in keys])
            return set_op, src_static
        if name == "resolve" and n == 0:
            def resolve(focus: Collection, env: Env) -> Collection:
                out = []
                for item in src(focus, env):
                    ref = item.get("reference") if isinstance(item, dict) else item if isinstance(item, str) else None
                    if env.scope is not None and ref:
                        target = env.scope.resolve(ref)
                        if target is not None:
                            out.append(target)
                return out
            return resolve, None
        if name in ("memberOf", "conformsTo") and n == 1:
            url_values = self.literal_argument(args[0])([], Env(None, None, None, None, {}))
            if len(url_values) != 1 or not isinstance(url_values[0], str):
                raise Refused(f"{name}() without a literal url")
            url = url_values[0]

            def scoped(focus: Collection, env: Env) -> Collection:
                items = src(focus, env)
                if env.scope is None:
                    raise Undecided("no scope")
                if name == "memberOf":  # as profiles.fhirpath's memberOf(), on this scope
                    if len(items) != 1:
                        return []
                    answers = [env.scope.member_of(url, system, code) for system, code in _codings(items[0])]
                    if any(a is True for a in answers):
                        return [True]
                    return [False] if answers and all(a is False for a in answers) else []
                if len(items) != 1 or not isinstance(items[0], dict):
                    return []
                answer = env.scope.conforms_to(items[0], url)
                return [] if answer is None else [answer]
            return scoped, "System.Boolean"
        if name in ("htmlChecks", "htmlchecks", "htmlChecks2") and n == 0:
            check = _div_ok if name != "htmlChecks2" else _div_has_content

            def html(focus: Collection, env: Env) -> Collection:
                items = src(focus, env)
                if len(items) != 1 or not isinstance(items[0], str):
                    return [False]
                return [check(items[0])]
            return html, "System.Boolean"
        if name == "extension" and n == 1:
            url_values = self.literal_argument(args[0])([], Env(None, None, None, None, {}))
            if len(url_values) != 1 or not isinstance(url_values[0], str):
                raise Refused("extension() without a literal url")
            url = url_values[0]

            def extension(focus: Collection, env: Env) -> Collection:
                return [e for x in src(focus, env) if isinstance(x, dict)
                        for e in (x.get("extension") if isinstance(x.get("extension"), list) else [])
                        if isinstance(e, dict) and e.get("url") == url]
            return extension, "Extension"
        raise Refused(f"function {name}/{n}")

    def literal_argument(self, ast: Ast) -> Fn:
        if not _literal(ast):
            raise Refused("a function argument that is not a literal")
        return self.compile(ast, None, True)[0]

    def hoisted_argument(self, ast: Ast) -> Fn:
        """An argument that does not depend on the focus (`%resource.differential.element.first().path & '.'`):
        computed once per evaluation, not once per item of an all() or where() around its function (on the engine,
        sdf-8a re-reads every differential element for each element: time cubic in a differential repeated)."""
        if not _independent(ast):
            raise Refused("a function argument that depends on the focus")
        fn, _ = self.compile(ast, None, True)

        def hoisted(focus: Collection, env: Env) -> Collection:
            memo = env.hoisted
            value = memo.get(hoisted)
            if value is None:
                value = memo[hoisted] = fn([], env)
            return value
        return hoisted

    def apply_hoisted(self, name: str, src: Fn, fn: Callable[..., Collection], arg_fns: list[Fn]) -> Fn:
        """A string function whose arguments are computed: as the engine, nothing is computed on an empty input;
        each argument is a singleton string (FHIRPath N1 §4.5: empty → an empty result, several items → an error:
        Undecided, as is an empty substring of contains(), on which fhirpathpy raises)."""
        def apply(focus: Collection, env: Env) -> Collection:
            items = src(focus, env)
            if not items:
                return []
            values = [a(focus, env) for a in arg_fns]
            for v in values:
                if len(v) > 1 or (v and not isinstance(v[0], str)):
                    raise Undecided(f"{name}() argument not a single string")
                if not v and name == "contains":
                    raise Undecided("contains() with an empty argument")
            return fn(items, *values)
        return apply

    def lambda_fn(self, name: str, src: Fn, crit: Fn, crit_static: str | None, src_static: str | None
                  ) -> tuple[Fn, str | None]:
        def each(focus: Collection, env: Env) -> list[tuple[Any, Collection]]:
            return [(x, crit([x], Env(x, env.resource, env.root, env.scope, env.hoisted))) for x in src(focus, env)]

        if name == "where" or name == "exists":
            def where(focus: Collection, env: Env) -> Collection:
                kept = []
                for x, r in each(focus, env):
                    if not r:
                        continue
                    if len(r) != 1 or not isinstance(r[0], bool):
                        raise Undecided("where() criteria not Boolean")
                    if r[0]:
                        kept.append(x)
                return kept if name == "where" else [bool(kept)]
            return where, src_static if name == "where" else "System.Boolean"
        if name == "all":
            def all_(focus: Collection, env: Env) -> Collection:
                for _, r in each(focus, env):
                    if not (len(r) == 1 and r[0] is True):
                        if len(r) > 1 or (r and not isinstance(r[0], bool)):
                            raise Undecided("all() criteria not Boolean")
                        return [False]
                return [True]
            return all_, "System.Boolean"
        if name == "select":
            def select(focus: Collection, env: Env) -> Collection:
                return [y for _, r in each(focus, env) for y in r]
            return select, crit_static
        raise Refused(f"{name}()")

    def iif(self, src: Fn, args: list[Fn]) -> tuple[Fn, str | None]:
        def iif(focus: Collection, env: Env) -> Collection:
            data = src(focus, env)
            if len(data) != 1:
                raise Undecided("iif() on other than one item")
            inner = Env(data[0], env.resource, env.root, env.scope, env.hoisted)
            c = args[0](data, inner)
            if c and (len(c) != 1 or not isinstance(c[0], bool)):
                raise Undecided("iif() criterion not Boolean")
            if c == [True]:
                return args[1](data, inner)
            return args[2](data, inner) if len(args) > 2 else []
        return iif, None

    def apply_simple(self, src: Fn, fn: Callable[..., Collection], values: list[Collection]) -> Fn:
        if not values:
            return lambda focus, env: fn(src(focus, env))
        if len(values) == 1:
            v0 = values[0]
            return lambda focus, env: fn(src(focus, env), v0)
        return lambda focus, env: fn(src(focus, env), *values)


def _fn_not(c: Collection) -> Collection:
    if len(c) != 1:
        return []
    if isinstance(c[0], bool):
        return [not c[0]]
    raise Undecided("not() of a non-Boolean")


def _fn_has_value(c: Collection) -> Collection:
    return [len(c) == 1 and c[0] is not None and not isinstance(c[0], dict | list | _NoValue)]


def _string_fn(op: Callable[[str, Any], Any]) -> Callable[[Collection, Collection], Collection]:
    def fn(c: Collection, arg: Collection) -> Collection:
        s = _string(c)
        if s is None or not arg:
            return []
        if len(arg) != 1 or not isinstance(arg[0], str):
            raise Undecided("string argument")
        return [op(s, arg[0])]
    return fn


def _fn_matches(c: Collection, arg: Collection) -> Collection:
    s = _string(c)
    if s is None or not arg or not arg[0]:
        return []
    return [patterns.compile(arg[0], patterns.DOTALL).found(s)]


def _fn_replace_matches(c: Collection, regex: Collection, repl: Collection) -> Collection:
    """replaceMatches() through profiles.fhirpath's (RE2, `$n` groups, the result bounded at 1 MB): a pattern RE2
    refuses or a group the pattern lacks is the engine's to report; a PatternTimeout is raised as it raises it."""
    s = _string(c)
    if s is None:
        return []
    if len(regex) > 1 or len(repl) > 1 or any(not isinstance(x, str) for x in (*regex, *repl)):
        raise Undecided("replaceMatches() arguments")
    if not regex or not repl:
        return []
    try:
        return [_replace_matches(None, [s], regex[0], repl[0])]
    except patterns.PatternTimeout:
        raise
    except Exception as e:  # re2.error, regex.error, IndexError, the 1 MB bound: the engine answers None
        raise Undecided("replaceMatches()") from e


def _fn_length(c: Collection) -> Collection:
    s = _string(c)
    return [] if s is None else [len(s)]


def _fn_to_integer(c: Collection) -> Collection:
    if not c:
        return []
    if len(c) != 1:
        raise Undecided("toInteger() of several items")
    x = c[0]
    if isinstance(x, bool):
        return [int(x)]
    if isinstance(x, int):
        return [x]
    if isinstance(x, str) and _INTEGER.full(x):
        return [int(x)]
    if isinstance(x, str):
        return []
    raise Undecided("toInteger()")


def _fn_to_string(c: Collection) -> Collection:
    if not c:
        return []
    if len(c) != 1:
        raise Undecided("toString() of several items")
    x = c[0]
    if isinstance(x, str):
        return [x]
    if isinstance(x, bool):
        return ["true" if x else "false"]
    if isinstance(x, int):
        return [str(x)]
    raise Undecided("toString()")


def _fn_substring(c: Collection, start: Collection, length: Collection | None = None) -> Collection:
    s = _string(c)
    if s is None or not start or not isinstance(start[0], int):
        return []
    i = start[0]
    if i < 0 or i >= len(s):
        return []
    if length is None:
        return [s[i:]]
    if not length or not isinstance(length[0], int):
        return []
    return [s[i:i + max(length[0], 0)]]


def _fn_is_distinct(c: Collection) -> Collection:
    return [len(_distinct(c)) == len(c)]


def _all_bool(c: Collection) -> list[bool]:
    if any(not isinstance(x, bool) for x in c):
        raise Undecided("not Booleans")
    return c


_SIMPLE: dict[tuple[str, int], Callable[..., Collection]] = {
    ("exists", 0): lambda c: [bool(c)],
    ("empty", 0): lambda c: [not c],
    ("not", 0): _fn_not,
    ("count", 0): lambda c: [len(c)],
    ("hasValue", 0): _fn_has_value,
    ("first", 0): lambda c: c[:1],
    ("last", 0): lambda c: c[-1:],
    ("tail", 0): lambda c: c[1:],
    ("single", 0): lambda c: c if len(c) <= 1 else (_ for _ in ()).throw(Undecided("single()")),
    ("distinct", 0): _distinct,
    ("isDistinct", 0): _fn_is_distinct,
    ("allTrue", 0): lambda c: [all(_all_bool(c))],
    ("anyTrue", 0): lambda c: [any(_all_bool(c))],
    ("allFalse", 0): lambda c: [not any(_all_bool(c))],
    ("anyFalse", 0): lambda c: [not all(_all_bool(c))],
    ("length", 0): _fn_length,
    ("upper", 0): lambda c: [] if (s := _string(c)) is None else [s.upper()],
    ("lower", 0): lambda c: [] if (s := _string(c)) is None else [s.lower()],
    ("toInteger", 0): _fn_to_integer,
    ("toString", 0): _fn_to_string,
    ("startsWith", 1): _string_fn(lambda s, a: bool(s) and s.startswith(a)),  # '' starts with nothing (fhirpathpy)
    ("endsWith", 1): _string_fn(lambda s, a: bool(s) and s.endswith(a)),
    ("contains", 1): _string_fn(lambda s, a: a in s),
    ("matches", 1): _fn_matches,
    ("replaceMatches", 2): _fn_replace_matches,
    ("substring", 1): _fn_substring,
    ("substring", 2): _fn_substring,
}
_RESULT_TYPE = {"exists": "System.Boolean", "empty": "System.Boolean", "not": "System.Boolean",
                "count": "System.Integer", "hasValue": "System.Boolean", "isDistinct": "System.Boolean",
                "allTrue": "System.Boolean", "anyTrue": "System.Boolean", "allFalse": "System.Boolean",
                "anyFalse": "System.Boolean", "length": "System.Integer", "upper": "String", "lower": "String",
                "toInteger": "System.Integer", "toString": "String", "startsWith": "System.Boolean",
                "endsWith": "System.Boolean", "contains": "System.Boolean", "matches": "System.Boolean",
                "substring": "String", "replaceMatches": "String"}


# ---------------------------------------------------------------- entry points
Invariant = Callable[[Any, dict[str, Any], dict[str, Any], Scope | None], bool]
_CACHE: dict[tuple[str, str | None], tuple[Invariant | None, str]] = {}


def _model_path(base: str | None) -> str | None:
    """The model path of an element from its definition path (Observation.value[x] names no model path)."""
    if base is None or "[x]" in base:
        return None
    return base


def compile_invariant(expression: str, base: str | None) -> Invariant | None:
    """The invariant as a function of (value, %resource, %rootResource, scope) → its verdict, as
    profiles.fhirpath.evaluate reads a result (empty: true; a Boolean first item: it; else true); None when
    the expression is outside the compiled subset (`refusal` says why). The function raises Undecided when it
    cannot answer an instance exactly."""
    return compiled(expression, base)[0]


def refusal(expression: str, base: str | None) -> str:
    """Why `expression` is not compiled ("" when it is)."""
    return compiled(expression, base)[1]


def compiled(expression: str, base: str | None) -> tuple[Invariant | None, str]:
    key = (expression, base)
    hit = _CACHE.get(key)
    if hit is None:
        try:
            ast = _Parser(expression).parse()
            static = _model_path(base)
            fn, _ = _Compiler(static).compile(ast, static, True)
            hit = (_verdict(fn), "")
        except (Refused, RecursionError, ValueError, IndexError) as e:
            hit = (None, str(e) or type(e).__name__)
        _CACHE[key] = hit
    return hit


def _verdict(fn: Fn) -> Invariant:
    def invariant(value: Any, resource: dict[str, Any], root: dict[str, Any], scope: Scope | None) -> bool:
        result = fn([value], Env(value, resource, root, scope, {}))
        if not result:
            return True
        first = result[0]
        return first if isinstance(first, bool) else True

    return invariant
