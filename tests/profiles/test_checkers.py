"""Profiles compiled into checkers (profiles/checkers.py, profiles/trees.py): compiled once per set of definitions
and shared by the validators over it, nothing compiled again for content already seen, forget() dropping only what
was remembered about content."""

from __future__ import annotations

from typing import Any

import orjson

from profiles.definitions import Definitions
from profiles.packages import cache_dir
from profiles.references import ReferencePolicy
from profiles.validator import Validator

EXAMPLES = cache_dir() / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package" / "example"


def load(name: str) -> dict[str, Any]:
    return orjson.loads((EXAMPLES / name).read_bytes())


def keys(v: Validator, doc: dict[str, Any]) -> list[tuple[str, str, str | None, str]]:
    return [(i.severity, i.code, i.expression, i.message) for i in v.validate(doc)]


def test_validators_over_one_definitions_share_what_was_compiled(validator: Validator) -> None:
    doc = load("Observation-SNVexample.json")
    first = keys(validator, doc)
    same = Validator(validator.defs)
    assert same.trees is validator.trees and same.checkers is validator.checkers
    other = Validator(validator.defs, security_checks=False)  # other options: other checkers, same trees
    assert other.trees is validator.trees and other.checkers is not validator.checkers
    assert keys(same, doc) == first


def test_content_seen_again_compiles_nothing(validator: Validator) -> None:
    docs = [load(p.name) for p in sorted(EXAMPLES.glob("Observation-*.json"))[:20]]
    for d in docs:
        validator.validate(d)
    checkers, trees = validator.checkers, validator.trees
    counts = (len(checkers._objects), len(checkers._values), len(checkers._elements), len(trees.nodes))
    validator.forget()  # nothing remembered about content: every value is checked again, by compiled checkers
    for d in docs:
        validator.validate(d)
    assert (len(checkers._objects), len(checkers._values), len(checkers._elements), len(trees.nodes)) == counts


def test_forget_keeps_the_verdicts(validator: Validator) -> None:
    doc = load("Observation-SNVexample.json")
    doc["status"] = "finished"  # an error, and the memos hold warnings and notes too
    before = keys(validator, doc)
    assert any(sev == "error" for sev, *_ in before)
    validator.forget()
    assert validator.memo == {} and validator.slice_memo == {}
    assert keys(validator, doc) == before
    assert keys(validator, doc) == before  # replayed from the memo


def test_an_unhashable_fetch_gets_checkers_of_its_own(validator: Validator) -> None:
    class Fetch:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, ref: str) -> dict[str, Any] | None:
            return None

    v = Validator(validator.defs, references=ReferencePolicy(fetch=Fetch()))
    assert v.checkers is not validator.checkers
    assert keys(v, load("Observation-SNVexample.json")) == keys(validator, load("Observation-SNVexample.json"))


def test_separate_definitions_are_compiled_apart() -> None:
    sd = orjson.loads((cache_dir() / "hl7.fhir.r4.core#4.0.1" / "package" /
                       "StructureDefinition-Observation.json").read_bytes())
    a, b = Validator(Definitions([sd])), Validator(Definitions([sd]))
    assert a.trees is not b.trees and a.checkers is not b.checkers


def test_the_memos_are_bounded_in_bytes(validator: Validator, monkeypatch: Any) -> None:
    """A stream of large distinct values (a fuzz run's) empties the memos when their keys and remembered issues pass
    memo.BYTES, not only LIMIT entries; verdicts stay those of a first sight."""
    from profiles import memo

    monkeypatch.setattr(memo, "BYTES", 256 * 1024)
    doc = load("Observation-SNVexample.json")
    validator.forget()
    first = keys(validator, doc)
    sizes = []
    for n in range(40):  # 40 CodeableConcepts of ~16 KB each: 640 KB of keys without the bound
        big = orjson.loads(orjson.dumps(doc))
        big["code"]["text"] = f"{n}" + "x" * 16_000
        issues = keys(validator, big)
        assert issues == keys(Validator(validator.defs), big)
        keys_held = sum(len(k[2]) for k in validator.memo if isinstance(k[2], bytes))
        assert keys_held <= memo.held(validator.memo) <= memo.BYTES
        sizes.append(memo.held(validator.memo))
    assert max(sizes) > 128 * 1024  # the large values were remembered until the bound, then the memo emptied
    assert keys(validator, doc) == first
    validator.forget()
    assert memo.held(validator.memo) == 0 and not validator.memo


def test_names_a_client_invents_are_not_remembered(validator: Validator) -> None:
    """Unknown profile URLs and resource types (unbounded: one per request of a fuzzer or a hostile client) leave
    nothing behind in the compiled trees, and get the same verdict every time."""
    trees = validator.trees
    doc = load("Observation-SNVexample.json")
    for warm in (doc, dict(doc, meta={"profile": ["http://example.org/StructureDefinition/w"]}), {"resourceType": "W"}):
        keys(validator, warm)  # what every such validation compiles once (the base definitions it falls back on)
    nodes, types = len(trees.nodes), len(trees.type_nodes)
    for n in range(3):
        meta = {"profile": [f"http://example.org/StructureDefinition/unknown-{n}-" + "x" * 1000]}
        first = keys(validator, dict(doc, meta=meta))
        assert keys(validator, dict(doc, meta=meta)) == first
        assert any("unknown-" in i[3] for i in first)
        odd = keys(validator, {"resourceType": f"Unknown{n}" + "y" * 1000})
        assert odd and odd == keys(validator, {"resourceType": f"Unknown{n}" + "y" * 1000})
    assert (len(trees.nodes), len(trees.type_nodes)) == (nodes, types)


def test_code_systems_and_value_sets_a_client_invents_are_not_remembered(validator: Validator) -> None:
    tx = validator.tx
    systems, expansions = len(tx._cs_codes), len(tx._expansions)
    for n in range(3):
        assert tx.system_codes(f"http://example.org/cs-{n}") is None
        assert tx.expand(f"http://example.org/vs-{n}") is None
    assert (len(tx._cs_codes), len(tx._expansions)) == (systems, expansions)
    assert tx.expand("http://hl7.org/fhir/ValueSet/observation-status") is not None
    assert len(tx._expansions) > expansions or "http://hl7.org/fhir/ValueSet/observation-status" in tx._expansions


def _altered(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Observations whose category and component lists (checked whole from the memo, when seen before) differ from
    the example's in the ways that change a verdict: items missing, reordered, repeated, wrong, extended, other
    language."""
    import copy

    edits = [lambda x: x["category"].pop(), lambda x: x["category"].reverse(),
             lambda x: x["category"].append({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                                                         "code": "GE"}]}),
             lambda x: x["category"][0].__setitem__("text", 5),
             lambda x: x.__setitem__("language", "de"),
             lambda x: x["category"][0]["coding"][0].__setitem__("display", "Wrong display"),
             lambda x: x["component"].append(copy.deepcopy(x["component"][0])),
             lambda x: x["component"][0].__setitem__("code", {"text": "z"}),
             lambda x: x.__setitem__("_component", [{"id": "a"}]),
             lambda x: x["component"][0].__setitem__("modifierExtension", [{"url": "http://x.org/a",
                                                                            "valueString": "x"}])]
    out = []
    for edit in edits:
        changed = copy.deepcopy(doc)
        if "category" in changed and "component" in changed:
            edit(changed)
            out.append(changed)
    return out


def test_lists_remembered_whole_get_the_verdicts_of_a_walk(validator: Validator) -> None:
    """Observation.category and .component are checked once per content of their items and replayed after: over
    altered variant Observations, seen in turn, backwards and again, every verdict is that of a validator without
    memos, and the lists were remembered whole."""
    docs = [load(p.name) for p in sorted(EXAMPLES.glob("Observation-*.json"))[:15]]
    everything = [d for doc in docs for d in (doc, *_altered(doc))]
    assert len(everything) > 3 * len(docs)
    plain = Validator(validator.defs, memo=False)
    validator.forget()
    for doc in everything + everything[::-1] + everything:
        assert keys(validator, doc) == keys(plain, doc)
    assert any(k[1] == "whole" for k in validator.memo)
