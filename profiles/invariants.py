"""How each invariant runs. Three paths, fastest first:

- native: hand-written functions for core R4 invariants that sit on nearly every element (NATIVE, keyed by the
  published expression text, so a profile that redefines an invariant gets another path). A native function's
  "holds" is final; when it says "fails", the next path has the last word on the edge cases;
- compiled: the expression compiled into closures over the JSON (profiles/fhirpath_compiler.py), for the subset
  core and IG invariants are written in; an instance it cannot judge exactly goes to the engine;
- fhirpathpy: the FHIRPath engine (profiles/fhirpath.py) for everything else.

`verdict()` runs one invariant on one value; `plan()` says which path an expression takes (bench and CLI reports).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from profiles import fhirpath, fhirpath_compiler, patterns
from profiles.content import every_object
from profiles.fhirpath import _html_checks, _html_checks2
from profiles.quantities import compare as compare_quantities


def _has(v: dict[str, Any], prefix: str) -> bool:
    return any(k.startswith(prefix) and (len(k) == len(prefix) or k[len(prefix)].isupper()) for k in v)


def _strings(node: Any) -> Iterator[str]:
    """Every string in `node` outside `contained` (iterative: content may nest as deep as the JSON reader allows)."""
    stack = [node]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack.extend(x for k, x in v.items() if k != "contained")
        elif isinstance(v, list):
            stack.extend(v)


def _dom3(res: dict[str, Any], root: dict[str, Any]) -> bool:
    contained = res.get("contained") or []
    if not contained:
        return True
    refs = set(_strings({k: v for k, v in res.items() if k != "contained"}))
    for c in contained:
        cid = c.get("id") if isinstance(c, dict) else None
        if cid and f"#{cid}" in refs:
            continue
        if "#" in set(_strings(c)):  # it points back at its container
            continue
        if any(f"#{cid}" in set(_strings(other)) for other in contained if other is not c):
            continue
        return False
    return True


def _le(a: Any, b: Any) -> bool:
    """low <= high for Quantities (profiles/quantities.py: the same unit, none on both, or UCUM units that convert)
    and ISO dates; anything incomparable passes."""
    if isinstance(a, dict) and isinstance(b, dict):
        order = compare_quantities(a, b)
        return order is None or order <= 0
    if isinstance(a, str) and isinstance(b, str):
        n = min(len(a), len(b), 19)
        return a[:n] <= b[:n]
    return True


def _codes(cc: Any) -> set[tuple[Any, Any]]:
    return {(c.get("system"), c.get("code")) for c in (cc or {}).get("coding", []) if isinstance(c, dict)}


def _no_shared_code(components: Any, res: dict[str, Any]) -> bool:
    """obs-7's component half, the resource's codes read once; a component's codings looked up one by one (what
    _codes() would build and intersect, with the same errors on malformed content)."""
    codes = None
    for c in components:
        if c.__class__ is dict or isinstance(c, dict):
            if codes is None:
                codes = _codes(res.get("code"))
            for x in (c.get("code") or {}).get("coding", []):
                if (x.__class__ is dict or isinstance(x, dict)) and (x.get("system"), x.get("code")) in codes:
                    return False
    return True


def _distinct_ids(values: Iterator[Any]) -> bool | None:
    """Whether string ids are distinct; None when one is not a string (the engine decides those)."""
    seen: set[str] = set()
    repeated = False
    for x in values:
        if not isinstance(x, str):
            return None
        repeated = repeated or x in seen
        seen.add(x)
    return not repeated


def _linkids(v: dict[str, Any]) -> Iterator[Any]:
    for d in every_object(v):
        if d is not v and "linkId" in d:
            ids = d["linkId"]
            yield from ids if isinstance(ids, list) else [ids]


def _concept_codes(v: dict[str, Any]) -> Iterator[Any]:
    for d in every_object(v):
        concepts = d.get("concept")
        for c in concepts if isinstance(concepts, list) else [concepts]:
            if isinstance(c, dict) and "code" in c:
                codes = c["code"]
                yield from codes if isinstance(codes, list) else [codes]


def _no_root_definitions(v: dict[str, Any]) -> bool:
    """sdf-9 holds: no root element (a path without '.') of the snapshot or differential — any child of the
    resource with elements — has a label, code or requirements. False: it fails, or the content is odd enough for
    the engine to decide (a path that is not a string, a `_name` holder with elements)."""
    for key, val in v.items():
        for child in val if isinstance(val, list) else [val]:
            if not isinstance(child, dict) or "element" not in child:
                continue
            if key.startswith("_"):
                return False
            elements = child["element"]
            for e in elements if isinstance(elements, list) else [elements]:
                if not isinstance(e, dict) or "path" not in e:
                    continue
                path = e["path"]
                if not isinstance(path, str):
                    return False
                if "." not in path and any(k in e for k in ("label", "code", "requirements")):
                    return False
    return True


NATIVE: dict[str, Callable[[Any, dict[str, Any], dict[str, Any]], bool]] = {
    "contained.contained.empty()": lambda v, res, root: not any(
        isinstance(c, dict) and c.get("contained") for c in v.get("contained", [])),
    "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()": lambda v, res, root: not any(
        isinstance(c, dict) and ((c.get("meta") or {}).get("versionId") or (c.get("meta") or {}).get("lastUpdated"))
        for c in v.get("contained", [])),
    "contained.meta.security.empty()": lambda v, res, root: not any(
        isinstance(c, dict) and (c.get("meta") or {}).get("security") for c in v.get("contained", [])),
    "text.`div`.exists()": lambda v, res, root: bool((v.get("text") or {}).get("div")),
    "dataAbsentReason.empty() or value.empty()": lambda v, res, root: "dataAbsentReason" not in v or not _has(
        v, "value"),
    "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()":
        lambda v, res, root: not _has(v, "value") or _no_shared_code(v.get("component", []), res),
    "code.empty() or system.exists()": lambda v, res, root: "code" not in v or "system" in v,
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
    "%rootResource.contained.id.trace('ids'))": lambda v, res, root: not str(v.get("reference", "")).startswith(
        "#") or v["reference"][1:] in {c.get("id") for c in root.get("contained", []) if isinstance(c, dict)},
    "low.empty() or high.empty() or (low <= high)": lambda v, res, root: _le(v.get("low"), v.get("high")),
    "start.hasValue().not() or end.hasValue().not() or (start <= end)": lambda v, res, root: _le(
        v.get("start"), v.get("end")),
    "comparator.empty()": lambda v, res, root: "comparator" not in v,
    # que-7: fhirpathpy does not take a FHIR boolean for `is Boolean`, as the HL7 validator does
    "operator = 'exists' implies (answer is Boolean)": lambda v, res, root: v.get(
        "operator") != "exists" or "answerBoolean" in v,
    "data.empty() or contentType.exists()": lambda v, res, root: "data" not in v or "contentType" in v,
    "htmlChecks()": lambda v, res, root: _html_checks([v.get("div") if isinstance(v, dict) else v])[0],
    "htmlChecks2()": lambda v, res, root: _html_checks2([v.get("div") if isinstance(v, dict) else v])[0],
    "resource.exists() or request.exists() or response.exists()": lambda v, res, root: (
        "resource" in v or "request" in v or "response" in v),
    "fullUrl.exists() implies fullUrl.contains('/_history/').not()": lambda v, res, root: "/_history/" not in str(
        v.get("fullUrl", "")),
    # que-2 and csd-1: the engine builds a node for every descendant (~3 KB each: 1.3 GB for a fuzzed 9 MB
    # Questionnaire); one walk over the JSON decides string ids (FAILS_WHEN: repeated ones)
    "descendants().linkId.isDistinct()": lambda v, res, root: _distinct_ids(_linkids(v)) is True,
    "concept.code.combine($this.descendants().concept.code).isDistinct()": lambda v, res, root: _distinct_ids(
        _concept_codes(v)) is True,
    # sdf-9: children() on the engine makes a node of every element of every differential (a repeated one: seconds)
    "children().element.where(path.contains('.').not()).label.empty() and children().element.where(path.contains("
    "'.').not()).code.empty() and children().element.where(path.contains('.').not()).requirements.empty()":
        lambda v, res, root: _no_root_definitions(v),
}
def _entries(v: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in v.get("entry") or [] if isinstance(e, dict)]


def _first_is(v: dict[str, Any], rtype: str) -> bool:
    entries = _entries(v)
    return bool(entries) and (entries[0].get("resource") or {}).get("resourceType") == rtype


def _bdl7(v: dict[str, Any]) -> bool:
    keys = [f"{e['fullUrl']}&{((e.get('resource') or {}).get('meta') or {}).get('versionId', '')}"
            for e in _entries(v) if e.get("fullUrl")]
    return v.get("type") == "history" or len(keys) == len(set(keys))


NATIVE.update({  # the Bundle invariants (bdl-*): evaluated once per Bundle, but over every entry
    "total.empty() or (type = 'searchset') or (type = 'history')": lambda v, res, root: "total" not in v or v.get(
        "type") in ("searchset", "history"),
    "entry.search.empty() or (type = 'searchset')": lambda v, res, root: v.get("type") == "searchset" or not any(
        "search" in e for e in _entries(v)),
    "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or %resource.type = "
    "'history'))": lambda v, res, root: all(("request" in e) == (v.get("type") in ("batch", "transaction", "history"))
                                             for e in _entries(v)),
    "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = 'transaction-response' or "
    "%resource.type = 'history'))": lambda v, res, root: all(("response" in e) == (v.get("type") in (
        "batch-response", "transaction-response", "history")) for e in _entries(v)),
    "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()":
        lambda v, res, root: _bdl7(v),
    "type = 'document' implies (identifier.system.exists() and identifier.value.exists())": lambda v, res, root:
        v.get("type") != "document" or bool((v.get("identifier") or {}).get("system")
                                           and (v.get("identifier") or {}).get("value")),
    "type = 'document' implies (timestamp.hasValue())": lambda v, res, root: v.get("type") != "document" or bool(
        v.get("timestamp")),
    "type = 'document' implies entry.first().resource.is(Composition)": lambda v, res, root: v.get(
        "type") != "document" or _first_is(v, "Composition"),
    "type = 'message' implies entry.first().resource.is(MessageHeader)": lambda v, res, root: v.get(
        "type") != "message" or _first_is(v, "MessageHeader"),
})
# A native invariant holds whenever this property is absent from the element's object (its native form returns
# True then, without looking further): the walk tests one key instead of calling the function.
HOLDS_WITHOUT: dict[str, str] = {
    "contained.contained.empty()": "contained",
    "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()": "contained",
    "contained.meta.security.empty()": "contained",
    "dataAbsentReason.empty() or value.empty()": "dataAbsentReason",
    "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()": "component",
    "code.empty() or system.exists()": "code",
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
    "%rootResource.contained.id.trace('ids'))": "reference",
    "low.empty() or high.empty() or (low <= high)": "low",
    "start.hasValue().not() or end.hasValue().not() or (start <= end)": "start",
    "comparator.empty()": "comparator",
    "operator = 'exists' implies (answer is Boolean)": "operator",
    "data.empty() or contentType.exists()": "data",
    "fullUrl.exists() implies fullUrl.contains('/_history/').not()": "fullUrl",
    "total.empty() or (type = 'searchset') or (type = 'history')": "total",
    "entry.search.empty() or (type = 'searchset')": "entry",
    "type = 'document' implies (identifier.system.exists() and identifier.value.exists())": "type",
    "type = 'document' implies (timestamp.hasValue())": "type",
    "type = 'document' implies entry.first().resource.is(Composition)": "type",
    "type = 'message' implies entry.first().resource.is(MessageHeader)": "type",
}
# A native invariant holds whenever this test of the element's object alone is true (exact types: anything else
# goes the long way): the callers (profiles/checkers.py) skip check() for an element whose every invariant has one
# that is true, ref-1 on a Reference that is not local (31 calls per converted ORU^R01 message), bdl-5 and bdl-8 on
# an entry with its resource and a fullUrl without history. See sure().
HOLDS_WHEN: dict[str, Callable[[dict[str, Any]], bool]] = {
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
    "%rootResource.contained.id.trace('ids'))": lambda v: (r := v.get("reference")) is None or (
        r.__class__ is str and r[:1] != "#"),
    "resource.exists() or request.exists() or response.exists()": lambda v: (
        "resource" in v or "request" in v or "response" in v),
    "fullUrl.exists() implies fullUrl.contains('/_history/').not()": lambda v: (u := v.get("fullUrl")) is None or (
        u.__class__ is str and "/_history/" not in u),
}
# A native invariant's "fails" is final (every path answers False) when this holds of the element's object: dom-6
# without any `text` (text.div.exists() is false on the compiled form and the engine alike), the usual warning on a
# converted resource, is reported without the compiled form, the FHIRPath scope and a second native call.
FAILS_WHEN: dict[str, Callable[[dict[str, Any]], bool]] = {
    "text.`div`.exists()": lambda v: "text" not in v,
    "descendants().linkId.isDistinct()": lambda v: _distinct_ids(_linkids(v)) is False,
    "concept.code.combine($this.descendants().concept.code).isDistinct()": lambda v: _distinct_ids(
        _concept_codes(v)) is False,
}
TAKES_TEXT = {"htmlChecks()", "htmlChecks2()"}  # invariants whose element is a primitive (Narrative.div), not an object
RULE_CHECKED: set[str] = set()  # invariants a rule in profiles/rules reports instead
for _expr in (
    "contained.where(((id.exists() and ('#'+id in (%resource.descendants().reference | "
    "%resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url)))) "
    "or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or "
    "descendants().where(as(uri) = '#').exists()).not()).trace('unmatched', id).empty()",
    "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | "
    "%resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = "
    "'#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = "
    "'#').exists()).not()).trace('unmatched', id).empty()",
):
    NATIVE[_expr] = lambda v, res, root: _dom3(v, root)
    # dom-3 as published cannot run on a FHIRPath engine (`.as()` on a collection): rules/contained.py reports
    # orphans in code, as the HL7 validator does, so the invariant itself is not evaluated (fhirpathpy's
    # descendants() on nested contained resources costs time quadratic in their depth, for no verdict)
    RULE_CHECKED.add(_expr)


# ---------------------------------------------------------------- which path each invariant takes
STRUCTURAL = {"ele-1", "ext-1"}  # checked by the element walk itself (elements.NATIVE_KEYS)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one invariant expression runs on elements at one definition path."""

    path: str  # "rule" | "native" | "compiled" | "fhirpathpy"
    native: Callable[[Any, dict[str, Any], dict[str, Any]], bool] | None
    compiled: fhirpath_compiler.Invariant | None
    reason: str  # why it is not compiled ("" when it is)
    absent: str | None = None  # HOLDS_WITHOUT: the property without which the native form holds
    fails: Callable[[dict[str, Any]], bool] | None = None  # FAILS_WHEN: when the native form's "fails" is final
    holds: Callable[[dict[str, Any]], bool] | None = None  # HOLDS_WHEN: when the native form holds, said alone


_PLANS: dict[tuple[str, str], Plan] = {}


def plan(expression: str, base: str) -> Plan:
    """The path `expression` takes on elements at definition path `base` (cached)."""
    key = (expression, base)
    hit = _PLANS.get(key)
    if hit is None:
        native = NATIVE.get(expression)
        fn, reason = fhirpath_compiler.compiled(expression, base)
        path = ("rule" if expression in RULE_CHECKED else "native" if native is not None else
                "compiled" if fn is not None else "fhirpathpy")
        shortcuts = native is not None and expression not in TAKES_TEXT
        hit = _PLANS[key] = Plan(path, native, fn, reason, HOLDS_WITHOUT.get(expression) if shortcuts else None,
                                 FAILS_WHEN.get(expression) if shortcuts else None,
                                 HOLDS_WHEN.get(expression) if shortcuts and path == "native" else None)
    return hit


# Set by the equivalence test: called as probe(expression, base, value, resource, root, scope, compiled answer,
# engine answer) for every invariant the compiled path answers, after evaluating it on the engine as well.
probe: Callable[..., None] | None = None


def verdict(expression: str, base: str, value: Any, resource: dict[str, Any], root: dict[str, Any],
            scope: fhirpath.Scope) -> bool | None:
    """True / False: the invariant holds / fails on `value` (an element at definition path `base`); None: it could
    not be evaluated. Raises patterns.PatternTimeout (from the engine) like fhirpath.evaluate."""
    return run_plan(plan(expression, base), expression, base, value, resource, root, scope)


# CPU seconds one validation may spend on the FHIRPath engine for invariants whose compiled form could not decide
# (content of a shape it did not foresee). The engine recomputes what the compiled form hoists: sdf-8a on a
# differential repeated 300 times, its `kind` a number, is cubic there (minutes for a few hundred KB). Past the
# budget such evaluations are reported as not checked, once per invariant, like a regular expression's budget.
ENGINE_SECONDS = 1.0


class EngineBudget(Exception):
    """This validation's engine budget (ENGINE_SECONDS) is spent."""


def _engine(run: Any, expression: str, base: str, value: Any, resource: dict[str, Any], root: dict[str, Any],
            scope: fhirpath.Scope) -> bool | None:
    spent = run.engine_seconds
    if spent[0] >= ENGINE_SECONDS:
        raise EngineBudget
    t0 = time.thread_time()
    try:
        return fhirpath.evaluate(expression, value, base, resource, root, scope)
    finally:
        spent[0] += time.thread_time() - t0


def run_plan(p: Plan, expression: str, base: str, value: Any, resource: dict[str, Any], root: dict[str, Any],
             scope: fhirpath.Scope, run: Any = None) -> bool | None:
    """verdict() with the plan already looked up (compiled checkers hold each element's plans). With `run`, the
    engine's evaluations after the compiled form could not decide count against the run's budget (EngineBudget)."""
    if p.path == "rule":
        return True
    if p.native is not None and (isinstance(value, dict) or expression in TAKES_TEXT):
        try:
            if p.native(value, resource, root):
                return True
        except (TypeError, AttributeError):  # malformed content (already reported): the next path decides
            pass
    if p.compiled is not None:
        try:
            answer = p.compiled(value, resource, root, scope)
        except fhirpath_compiler.Undecided:
            pass
        except (TypeError, AttributeError, KeyError, ValueError, IndexError):
            pass  # content of a shape the compiled form did not foresee: the engine decides
        else:
            if probe is not None:
                probe(expression, base, value, resource, root, scope, answer,
                      fhirpath.evaluate(expression, value, base, resource, root, scope))
            return answer
        if run is not None:
            return _engine(run, expression, base, value, resource, root, scope)
    return fhirpath.evaluate(expression, value, base, resource, root, scope)


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One invariant of the loaded definitions and the path it takes."""

    key: str
    expression: str  # as evaluated (elements.FIXED_EXPRESSIONS applied)
    path: str  # "structural" | "rule" | "native" | "compiled" | "fhirpathpy" | "mixed"
    elements: int  # how many elements of the definitions carry it
    definitions: tuple[str, ...]  # the StructureDefinitions that carry it (urls)
    reason: str  # why it is not compiled, where it is not


def report(structures: Any) -> list[ReportRow]:
    """Which path each invariant of the StructureDefinitions `structures` (url → definition, as
    Definitions.structures) takes, one row per (key, expression), in the definitions' order."""
    from profiles.elements import NATIVE_KEYS, _expression

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for url, sd in structures.items():
        if not isinstance(sd, dict) or "|" in url or sd.get("url") != url:
            continue
        for el in (sd.get("snapshot") or {}).get("element") or []:
            for c in el.get("constraint") or []:
                if not isinstance(c, dict) or not c.get("expression") or not c.get("key"):
                    continue
                expression = _expression(c["key"], c["expression"])
                row = rows.setdefault((c["key"], expression), {"paths": set(), "elements": 0, "sds": {},
                                                                "reason": ""})
                row["elements"] += 1
                row["sds"][url] = None
                if c["key"] in NATIVE_KEYS:
                    row["paths"].add("structural")
                    continue
                p = plan(expression, el.get("path", ""))
                row["paths"].add(p.path)
                if p.path == "fhirpathpy":
                    row["reason"] = p.reason
    return [ReportRow(key, expr, next(iter(r["paths"])) if len(r["paths"]) == 1 else "mixed", r["elements"],
                      tuple(r["sds"]), r["reason"]) for (key, expr), r in rows.items()]


Planned = tuple[tuple[Any, Plan], ...]  # (elements.Constraint, its plan) for each invariant of an element


def planned(node: Any) -> Planned:
    """The invariants of element `node` with the path each takes, those a rule reports instead (RULE_CHECKED) left
    out: check() would skip them."""
    out = []
    for c in node.constraints:
        p = plan(c.expression, node.path)
        if p.path != "rule":
            out.append((c, p))
    return tuple(out)


def sure(invariants: Planned) -> Callable[[dict[str, Any]], bool] | None:
    """A test of an element's object that is true only when every invariant of `invariants` holds on it (each one's
    HOLDS_WHEN, or its HOLDS_WITHOUT property absent), so that check() would report nothing: the caller skips the
    call. None when one of them has neither."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for _, p in invariants:
        if p.holds is not None:
            tests.append(p.holds)
        elif p.absent is not None:
            tests.append(lambda v, key=p.absent: key not in v)
        else:
            return None
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda v: a(v) and b(v)
    return lambda v: all(t(v) for t in tests)


def check(invariants: Planned, base: str, value: Any, path: str, run: Any) -> None:
    """Evaluate an element's invariants on `value` and report the failing ones (error or warning, as defined)."""
    res = run.resource or run.root
    root = run.container or res
    scope = None
    is_object = value.__class__ is dict or isinstance(value, dict)
    for c, p in invariants:
        if p.path == "rule":
            continue
        native = p.native
        if native is not None:
            if is_object:
                absent = p.absent
                if absent is not None and absent not in value:
                    continue  # the native form holds without it (HOLDS_WITHOUT)
                try:
                    if native(value, res, root):
                        continue  # holds: final (run_plan would answer the same)
                except (TypeError, AttributeError):
                    pass
                else:
                    fails = p.fails
                    # every path answers False (FAILS_WHEN); with a probe set, they answer (the compiler's test)
                    if fails is not None and probe is None and fails(value):
                        sev = "error" if c.severity == "error" else "warning"
                        run.add(sev, "invariant", path, f"Constraint failed: {c.key}: '{c.human}'", c.key)
                        continue
            elif c.expression in TAKES_TEXT:
                try:
                    if native(value, res, root):
                        continue
                except (TypeError, AttributeError):
                    pass
        if scope is None:
            scope = run.scope()
        try:
            ok = run_plan(p, c.expression, base, value, res, root, scope, run)
        except patterns.PatternTimeout:
            run.add("warning", "too-costly", path, f"Constraint not checked: {c.key}: its regular "
                    "expression (one RE2 cannot run) exceeded its time budget", c.key)
            continue
        except EngineBudget:
            if c.key not in run.unchecked:  # once per invariant: the first element it was not checked on
                run.unchecked.add(c.key)
                run.add("warning", "too-costly", path, f"Constraint not checked: {c.key}: here and on the elements "
                        f"after this one, its content needed the FHIRPath engine, and this validation's engine "
                        f"budget ({ENGINE_SECONDS:g} s of CPU) is spent", c.key)
            continue
        if ok is False:
            sev = "error" if c.severity == "error" else "warning"
            run.add(sev, "invariant", path, f"Constraint failed: {c.key}: '{c.human}'", c.key)
