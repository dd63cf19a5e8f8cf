"""The generated happy paths (profiles/generated.py) give exactly the issues of the closures alone
(Validator(generated=False)), in the same order: on every example of every installed package, on the genetic ORU^R01
conversions, on every resource of the fhir-test-cases corpus with its case's options, and on mutants of the variant
Observations that leave the happy path at every kind of property (the fallback must take the object whole)."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from profiles import generated
from profiles.definitions import Definitions
from profiles.validator import Validator
from tests.profiles import corpus
from tests.profiles.test_package_examples import EXAMPLES, validator_for

ORU = Path(__file__).resolve().parents[1] / "mappers" / "hl7v2" / "messages"
VARIANT = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"

Key = tuple[str, str, str | None, str]


def _keys(v: Validator, doc: Any, profiles: list[str] | tuple[str, ...] = ()) -> list[Key]:
    return [(i.severity, i.code, i.expression, i.message) for i in v.validate(doc, profiles)]


def _pair(defs: Definitions, **options: Any) -> tuple[Validator, Validator]:
    return Validator(defs, generated=False, **options), Validator(defs, **options)


def _same(old: Validator, new: Validator, doc: Any, profiles: list[str] | tuple[str, ...] = ()) -> None:
    expected = _keys(old, doc, profiles)
    # twice: a checker's happy path is generated at its second use
    assert _keys(new, doc, profiles) == expected, (doc.get("id") if isinstance(doc, dict) else doc)
    assert _keys(new, doc, profiles) == expected, (doc.get("id") if isinstance(doc, dict) else doc)


def _docs() -> dict[str, list[dict[str, Any]]]:
    by_package: dict[str, list[dict[str, Any]]] = {}
    for package, f in EXAMPLES:
        by_package.setdefault(package, []).append(orjson.loads(f.read_bytes()))
    return by_package


@pytest.mark.parametrize("memo", [True, False])
def test_package_examples_and_oru_conversions(memo: bool) -> None:
    from gateway.convert import run
    from gateway.formats import HUB, Request

    docs = _docs()
    assert sum(len(d) for d in docs.values()) > 200
    for package, found in docs.items():
        old, new = _pair(validator_for(package).defs, memo=memo)
        for doc in found:
            _same(old, new, doc)
    old, new = _pair(validator_for("hl7.fhir.uv.genomics-reporting#3.0.0").defs, memo=memo)
    messages = sorted(ORU.glob("*.hl7"))
    assert messages
    for m in messages:
        _same(old, new, orjson.loads(run(m.read_bytes(), Request("hl7v2", HUB, allow_invalid=True)).body))
    assert generated._CODE  # the happy paths were made (and so compared)


def _mutants(doc: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Copies of `doc`, each with one object somewhere in it changed in one way that leaves the happy path (or
    stays on it with a value the closures must judge)."""
    changes = [
        lambda o, k: o.__setitem__(k, [o[k]] if not isinstance(o[k], list) else o[k][0]),  # array ↔ single
        lambda o, k: o.__setitem__(k, None),
        lambda o, k: o.__setitem__(k, []),
        lambda o, k: o.__setitem__("_" + k, {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}),
        lambda o, k: o.__setitem__(k, ""),
        lambda o, k: o.__setitem__(k, " padded "),
        lambda o, k: o.__setitem__(k, "<a href='x'>html</a>"),
        lambda o, k: o.__setitem__(k, 3),
        lambda o, k: o.__setitem__(k, 2**40),
        lambda o, k: o.__setitem__(k, True),
        lambda o, k: o.__setitem__(k, {"id": "dup", "text": "t"}),
        lambda o, k: o[k].__setitem__("id", "an-id") if isinstance(o[k], dict) else o.__setitem__("id", "an-id"),
        lambda o, k: o.__setitem__(k + "Unknown", 1),
        lambda o, k: o.__setitem__("valueBoolean", True),  # a second type of a choice element, or an unknown one
        lambda o, k: o.pop(k),
    ]
    out = []
    for change in changes:
        for _ in range(3):
            mutant = copy.deepcopy(doc)
            stack = [mutant]
            found: list[tuple[dict[str, Any], str]] = []
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    found += [(node, k) for k in node if k != "resourceType"]
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
            obj, key = found[rng.randrange(len(found))]
            try:
                change(obj, key)
            except (KeyError, IndexError, TypeError):
                continue
            out.append(mutant)
    return out


def test_mutants_of_the_variant_observations() -> None:
    defs = validator_for("hl7.fhir.uv.genomics-reporting#3.0.0").defs
    old, new = _pair(defs)
    rng = random.Random(20261207)
    variants = [d for d in _docs()["hl7.fhir.uv.genomics-reporting#3.0.0"]
                if VARIANT in (d.get("meta") or {}).get("profile", [])]
    assert len(variants) > 30
    mutants = [m for d in variants for m in _mutants(d, rng)]
    assert len(mutants) > 1000
    errors = 0
    for doc in variants + mutants:
        _same(old, new, doc)
        errors += any(k[0] == "error" for k in _keys(old, doc))
    assert errors > len(mutants) // 2  # the mutants do leave the happy path


_EXT = [{"url": "http://example.org/x", "valueString": "y"}]


def _datatype_mutants(doc: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Copies of `doc`, each with one object below a property (a datatype value: a Coding, a CodeableConcept, a
    Quantity, a Range, a Reference, a component...) changed in one way that leaves the datatype's happy path (or
    stays on it with a value the closures must judge)."""
    changes = [
        lambda o, k: o.__setitem__(k, "text"),  # a string, a number, an object where another type belongs
        lambda o, k: o.__setitem__(k, 7),
        lambda o, k: o.__setitem__(k, 2.5),
        lambda o, k: o.__setitem__(k, {}),
        lambda o, k: o.__setitem__(k, {"id": "x"}),
        lambda o, k: o.__setitem__(k, {"resourceType": "Patient", "id": "p"}),
        lambda o, k: o.__setitem__(k, [o[k]] if not isinstance(o[k], list) else o[k][0]),  # array ↔ single
        lambda o, k: o.__setitem__(k, None),
        lambda o, k: o.__setitem__(k, ""),
        lambda o, k: o.__setitem__(k, " x "),
        lambda o, k: o.__setitem__("extension", copy.deepcopy(_EXT)),  # extensions on the datatype
        lambda o, k: o.__setitem__("modifierExtension", copy.deepcopy(_EXT)),
        lambda o, k: o.__setitem__("extension", [{"url": "http://example.org/x"}]),
        lambda o, k: o.__setitem__("id", "dt-id"),
        lambda o, k: o.__setitem__("_" + k, {"id": "h"}),  # `_name` holders, with and without the value
        lambda o, k: o.__setitem__("_" + k, {"extension": copy.deepcopy(_EXT)}) or o.pop(k),
        lambda o, k: o.__setitem__("unknownProperty", True),
        lambda o, k: o.__setitem__("coding", [{"system": "http://loinc.org", "code": "LA6576-8", "display": "No"}]),
        lambda o, k: o.__setitem__("coding", {"system": "http://loinc.org", "code": "48018-6"}),
        lambda o, k: o.__setitem__("system", "http://unitsofmeasure.org") or o.__setitem__("code", "kg"),
        lambda o, k: o.__setitem__("value", True),
        lambda o, k: o.pop(k),
        lambda o, k: o.clear() or o.__setitem__("id", "only"),
    ]
    out = []
    for change in changes:
        for _ in range(3):
            mutant = copy.deepcopy(doc)
            found: list[tuple[dict[str, Any], str]] = []
            stack: list[tuple[Any, int]] = [(mutant, 0)]
            while stack:
                node, depth = stack.pop()
                if isinstance(node, dict):
                    if depth >= 2:  # an object in a property (or in an array of one), not the resource
                        found += [(node, k) for k in node]
                    stack.extend((x, depth + 1) for x in node.values())
                elif isinstance(node, list):
                    stack.extend((x, depth) for x in node)
            if not found:
                continue
            obj, key = found[rng.randrange(len(found))]
            try:
                change(obj, key)
            except (KeyError, IndexError, TypeError):
                continue
            out.append(mutant)
    return out


def _nested(doc: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """`doc` as an entry of a Bundle and as a contained resource of another resource (the inlined datatypes
    inside resources inside resources, at other depths of the walk)."""
    inner = {**copy.deepcopy(doc), "id": f"c{n}"}
    inner.pop("meta", None)
    return [{"resourceType": "Bundle", "type": "collection",
             "entry": [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}", "resource": doc}]},
            {"resourceType": "Observation", "status": "final", "code": {"text": "t"}, "contained": [inner],
             "hasMember": [{"reference": f"#c{n}"}]}]


def test_datatype_mutants_of_the_variant_observations() -> None:
    """The datatypes' happy paths (CodeableConcept, Coding, Quantity, Range, Reference...) left in every way, the
    memo on (each document validated twice by each side), alone, in a Bundle and contained."""
    defs = validator_for("hl7.fhir.uv.genomics-reporting#3.0.0").defs
    old, new = _pair(defs)
    rng = random.Random(20261208)
    variants = [d for d in _docs()["hl7.fhir.uv.genomics-reporting#3.0.0"]
                if VARIANT in (d.get("meta") or {}).get("profile", [])]
    mutants = [m for d in variants for m in _datatype_mutants(d, rng)]
    assert len(mutants) > 2000
    errors = 0
    for n, doc in enumerate(variants + mutants):
        _same(old, new, doc)
        if n % 4 == 0:
            for wrapped in _nested(doc, n):
                _same(old, new, wrapped)
        errors += any(k[0] == "error" for k in _keys(old, doc))
    assert errors > len(mutants) // 2


def test_inlined_datatypes_at_the_depth_limit() -> None:
    """A CodeableConcept at the bottom of extensions nested up to and past the walk's depth limit: the generated
    paths report the limit where the closures do."""
    from profiles.checkers import MAX_DEPTH

    defs = validator_for("hl7.fhir.uv.genomics-reporting#3.0.0").defs
    old, new = _pair(defs, memo=False)  # (a remembered CodeableConcept's verdict does not depend on the depth)
    variant = next(d for d in _docs()["hl7.fhir.uv.genomics-reporting#3.0.0"]
                   if VARIANT in (d.get("meta") or {}).get("profile", []))
    limited = 0
    for depth in range(MAX_DEPTH - 6, MAX_DEPTH + 2):
        ext: dict[str, Any] = {"url": "http://example.org/x", "valueCodeableConcept": {
            "coding": [{"system": "http://loinc.org", "code": "48018-6", "display": "Gene studied [ID]"}]}}
        for _ in range(depth):
            ext = {"url": "http://example.org/x", "extension": [ext]}
        doc = {**copy.deepcopy(variant), "extension": [ext]}
        for _ in range(3):  # the happy paths are generated at a checker's second use
            _same(old, new, doc)
        limited += any(k[1] == "too-costly" for k in _keys(old, doc))
    assert 0 < limited < 8


def test_corpus_resources() -> None:
    va = corpus.harness()
    manifest = orjson.loads((va.CORPUS / "manifest-r4-selfcontained.json").read_bytes())
    base = list(va.conformance_resources(va.closure(va.BASE), va.TYPES))
    base_defs = Definitions(base)
    compared = 0
    for case in manifest["test-cases"]:
        options = case.get("options") or {}
        for step, _expected, support, profiles in va.steps(case):
            try:
                resource = va.read(va.CORPUS / case["input"], bool(options.get("allow-comments")))
            except Exception:  # unreadable inputs: the accuracy harness counts them, nothing to compare
                continue
            extra = va.supporting(support)
            old, new = _pair(Definitions([*base, *extra]) if extra else base_defs,
                             security_checks=bool(options.get("security-checks")),
                             examples=options.get("examples", True),
                             html_in_markdown="error" if options.get("noHtmlInMarkdown") else "warning",
                             references=va.reference_policy(case, step), memo=False)
            _same(old, new, resource, profiles)
            compared += 1
    assert compared > 400


def _sliced(node: Any, out: list[Any], seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    for kid in node.children.values():
        if kid.slicing is not None and kid.slices:
            out.append(kid)
        for n in (kid, *kid.slices.values()):
            _sliced(n, out, seen)


def test_slices_told_apart_by_one_code_are_those_the_long_way_finds() -> None:
    from profiles import slicing
    from profiles.run import Run

    v = validator_for("hl7.fhir.uv.genomics-reporting#3.0.0")
    defs = v.defs
    kids: list[Any] = []
    seen: set[int] = set()
    for url in list(defs.structures):
        if isinstance(url, str) and "|" not in url and (root := v.node(url)) is not None:
            _sliced(root, kids, seen)
    planned = [(kid, slicing._plan(v, kid)) for kid in kids]
    tabled = [(kid, plan) for kid, plan in planned if plan.by_code is not None]
    assert len(tabled) >= 10 and any(plan.coded for _, plan in tabled) and any(not plan.coded for _, plan in tabled)
    codings = [{"system": s, "code": c} for _, plan in tabled for (s, c) in plan.by_code]  # type: ignore[union-attr]
    codings += [{"system": "http://loinc.org", "code": "0-0"}, {"system": 1, "code": "x"}, {"code": "48018-6"}]
    rng = random.Random(7)

    def items(path: str) -> list[Any]:
        out: list[Any] = [None, "text", [], {}, {path: None}, {path: []}, {path + "Quantity": {"value": 1}}]
        for _ in range(60):
            picked = [copy.deepcopy(rng.choice(codings)) for _ in range(rng.randint(1, 3))]
            extra = {"display": "d"} if rng.random() < 0.3 else {}
            cc = {"coding": [{**c, **extra} for c in picked]}
            shapes = [cc, cc["coding"], cc["coding"][0], {"coding": cc["coding"][0]}, {"text": "t"},
                      {**cc["coding"][0], "coding": cc["coding"]}, [cc, {"coding": [rng.choice(codings)]}]]
            out += [{path: shape} for shape in shapes]
            out.append({path + "CodeableConcept": cc})
        return out

    run = Run({"resourceType": "Observation"}, validator=v)
    decided = 0
    for kid, plan in tabled:
        for item in items(plan.code_path):
            for typ in ("BackboneElement", "CodeableConcept", "Coding"):
                quick = slicing._pick(plan, item)
                if quick is slicing._MISSING:
                    continue
                v.forget()
                assert quick == slicing._matching(v, plan, kid, item, typ, run), (kid.path, item)
                decided += 1
    assert decided > 2000


def test_a_profile_surely_refused_is_one_the_walk_refuses() -> None:
    from profiles import slicing
    from profiles.run import Run

    v = validator_for("hl7.fhir.uv.genomics-reporting#3.0.0")
    roots: dict[str, list[Any]] = {}
    for url in list(v.defs.structures):
        if isinstance(url, str) and "|" not in url and (root := v.node(url)) is not None and "." not in root.path:
            roots.setdefault(root.path, []).append(root)
    docs = [d for found in _docs().values() for d in found]
    rng = random.Random(11)
    resources = []
    for doc in docs:
        entries = [e.get("resource") for e in doc.get("entry") or [] if isinstance(e, dict)]
        for res in [doc, *entries]:
            if isinstance(res, dict) and res.get("resourceType") in roots:
                resources.append(res)
                cut = copy.deepcopy(res)  # without one property, or with one array cut short
                key = rng.choice([k for k in cut if k != "resourceType"] or ["resourceType"])
                if isinstance(cut.get(key), list) and len(cut[key]) > 1:
                    cut[key] = cut[key][:1]
                else:
                    cut.pop(key, None)
                resources.append(cut)
    refused = walked = 0
    for res in resources:
        for root in roots[res["resourceType"]]:
            if not slicing.surely_refused(v, root, res):
                continue
            refused += 1
            run = Run(res, validator=v, resource=res)
            v.check_object(res, root, root.children, root.path, root.path, run, is_resource=True)
            assert any(i.severity in ("error", "fatal") for i in run.issues), (root.profile_url, res.get("id"))
            walked += 1
    assert refused > 1000 and walked == refused


def _near(rng: random.Random, valid: list[str], n: int) -> list[str]:
    """`valid` and n strings a character or two away from them (digits of other scripts, signs, separators)."""
    alphabet = "0123456789-+:.TZtz eE_aZ\u0663\uff11\u00b2\n"
    out = list(valid)
    for _ in range(n):
        s = list(rng.choice(valid))
        for _ in range(rng.randint(1, 2)):
            op = rng.randrange(3)
            i = rng.randrange(len(s) + 1)
            if op == 0 and s:
                del s[min(i, len(s) - 1)]
            elif op == 1:
                s.insert(i, rng.choice(alphabet))
            elif s:
                s[min(i, len(s) - 1)] = rng.choice(alphabet)
        out.append("".join(s))
    return out


def test_the_regex_shortcuts_accept_only_what_their_regex_accepts() -> None:
    from profiles import patterns
    from profiles.sure import SURE

    rng = random.Random(20261207)

    def date() -> str:
        return f"{rng.randint(0, 9999):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"

    def time() -> str:
        t = f"{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}:{rng.randint(0, 61):02d}"
        return t + rng.choice(["", ".5", ".123456", "."])

    def zone() -> str:
        return rng.choice(["Z", "+01:00", "-05:30", "+14:00", "+14:01", "-13:59", "+15:00", "+1:00"])

    valid = {
        "date": [date()[: rng.choice([4, 7, 10])] for _ in range(300)],
        "instant": [f"{date()}T{time()}{zone()}" for _ in range(300)],
        "time": [time() for _ in range(300)],
        "id": ["a", "A-1.b", "-", "x" * 64, "x" * 65, "8dabbc65-d93a-5b92-a438-cce84bf69c12", "a_b", "é"],
        "number": ["0", "-0", "1", "01", "-12", "3.14", "-0.5", "1.", ".5", "1e5", "1.5E-3", "007", "10"],
    }
    valid["dateTime"] = valid["date"] + valid["instant"]
    samples = {k: _near(rng, v, 3000) for k, v in valid.items()}
    kinds = {"date": "date", "dateTime": "dateTime", "instant": "instant", "time": "time", "id": "id",
             "decimal": "number", "integer": "number", "positiveInt": "number", "unsignedInt": "number"}
    regexes = validator_for("hl7.fhir.uv.genomics-reporting#3.0.0").regex
    assert {t for t in kinds if regexes[t].pattern in SURE} == set(kinds)
    for text, sure in SURE.items():
        rx = patterns.Pattern(text)
        rx._sure = None  # the regex alone
        kind = next((k for t, k in kinds.items() if regexes[t].pattern == text), "id")
        accepted = [s for s in samples[kind] if sure(s)]
        assert len(accepted) > 100 or kind in ("id", "number"), text
        assert [s for s in accepted if not rx.full(s)] == [], text
        assert patterns.compile(text).full(accepted[0]) and rx.full(accepted[0])
