"""The validator's shortcuts outside the generated paths give exactly the issues of the long way, in the same order:
invariants settled by a property's absence (invariants.HOLDS_WITHOUT) or failing for sure (FAILS_WHEN), obs-7's
codings looked up one by one, bdl-5 without a set. `long_way()` turns them off (plans without them, the first
native forms), and a validator with the shortcuts is compared with one without on every example of every installed
package, the genetic ORU^R01 conversions, mutants of both, and variants of each resource made for the shortcuts (no
text, text without a div, contained resources, components sharing the resource's code, malformed codings...). Each
shortcut's own claim is also checked directly on every object of those inputs, as are conforms() (each profile's
facts read once, its fixed code by a compiled pattern) and the slice table asked without type tests, against their
first forms."""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from profiles import fhirpath, invariants
from profiles.checkers import Checkers
from profiles.content import every_object
from profiles.definitions import Definitions
from profiles.validator import Validator
from tests.profiles.test_generated import _docs, _mutants
from tests.profiles.test_package_examples import validator_for

ORU = Path(__file__).resolve().parents[1] / "mappers" / "hl7v2" / "messages"
GENOMICS = "hl7.fhir.uv.genomics-reporting#3.0.0"
OBS7 = "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()"

Key = tuple[str, str, str | None, str]


def _first_no_shared_code(components: Any, res: dict[str, Any]) -> bool:
    """obs-7's component half as first written: each component's codes made into a set and intersected."""
    codes = None
    for c in components:
        if isinstance(c, dict):
            if codes is None:
                codes = invariants._codes(res.get("code"))
            if invariants._codes(c.get("code")) & codes:
                return False
    return True


def _first_obs7(v: Any, res: dict[str, Any], root: dict[str, Any]) -> bool:
    return not invariants._has(v, "value") or _first_no_shared_code(v.get("component", []), res)


BDL5 = "resource.exists() or request.exists() or response.exists()"
FIRST_NATIVE = {OBS7: _first_obs7, BDL5: lambda v, res, root: bool({"resource", "request", "response"} & set(v))}


@contextmanager
def long_way() -> Iterator[None]:
    """Plans made while inside have no shortcut: no absent property, no sure failure, the first native forms."""
    shortcut = invariants.plan

    def plain(expression: str, base: str) -> invariants.Plan:
        p = shortcut(expression, base)
        return dataclasses.replace(p, absent=None, fails=None, holds=None,
                                   native=FIRST_NATIVE.get(expression, p.native))

    invariants.plan = plain  # type: ignore[assignment]
    try:
        yield
    finally:
        invariants.plan = shortcut  # type: ignore[assignment]


def _fresh(defs: Definitions) -> Validator:
    """A validator with checkers of its own (made afresh, so that plans are made under the current way)."""
    v = Validator(defs)
    v.checkers = Checkers(v)
    return v


def _keys(v: Validator, doc: Any) -> list[Key]:
    return [(i.severity, i.code, i.expression, i.message) for i in v.validate(doc)]


class Pair:
    """A validator taking the long way and one taking the shortcuts, over the same definitions."""

    def __init__(self, defs: Definitions) -> None:
        with long_way():
            self.old = _fresh(defs)
        self.new = _fresh(defs)
        self.compared = self.issues = 0

    def same(self, doc: Any) -> None:
        with long_way():
            expected = _keys(self.old, doc)
            again = _keys(self.old, doc)  # twice: remembered verdicts and generated paths come at the second use
        assert _keys(self.new, doc) == expected, (doc.get("id") if isinstance(doc, dict) else doc)
        assert _keys(self.new, doc) == again, (doc.get("id") if isinstance(doc, dict) else doc)
        self.compared += 1
        self.issues += len(expected)


def _resources(doc: Any) -> list[dict[str, Any]]:
    return [o for o in every_object(doc) if isinstance(o.get("resourceType"), str)]


def _targeted(doc: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Copies of `doc` with one resource (or element) changed where a shortcut decides."""
    changes = [
        lambda r: r.pop("text", None),
        lambda r: r.__setitem__("text", {"status": "generated"}),
        lambda r: r.__setitem__("text", {"status": "generated", "div": ""}),
        lambda r: r.__setitem__("text", "not an object"),
        lambda r: r.__setitem__("contained", [{"resourceType": "Basic", "id": "c1", "meta": {"versionId": "1"}}]),
        lambda r: r.__setitem__("contained", [{"resourceType": "Basic", "id": "c2", "contained": [
            {"resourceType": "Basic", "id": "c3"}], "meta": {"security": [{"code": "R"}]}}]),
        lambda r: r.__setitem__("contained", "not a list"),
        lambda r: r.__setitem__("component", [{"code": r.get("code")}, {"code": [1]}]),
        lambda r: r.__setitem__("component", [{"code": {"coding": [{"system": ["x"], "code": "y"}]}}]),
        lambda r: r.__setitem__("component", [{"code": {"coding": 3}}]),
        lambda r: r.__setitem__("component", [{"code": {"coding": [{"system": "http://loinc.org",
                                                                    "code": "48018-6"}]}}]),
        lambda r: r.__setitem__("dataAbsentReason", {"text": "x"}),
        lambda r: r.__setitem__("valueString", "v"),
        lambda r: r.__setitem__("subject", {"reference": "#c1"}),
        lambda r: r.__setitem__("subject", {"reference": 5}),
        lambda r: r.__setitem__("subject", {"reference": None}),
        lambda r: r.__setitem__("subject", {"reference": ""}),
        lambda r: r.__setitem__("subject", {"reference": "#"}),
        lambda r: r.__setitem__("subject", {"reference": ["#c1"]}),
        lambda r: r.__setitem__("performer", [{"reference": "#nowhere"}, {"reference": "Patient/p"}]),
        lambda r: r.__setitem__("effectivePeriod", {"start": "2020-02-01", "end": "2020-01-01"}),
        lambda r: r.__setitem__("effectivePeriod", {"end": "2020-01-01"}),
        lambda r: r.__setitem__("valueRange", {"high": {"value": 1}, "low": {"value": 2}}),
        lambda r: r.__setitem__("valueQuantity", {"value": 1, "comparator": "<", "code": "mg"}),
    ]
    out = []
    for change in changes:
        mutant = copy.deepcopy(doc)
        found = _resources(mutant)
        try:
            change(rng.choice(found))
        except (KeyError, IndexError, TypeError, AttributeError):
            continue
        out.append(mutant)
    entries = [e for e in doc.get("entry") or [] if isinstance(e, dict)]
    if entries:  # the Bundle's own invariants: an entry without its fullUrl or resource, a search, a total
        for key in ("fullUrl", "resource", "search", "total", "history", "odd fullUrl"):
            mutant = copy.deepcopy(doc)
            entry = rng.choice(mutant["entry"])
            if key == "history":
                entry["fullUrl"] = f"{entry.get('fullUrl')}/_history/1"
            elif key == "odd fullUrl":
                entry["fullUrl"] = 7
            elif key == "search":
                entry["search"] = {"mode": "match"}
            elif key == "total":
                mutant["total"] = 1
            else:
                entry.pop(key, None)
            out.append(mutant)
    return out


def _oru_docs() -> list[dict[str, Any]]:
    from gateway.convert import run
    from gateway.formats import HUB, Request

    messages = sorted(ORU.glob("*.hl7"))
    assert messages
    return [orjson.loads(run(m.read_bytes(), Request("hl7v2", HUB, allow_invalid=True)).body) for m in messages]


def test_package_examples_oru_conversions_and_their_variants() -> None:
    rng = random.Random(20261207)
    pairs: dict[str, Pair] = {}
    docs = _docs()
    assert sum(len(d) for d in docs.values()) > 200
    docs.setdefault(GENOMICS, []).extend(_oru_docs())
    total = 0
    for package, found in docs.items():
        pair = pairs.setdefault(package, Pair(validator_for(package).defs))
        for i, doc in enumerate(found):
            pair.same(doc)
            for variant in _targeted(doc, rng):
                pair.same(variant)
            if doc.get("resourceType") == "Bundle" or i % 4 == 0:
                for mutant in _mutants(doc, rng)[::3]:
                    pair.same(mutant)
        total += pair.compared
    assert total > 5000


def _scope() -> fhirpath.Scope:
    return fhirpath.Scope(lambda r: None, lambda u, s, c: None, lambda r, u: None)


def _all_objects() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, the resource holding it) for every object of the inputs and their targeted variants."""
    rng = random.Random(3)
    docs = [d for found in _docs().values() for d in found] + _oru_docs()
    out = []
    for doc in docs:
        for d in [doc, *_targeted(doc, rng)]:
            for res in _resources(d):
                out += [(o, res) for o in every_object(res)]
    return out


@pytest.fixture(scope="module")
def objects() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = _all_objects()
    assert len(found) > 50_000
    return found


def test_each_native_holds_without_its_property(objects: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    assert len(invariants.HOLDS_WITHOUT) >= 15
    for expression, key in invariants.HOLDS_WITHOUT.items():
        native = invariants.NATIVE[expression]
        assert native({}, {}, {}) is True
        for o, res in objects[::7]:
            if key in o:
                assert native({k: x for k, x in o.items() if k != key}, res, res) is True, (expression, o)


def test_each_native_holds_where_its_sure_test_says(objects: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """HOLDS_WHEN: where the test is true, the native form holds (final), whatever the resource and root; the
    objects of the inputs and near ones (each test's property set to values of every shape)."""
    assert len(invariants.HOLDS_WHEN) >= 3
    near: list[Any] = [None, "", "#", "#c1", "#x", "x", "Patient/p", "urn:uuid:1/_history/2", "/_history/", 5, 0,
                       True, [], ["#c1"], {}, {"reference": "#c1"}]
    roots = [{}, {"contained": [{"resourceType": "Basic", "id": "c1"}]}, {"contained": "not a list"}]
    for expression, holds in invariants.HOLDS_WHEN.items():
        native = invariants.NATIVE[expression]
        p = invariants.plan(expression, "Element")
        assert p.holds is holds and p.path == "native"
        said = 0
        values = [o for o, _ in objects[::3]]
        values += [{key: x} for key in ("reference", "fullUrl", "resource", "request") for x in near]
        values += [{"resource": {}, "fullUrl": x} for x in near]
        for o in values:
            if holds(o):
                said += 1
                for root in roots:
                    assert native(o, root, root) is True, (expression, o)
        assert said > 100, expression


def test_sure_is_true_only_where_check_reports_nothing(objects: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """invariants.sure(): the element invariants of every compiled checker of the genetic profiles (and Reference,
    Bundle.entry), run on every object of the inputs: where the test says sure, check() reports nothing."""
    from profiles.run import Run

    v = validator_for(GENOMICS)
    nodes = [v.trees.type_node("Reference"), v.node("http://hl7.org/fhir/StructureDefinition/Bundle")]
    stack = [n for n in nodes if n is not None]
    planned: dict[int, Any] = {}
    while stack:
        node = stack.pop()
        if node.constraints:
            plan = invariants.planned(node)
            if invariants.sure(plan) is not None:
                planned[id(node)] = (node, plan)
        for kid in node.children.values():
            stack += [kid, *kid.slices.values()]
    assert any(n.path == "Reference" for n, _ in planned.values())
    assert any(n.path == "Bundle.entry" for n, _ in planned.values())
    said = 0
    for node, plan in planned.values():
        sure = invariants.sure(plan)
        for o, res in objects[::5]:
            if sure(o):
                said += 1
                run = Run(res, resource=res, validator=v)
                invariants.check(plan, node.path, o, "x", run)
                assert not run.issues, (node.path, o, run.issues)
    assert said > 1000


def test_a_sure_failure_fails_on_the_compiled_form_and_the_engine(
        objects: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    checked = 0
    text = "text.`div`.exists()"  # the resources without their text (the descendant walks: test_fast_paths.py)
    for expression, fails in [(text, invariants.FAILS_WHEN[text])]:
        for o, res in objects:
            if o is not res:
                continue
            value = {k: x for k, x in o.items() if k != "text"}
            assert fails(value)
            base = o["resourceType"]
            p = invariants.plan(expression, base)
            assert p.native is not None and not p.native(value, value, value)
            if p.compiled is not None:
                assert p.compiled(value, value, value, _scope()) is False
            if checked < 300:  # the engine is slow: a sample of every kind of resource
                assert fhirpath.evaluate(expression, value, base, value, value, _scope()) is False
            checked += 1
    assert checked > 1000


def _truth(fn: Any, *args: Any) -> bool:
    try:
        return fn(*args) is True
    except (TypeError, AttributeError):
        return False


def test_natives_answer_as_first_written(objects: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    for expression, first in FIRST_NATIVE.items():
        native = invariants.NATIVE[expression]
        held = failed = 0
        for o, res in objects:
            for r in (res, o):
                answer = _truth(native, o, r, r)
                assert answer == _truth(first, o, r, r), (expression, o)
                held += answer
                failed += not answer
        assert held > 100 and failed > 10, expression


def _patterns(v: Validator) -> list[Any]:
    """Every pattern[x] of the compiled profiles (their roots' children, slices and the slices' children)."""
    found: dict[int, Any] = {}
    for url in list(v.defs.structures):
        root = v.node(url) if isinstance(url, str) and "|" not in url else None
        stack = [root] if root is not None else []
        while stack:
            node = stack.pop()
            if node.pattern is not None:
                found[id(node.pattern)] = node.pattern
            for kid in node.children.values():
                stack += [kid, *kid.slices.values()]
    return list(found.values())


def test_a_pattern_test_is_contains_pattern(objects: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    from profiles.matching import contains_pattern, pattern_test

    v = validator_for(GENOMICS)
    patterns = _patterns(v)
    assert len(patterns) > 100
    values: list[Any] = [None, True, False, 0, 1, 1.0, "", "x", [], {}, [None], 2**70]
    values += [o for o, _ in objects[::40]]
    values += [x for o, _ in objects[::40] for x in o.values()]
    held = 0
    for p in patterns:
        test = pattern_test(p)
        near = [p, [p], copy.deepcopy(p)]
        if isinstance(p, dict):
            near += [{**p, "extra": 1}, {k: x for k, x in list(p.items())[1:]}, {k: [x] for k, x in p.items()}]
        for x in values + near:
            assert test(x) == contains_pattern(x, p), (p, x)
            held += test(x)
    assert held > len(patterns)


def _first_conforms(v: Validator, value: Any, url: str, run: Any, strict: bool = False) -> bool:
    """Validator.conforms() as first written (every fact about the profile looked up on each call)."""
    from profiles import content, slicing
    from profiles.definitions import same_canonical
    from profiles.matching import contains_pattern

    if not isinstance(value, dict):
        return False
    key = (id(value), url + "|strict" if strict else url)
    if key in run.conforms:
        return bool(run.conforms[key])
    meta = value.get("meta")
    claimed = content.items(meta.get("profile")) if isinstance(meta, dict) else []
    if any(isinstance(c, str) and same_canonical(url, c) for c in claimed) or (
            not strict and v.defs.is_base(url) and value.get("resourceType") == v.type_of(url)):
        run.conforms[key] = True
        return True
    root = v.node(url)
    if root is None or root.path != value.get("resourceType"):
        run.conforms[key] = False
        return False
    code = root.children.get("code")
    if code is not None and code.pattern is not None and not contains_pattern(value.get("code"), code.pattern):
        run.conforms[key] = False
        return False
    if slicing.surely_refused(v, root, value):
        run.conforms[key] = False
        return False
    run.conforms[key] = True
    sub = run.sub(value)
    v.check_object(value, root, root.children, root.path, root.path, sub, is_resource=True)
    ok = not any(i.severity in ("error", "fatal") for i in sub.issues)
    run.conforms[key] = ok
    return ok


def test_conforms_answers_as_first_written(objects: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    from profiles.run import Run

    v = validator_for(GENOMICS)
    by_type: dict[str, list[str]] = {}
    for url in list(v.defs.structures):
        if isinstance(url, str) and "|" not in url and (t := v.type_of(url)) is not None:
            by_type.setdefault(t, []).append(url)
    resources = [o for o, res in objects if o is res]
    rng = random.Random(5)
    answers = {True: 0, False: 0}
    for res in resources[::3]:
        urls = by_type.get(res["resourceType"], [])
        urls = rng.sample(urls, min(len(urls), 6)) + [f"{u}|9.9" for u in urls[:1]] + ["http://example.org/none"]
        claimed = (res.get("meta") or {}).get("profile")
        urls += [c for c in claimed if isinstance(c, str)] if isinstance(claimed, list) else []
        for url in urls:
            for strict in (False, True):
                first = _first_conforms(v, res, url, Run(res, validator=v, resource=res), strict)
                assert v.conforms(res, url, Run(res, validator=v, resource=res), strict) == first, (url, res.get("id"))
                answers[first] += 1
    assert answers[True] > 200 and answers[False] > 1000, answers


def _first_pick(plan: Any, value: Any) -> Any:
    """slicing._pick as first written (every system and code tested for a string before the table is asked)."""
    from profiles import slicing

    table = plan.by_code
    if not isinstance(value, dict):
        return None
    path = plan.code_path
    if path in value:
        got = value[path]
        found = got if isinstance(got, list) else [got]
    else:
        found = [g for k, got in value.items() if k.startswith(path) and k[len(path):len(path) + 1].isupper()
                 for g in (got if isinstance(got, list) else [got])]
    best = None
    for x in found:
        if not isinstance(x, dict):
            continue
        if plan.coded:
            codings = x.get("coding")
            if not isinstance(codings, list):
                continue
        elif "coding" in x:
            return slicing._MISSING
        else:
            codings = (x,)
        for c in codings:
            if isinstance(c, dict):
                system, code = c.get("system"), c.get("code")
                if isinstance(system, str) and isinstance(code, str):
                    k = table.get((system, code))
                    if k is not None and (best is None or k < best):
                        best = k
    return best


def test_the_slice_table_is_asked_as_first_written(objects: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    from profiles import slicing

    v = validator_for(GENOMICS)
    plans = []
    for url in list(v.defs.structures):
        root = v.node(url) if isinstance(url, str) and "|" not in url else None
        for kid in root.children.values() if root is not None else ():
            if kid.slicing is not None and kid.slices and (plan := slicing._plan(v, kid)).by_code is not None:
                plans.append(plan)
    assert len(plans) >= 10 and any(p.coded for p in plans) and any(not p.coded for p in plans)
    keys = [k for p in plans for k in p.by_code]  # type: ignore[union-attr]
    rng = random.Random(9)
    odd: list[Any] = [None, 1, "x", [], {}, [1], {"a": 1}, True, 1.5]
    codings = [{"system": s, "code": c} for s, c in keys[:40]]
    codings += [{"system": rng.choice(odd), "code": c} for _, c in keys[:20]]
    codings += [{"system": s, "code": rng.choice(odd)} for s, _ in keys[:20]] + odd
    items: list[Any] = [o for o, _ in objects if "code" in o or "coding" in o][::5] + odd
    for _ in range(1500):
        picked = [copy.deepcopy(rng.choice(codings)) for _ in range(rng.randint(1, 3))]
        cc = {"coding": picked}
        items += [{"code": cc}, {"code": picked}, {"code": picked[0]}, {"valueCodeableConcept": cc},
                  {"code": [cc, {"coding": rng.choice(odd)}]}, {"code": {**cc, "coding": picked[0]}}]
    decided = 0
    for plan in plans:
        for item in items:
            expected = _first_pick(plan, item)
            assert slicing._pick(plan, item) == expected, (item,)
            decided += expected is not None and expected is not slicing._MISSING
    assert decided > 1000


def test_an_id_taken_without_the_regex_is_one_the_regex_takes() -> None:
    from profiles import resources

    rng = random.Random(17)
    alphabet = resources._ID_CHARS + " _/:é\u0663\n\t|#"
    ids = ["", "a", "a" * 64, "a" * 65, "-", ".", "A.b-9", " a", "a ", "a\n"]
    ids += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70))) for _ in range(5000)]
    taken = 0
    for rid in ids:
        quick = 0 < len(rid) <= 64 and not rid.strip(resources._ID_CHARS)
        assert quick == resources._ID.full(rid), rid
        taken += quick
    assert taken > 100
