"""The validator's shortcuts give the answers of the long way: the primitive regex shortcuts
(profiles/primitives.py SURE_MATCH) never accept what the regex refuses, and backbone elements remembered by
content (profiles/checkers.py) get the issues a validator remembering nothing reports, at their own paths."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from profiles import patterns
from profiles.packages import cache_dir
from profiles.primitives import SURE_MATCH
from profiles.validator import Validator
from tests.profiles.worst_cases import WORST

EXAMPLES = cache_dir() / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package" / "example"
VARIANT = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"


def _strings() -> list[str]:
    rng = random.Random(20261207)
    alphabet = "ab1-_. \t\n\r\x0b\x0c\x00\x7f\u00a0\u2003é\ud800"
    out = ["a", " a", "a ", "a b", "a  b", "a\tb", "a\t b", "\x0b", "a\x0cb", "é", "\u00a0", "x" * 100, "a\x01b",
           "http://loinc.org", "LA6706-1", "Genetic variant assessment", "line\nbreak", " "]
    out += [s for pair in WORST.values() for s in pair]
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    return out


@pytest.mark.parametrize("regex", sorted(SURE_MATCH))
def test_a_shortcut_accepts_only_what_its_regex_accepts(regex: str) -> None:
    sure, rx = SURE_MATCH[regex], patterns.compile(regex)
    accepted = [s for s in _strings() if sure(s)]
    assert len(accepted) > 100  # the shortcut does take the ordinary values
    assert [s for s in accepted if not rx.full(s)] == []


def test_the_shortcuts_are_the_r4_types_regexes(validator: Validator) -> None:
    assert {t for t in ("code", "uri", "string") if validator.regex[t].pattern in SURE_MATCH} == {
        "code", "uri", "string"}


def _keys(v: Validator, doc: dict[str, Any]) -> list[tuple[str, str, str | None, str]]:
    return [(i.severity, i.code, i.expression, i.message) for i in v.validate(doc)]


def _variants() -> list[dict[str, Any]]:
    docs = [orjson.loads(f.read_bytes()) for f in sorted(EXAMPLES.glob("Observation-*.json"))]
    return [d for d in docs if VARIANT in (d.get("meta") or {}).get("profile", [])]


def test_remembered_components_report_what_a_validator_without_memo_reports(validator: Validator) -> None:
    docs = _variants()
    assert len(docs) > 30
    # mutants: components with an error of their own, moved to other positions, and with an extension (not
    # remembered): the issues replayed must carry the component's own index
    for doc in docs[:10]:
        comps = doc.get("component") or []
        if len(comps) < 2:
            continue
        bad = copy.deepcopy(doc)
        bad["component"][0]["valueString"] = "x"  # a second value[x] (or a type the slice refuses)
        bad["component"][1]["unknownProperty"] = 1
        moved = copy.deepcopy(bad)
        moved["component"] = list(reversed(moved["component"]))
        extended = copy.deepcopy(bad)
        extended["component"][0]["extension"] = [{"url": "http://example.org/x", "valueReference": {
            "reference": "Patient/nowhere"}}]
        docs += [bad, moved, extended]
    plain = Validator(validator.defs, memo=False)
    remembering = Validator(validator.defs)
    for doc in docs + docs:  # the second round replays the remembered components
        assert _keys(remembering, doc) == _keys(plain, doc), doc.get("id")
    assert any(key[1] == "BackboneElement" for key in remembering.memo)  # components were remembered
    assert any(k[0] == "error" and ".component[" in (k[2] or "") for d in docs for k in _keys(plain, d))


def test_bundles_with_remembered_components_match_a_validator_without_memo(validator: Validator) -> None:
    bundles = [orjson.loads(f.read_bytes()) for f in sorted(EXAMPLES.glob("Bundle-*.json"))]
    assert bundles
    plain = Validator(validator.defs, memo=False)
    remembering = Validator(validator.defs)
    for doc in bundles + bundles:
        assert _keys(remembering, doc) == _keys(plain, doc), doc.get("id")


def _questionnaires_and_code_systems() -> list[dict[str, Any]]:
    """The installed packages' Questionnaires and CodeSystems, and variants the natives must not get wrong."""
    found = []
    for f in sorted(cache_dir().glob("*/package/**/*.json")):
        if f.name.startswith(("Questionnaire-", "CodeSystem-")) and f.stat().st_size < 200_000:
            doc = orjson.loads(f.read_bytes())
            if doc.get("resourceType") in ("Questionnaire", "CodeSystem"):
                found.append(doc)
        if len(found) >= 40:
            break
    item = {"linkId": "a", "type": "group", "item": [{"linkId": "b", "type": "string"}]}
    found += [
        {"resourceType": "Questionnaire", "status": "draft", "item": [item, copy.deepcopy(item)]},  # a repeats
        {"resourceType": "Questionnaire", "status": "draft", "item": [item]},
        {"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": 5, "type": "string"},
                                                                      {"linkId": "5", "type": "string"}]},
        {"resourceType": "Questionnaire", "status": "draft", "url": [{"linkId": "a"}], "item": [item]},
        {"resourceType": "Questionnaire", "status": "draft", "linkId": "a", "item": [item]},  # the root is not one
        {"resourceType": "CodeSystem", "status": "draft", "content": "complete",
         "concept": [{"code": "x", "concept": [{"code": "y"}]}, {"code": "z"}]},
        {"resourceType": "CodeSystem", "status": "draft", "content": "complete",
         "concept": [{"code": "x", "concept": [{"code": "x"}]}]},  # x repeats, nested
        {"resourceType": "CodeSystem", "status": "draft", "content": "complete", "concept": [{"code": ["x", "y"]}]},
    ]
    return found


@pytest.mark.parametrize("expression", ["descendants().linkId.isDistinct()",
                                        "concept.code.combine($this.descendants().concept.code).isDistinct()"])
def test_the_descendant_walks_hold_only_where_the_engine_holds(expression: str) -> None:
    """que-2 and csd-1 run natively (a walk over the JSON instead of a FHIRPath node per descendant): when the
    native form says the invariant holds, the engine agrees; where it cannot say, the engine decides."""
    from profiles import fhirpath, invariants

    native, fails = invariants.NATIVE[expression], invariants.FAILS_WHEN[expression]
    scope = fhirpath.Scope(lambda ref: None, lambda *a: None, lambda *a: None)
    docs = [d for d in _questionnaires_and_code_systems()
            if (d["resourceType"] == "Questionnaire") == expression.startswith("descendants")]
    holds = failed = 0
    for doc in docs:
        engine = fhirpath.evaluate(expression, doc, doc["resourceType"], doc, doc, scope)
        if native(doc, doc, doc):
            holds += 1
            assert engine is True, doc
        elif fails(doc):
            failed += 1
            assert engine is False, doc
    assert holds and failed  # both answers occur: the test can tell them apart


def test_sdf9_holds_natively_only_where_the_engine_holds() -> None:
    """sdf-9 (no label, code or requirements on a root element) runs natively: its 'holds' is the engine's."""
    from profiles import fhirpath, invariants

    expression = next(e for e in invariants.NATIVE if e.startswith("children().element.where("))
    assert invariants.plan(expression, "StructureDefinition").path == "native"
    docs = []
    for f in sorted(cache_dir().glob("*/package/StructureDefinition-*.json"))[:60]:
        if f.stat().st_size < 200_000:
            docs.append(orjson.loads(f.read_bytes()))
    root = {"id": "Observation", "path": "Observation"}
    docs += [{"resourceType": "StructureDefinition", "differential": {"element": [dict(root, label="x")]}},
             {"resourceType": "StructureDefinition", "snapshot": {"element": [dict(root, code=[{"code": "a"}])]}},
             {"resourceType": "StructureDefinition", "differential": {"element": [root, {"path": "Observation.code",
                                                                                       "label": "fine"}]}},
             {"resourceType": "StructureDefinition", "differential": [{"element": [dict(root, requirements="r")]}]}]
    scope = fhirpath.Scope(lambda ref: None, lambda *a: None, lambda *a: None)
    holds = 0
    for doc in docs:
        engine = fhirpath.evaluate(expression, doc, "StructureDefinition", doc, doc, scope)
        if invariants.NATIVE[expression](doc, doc, doc):
            holds += 1
            assert engine is True, doc
    assert 0 < holds < len(docs)
