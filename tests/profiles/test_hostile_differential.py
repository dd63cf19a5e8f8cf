"""A fuzzed input (bench/fuzz/fuzz_fhir_json.py, 2026-12-07): a 1 MB StructureDefinition whose `differential`
(max 1) is an array of 300 copies, 6,000 elements, took ~50 s of CPU. sdf-8a, on each differential, checks every
element's path against `%resource.differential.element.first().path.replaceMatches('\\..*','')&'.'`: on the
FHIRPath engine that argument is read again for each element, over all the copies' elements, per copy (cubic). The
compiled form computes it once per evaluation. Here the input is rebuilt small (300 copies of five elements, 47 KB
of JSON), and the work is counted, not timed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from profiles import fhirpath
from profiles import fhirpath_compiler as fc
from profiles.validator import Validator

COPIES, ELEMENTS = 300, 5


def repeated_differential(kind: Any = "resource") -> dict[str, Any]:
    paths = ["AuditEvent", *(f"AuditEvent.{n}" for n in ("agent", "agent.type", "source", "entity")[:ELEMENTS - 1])]
    return {"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/repeat",
            "name": "Repeat", "status": "draft", "kind": kind, "abstract": False, "type": "AuditEvent",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/AuditEvent", "derivation": "constraint",
            # distinct objects, as a JSON reader makes them
            "differential": [{"element": [{"path": p} for p in paths]} for _ in range(COPIES)]}


# `kind` as an object: a later fuzzed input (bench/fuzz/fuzz_http_validate.py, 433 KB, 14.7 s of CPU) whose equality
# `%resource.kind = 'logical'` the compiled form left to the engine, cubic again
@pytest.mark.parametrize("kind", ["resource", {"modifierExtension": {"profile": "x"}}, 5, True])
def test_a_differential_repeated_300_times_is_reported_with_bounded_work(validator: Validator, kind: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    engine: Counter[str] = Counter()
    evaluate = fhirpath.evaluate

    def counted_engine(expression: str, *args: Any) -> bool | None:
        engine[expression] += 1
        return evaluate(expression, *args)

    replaced = Counter()
    replace_matches = fc._replace_matches

    def counted_replace(*args: Any) -> Any:
        replaced["calls"] += 1
        return replace_matches(*args)

    monkeypatch.setattr(fhirpath, "evaluate", counted_engine)
    monkeypatch.setattr(fc, "_replace_matches", counted_replace)
    issues = validator.validate(repeated_differential(kind))
    assert any("StructureDefinition.differential: max allowed = 1, but found 300" in i.message for i in issues), \
        [i.message for i in issues]
    assert not [e for e in engine if "replaceMatches" in e], "sdf-8a runs compiled, not on the engine"
    # the argument once per differential (300), not once per element of each (1,200)
    assert 0 < replaced["calls"] <= COPIES
    assert sum(engine.values()) <= COPIES + 10  # what still runs on the engine is linear in the copies


def test_the_engine_has_a_budget_per_validation(validator: Validator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path sent as a number leaves sdf-8a to the engine (the compiled form does not decide startsWith() on it),
    where it is cubic in the copies: past invariants.ENGINE_SECONDS of engine CPU in one validation the rest is
    reported as not checked, once per invariant, and the other findings stay."""
    from profiles import invariants

    doc = repeated_differential()
    for copy in doc["differential"]:
        copy["element"][1]["path"] = 5
    full = validator.validate(doc)
    engine: Counter[str] = Counter()
    evaluate = fhirpath.evaluate

    def counted_engine(expression: str, *args: Any) -> bool | None:
        engine[expression] += 1
        return evaluate(expression, *args)

    monkeypatch.setattr(fhirpath, "evaluate", counted_engine)
    monkeypatch.setattr(invariants, "ENGINE_SECONDS", 0.0)
    issues = validator.validate(doc)
    unchecked = [i for i in issues if i.code == "too-costly"]
    keys = [i.details for i in unchecked]
    assert "sdf-8a" in keys and len(keys) == len(set(keys)), keys  # each invariant reported once
    assert all("engine budget (0 s of CPU) is spent" in i.message for i in unchecked)
    assert not [e for e in engine if "replaceMatches" in e]

    def others(found: list[Any]) -> list[Any]:
        return [i for i in found if i.code != "too-costly" and not any(f"{k}:" in i.message for k in keys)]

    assert others(issues) == others(full) and others(full)
