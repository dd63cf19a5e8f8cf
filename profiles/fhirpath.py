"""FHIRPath invariants through fhirpathpy (R4 model), with the functions core and IG invariants need that it
lacks: hasValue(), resolve() within the Bundle being validated, memberOf() against local ValueSets,
conformsTo() and htmlChecks(). matches() and replaceMatches() run on RE2 (profiles/patterns.py), not on Python's
backtracking `re`. Expressions are compiled once and shared."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.engine.invocations.strings import ensure_string_singleton
from fhirpathpy.engine.nodes import FP_Quantity, ResourceNode
from fhirpathpy.models import models

from profiles import patterns, quantities

R4 = models["r4"]


@dataclass
class Scope:
    """What functions need from the validation in progress."""

    resolve: Callable[[str], dict[str, Any] | None]
    member_of: Callable[[str, str | None, str], bool | None]
    conforms_to: Callable[[dict[str, Any], str], bool | None]


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("helixgate_fhirpath_scope", default=None)
_MAX_STRING = 1024 * 1024
_ACTIVE = patterns.compile(r"<(script|iframe|object|embed|form)\b|\son\w+\s*=|javascript:", patterns.IGNORECASE)
_GROUP_REF = patterns.compile(r"\$(\d+)")


def _has_value(inputs: list[Any]) -> bool:
    return len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)


def _resolve(inputs: list[Any]) -> list[Any]:
    scope = _scope.get()
    out = []
    for item in inputs:
        ref = item.get("reference") if isinstance(item, dict) else item if isinstance(item, str) else None
        if scope is not None and ref:
            target = scope.resolve(ref)
            if target is not None:
                out.append(target)
    return out


def _codings(item: Any) -> list[tuple[str | None, str]]:
    if isinstance(item, str):
        return [(None, item)]
    if isinstance(item, dict):
        if "coding" in item:
            return [(c.get("system"), c.get("code", "")) for c in item["coding"] if c.get("code")]
        if "code" in item:
            return [(item.get("system"), item["code"])]
    return []


def _member_of(inputs: list[Any], url: str) -> list[bool]:
    scope = _scope.get()
    if scope is None or len(inputs) != 1:
        return []
    answers = [scope.member_of(url, system, code) for system, code in _codings(inputs[0])]
    if any(a is True for a in answers):
        return [True]
    if answers and all(a is False for a in answers):
        return [False]
    return []  # unknown: empty, so the invariant does not fail on what cannot be checked


def _conforms_to(inputs: list[Any], url: str) -> list[bool]:
    scope = _scope.get()
    if scope is None or len(inputs) != 1 or not isinstance(inputs[0], dict):
        return []
    answer = scope.conforms_to(inputs[0], url)
    return [] if answer is None else [answer]


def _html_checks(inputs: list[Any]) -> list[bool]:
    """txt-1 (and the xhtml check): an XHTML div, no active content."""
    if len(inputs) != 1 or not isinstance(inputs[0], str):
        return [False]
    return [_div_ok(inputs[0])]


def _html_checks2(inputs: list[Any]) -> list[bool]:
    """txt-2 (the HL7 validator's htmlChecks2()): the narrative has some non-whitespace content."""
    if len(inputs) != 1 or not isinstance(inputs[0], str):
        return [False]
    return [_div_has_content(inputs[0])]


@lru_cache(maxsize=1024)
def _div_ok(div: str) -> bool:  # each narrative meets txt-1 and the xhtml check: judge it once
    div = div.strip()
    return div.startswith("<div") and div.endswith("</div>") and not _ACTIVE.found(div)


def forget() -> None:
    """Drop the narrative verdicts kept per text (a validator's forget())."""
    _div_ok.cache_clear()
    _div_has_content.cache_clear()


@lru_cache(maxsize=1024)
def _div_has_content(div: str) -> bool:
    """Text outside the tags (what removing every `<[^>]*>` leaves) that is not whitespace, or an image. Scanned with
    find(): a narrative holds hundreds of tags, and a regex substitution built them all into a new string."""
    if "<img" in div:
        return True
    pos = 0
    while True:
        start = div.find("<", pos)
        if start < 0:
            return bool(div[pos:].strip())
        if div[pos:start].strip():
            return True
        end = div.find(">", start)
        if end < 0:  # no tag starts here, nor at any later `<` (none is closed): the rest is text
            return bool(div[start:].strip())
        pos = end + 1


def _matches(ctx: Any, coll: list[Any], regex: str) -> list[Any] | bool:
    """FHIRPath matches(): the pattern found anywhere in the string, `.` matching line breaks (FHIRPath N1 §5.6.9,
    "single line mode"), as fhirpathpy's own does, but on RE2."""
    if not regex or not coll:
        return []
    return patterns.compile(regex, patterns.DOTALL).found(ensure_string_singleton(coll))


def _bounded(text: str) -> str:
    """A string an expression built: FHIR strings end at 1 MB (R4 datatypes, string), and replace('', x) chained
    a few times in a Questionnaire's enableWhen expression would otherwise grow one threefold per call."""
    if len(text) > _MAX_STRING:
        raise ValueError("FHIRPath string result over 1 MB")
    return text


def _replace(ctx: Any, coll: list[Any], pattern: Any, repl: Any) -> list[Any] | str:
    """FHIRPath replace() (N1 §5.6.11), as fhirpathpy's own, with its result bounded."""
    out = _BUILTIN_REPLACE(ctx, coll, pattern, repl)
    return _bounded(out) if isinstance(out, str) else out


def _replace_matches(ctx: Any, coll: list[Any], regex: Any, repl: Any) -> list[Any] | str:
    """FHIRPath replaceMatches(): every match replaced, `$1`… standing for the groups (FHIRPath N1 §5.6.10)."""
    string = ensure_string_singleton(coll)
    if isinstance(regex, list) or isinstance(repl, list):
        return []
    pieces: list[str | int] = []  # the replacement template: text, and group numbers
    last = 0
    for m in _GROUP_REF.finditer(repl):
        pieces += [repl[last:m.start()], int(m.group(1) or 0)]
        last = m.end()
    pieces.append(repl[last:])
    return _bounded(patterns.compile(regex).sub(
        lambda m: "".join(p if isinstance(p, str) else (m.group(p) or "") for p in pieces), string))


USER_FUNCTIONS = {
    "hasValue": {"fn": _has_value},
    "resolve": {"fn": _resolve},
    "memberOf": {"fn": _member_of, "arity": {1: ["String"]}},
    "conformsTo": {"fn": _conforms_to, "arity": {1: ["String"]}},
    "htmlChecks": {"fn": _html_checks},
    "htmlchecks": {"fn": _html_checks},
    "htmlChecks2": {"fn": _html_checks2},
}


def _type_fn(ctx: Any, coll: list[Any]) -> list[dict[str, str]]:
    """type() that knows FHIR types: a resource is FHIR.<resourceType> (fhirpathpy says Object), an element the
    R4 model's type for its path (fhirpathpy says object); anything else as fhirpathpy types it."""
    out = []
    for value in coll:
        data = value.data if isinstance(value, ResourceNode) else value
        name = None
        if isinstance(data, dict) and isinstance(data.get("resourceType"), str):
            name = data["resourceType"]
        elif isinstance(value, ResourceNode) and isinstance(data, dict) and value.path:
            name = R4["path2Type"].get(value.path) or (value.path if "." not in value.path else None)
        out.append({"name": name, "namespace": "FHIR"} if name else _BUILTIN_TYPE(ctx, [value])[0])
    return out


def _as_quantity(item: Any) -> dict[str, Any] | None:
    """A FHIR Quantity (an element, e.g. Range.low) or a FHIRPath quantity literal (`5 'mg'`) as a Quantity object."""
    data = item.data if isinstance(item, ResourceNode) else item
    if isinstance(data, FP_Quantity):
        unit = FP_Quantity.timeUnitsToUCUM.get(data.unit, data.unit)
        return {"value": data.value, "code": unit.strip("'"), "system": quantities.UCUM_SYSTEM}
    return data if quantities.is_quantity(data) else None


def _ordering(builtin: Callable[..., Any], holds: Callable[[int], bool]) -> Callable[..., Any]:
    """A FHIRPath ordering operator that compares Quantities (fhirpathpy's compares their JSON objects and raises,
    so rng-2 `low <= high` never ran); everything else goes to fhirpathpy's own."""
    def operator(ctx: Any, a: list[Any], b: list[Any]) -> Any:
        if len(a) == 1 and len(b) == 1:
            qa, qb = _as_quantity(a[0]), _as_quantity(b[0])
            if qa is not None and qb is not None:
                order = quantities.compare(qa, qb)
                return [] if order is None else holds(order)
        return builtin(ctx, a, b)
    return operator


for _op, _holds in (("<", lambda o: o < 0), ("<=", lambda o: o <= 0), (">", lambda o: o > 0),
                    (">=", lambda o: o >= 0)):
    invocation_registry[_op] = {**invocation_registry[_op],
                                "fn": _ordering(invocation_registry[_op]["fn"], _holds)}
_BUILTIN_TYPE = invocation_registry["type"]["fn"]
invocation_registry["type"] = {**invocation_registry["type"], "fn": _type_fn}
_BUILTIN_REPLACE = invocation_registry["replace"]["fn"]
invocation_registry["replace"] = {**invocation_registry["replace"], "fn": _replace}
invocation_registry["matches"] = {**invocation_registry["matches"], "fn": _matches}
invocation_registry["replaceMatches"] = {**invocation_registry["replaceMatches"], "fn": _replace_matches}
_OPTIONS = {"userInvocationTable": USER_FUNCTIONS, "traceFn": lambda *args: None}
_compiled: dict[str, Callable[..., list[Any]] | Exception] = {}
_COMPILED_MAX = 20_000  # definitions hold a few thousand expressions; instances (Questionnaires) bring their own


def compiled(expression: str) -> Callable[..., list[Any]] | Exception:
    """The compiled expression, or the exception that compiling raised (cached either way, up to _COMPILED_MAX)."""
    fn = _compiled.get(expression)
    if fn is None:
        try:
            fn = fhirpathpy.compile(expression, model=R4, options=_OPTIONS)
        except Exception as e:  # fhirpathpy raises plain Exception for unsupported syntax
            fn = e
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        _compiled[expression] = fn
    return fn


def evaluate(expression: str, value: Any, base: str, resource: dict[str, Any], root: dict[str, Any],
             scope: Scope) -> bool | None:
    """Evaluate an invariant on `value` (an element at FHIRPath type path `base`); None when it cannot run.
    Raises patterns.PatternTimeout when a regular expression RE2 cannot run exceeded its time budget."""
    fn = compiled(expression)
    if isinstance(fn, Exception):
        return None
    token = _scope.set(scope)
    try:
        # a resource goes in as it is: wrapped in a node, fhirpathpy no longer matches a leading type name
        # (`Patient.active`) against it, and such invariants would pass unevaluated
        node = value if isinstance(value, dict) and "resourceType" in value else ResourceNode.create_node(value, base)
        result = fn(node, {"resource": resource, "rootResource": root})
    except patterns.PatternTimeout:
        raise
    except Exception:
        return None
    finally:
        _scope.reset(token)
    if not result:
        return True  # an empty result does not fail an invariant
    first = result[0]
    return bool(first) if isinstance(first, bool) else True


def select(expression: str, resource: dict[str, Any]) -> list[Any] | None:
    """What `expression` selects from `resource` (plain values), or None when it cannot be evaluated."""
    fn = compiled(expression)
    if isinstance(fn, Exception):
        return None
    try:
        return list(fn(resource, {"resource": resource, "rootResource": resource}))
    except Exception:
        return None
