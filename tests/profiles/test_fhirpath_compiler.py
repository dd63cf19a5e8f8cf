"""Compiled FHIRPath invariants (profiles/fhirpath_compiler.py) answer as the FHIRPath engine (fhirpathpy through
profiles/fhirpath.py) does: on every invariant the validator evaluates while validating every example of the
installed packages, the ORU^R01 conversions and the fhir-test-cases corpus, and on copies of each evaluated value
with one property dropped or an array cut short (so that failing verdicts are compared too). And the report of which
path each invariant of the installed packages runs on."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from profiles import fhirpath, invariants
from profiles import fhirpath_compiler as fc
from profiles.packages import cache_dir
from profiles.validator import Validator
from tests.conftest import ROOT
from tests.profiles import corpus


class Comparison:
    """Both answers for every invariant the compiled path answers, and for mutated copies of its value."""

    def __init__(self) -> None:
        self.agreed: Counter[str] = Counter()
        self.failing: Counter[str] = Counter()  # agreed that the invariant fails
        self.undecided = 0
        self.disagreements: list[tuple[str, str, Any, bool, bool | None]] = []
        self._mutated: Counter[tuple[str, str]] = Counter()

    def both(self, expression: str, base: str, value: Any, resource: Any, root: Any, scope: Any) -> None:
        fn = fc.compile_invariant(expression, base)
        assert fn is not None
        try:
            answer = fn(value, resource, root, scope)
        except (fc.Undecided, TypeError, AttributeError, KeyError, ValueError, IndexError):
            self.undecided += 1  # verdict() hands these to the engine
            return
        engine = fhirpath.evaluate(expression, value, base, resource, root, scope)
        if answer != (True if engine is None else engine):  # the validator reads "not evaluable" as holding
            self.disagreements.append((expression, base, value, answer, engine))
            return
        self.agreed[expression] += 1
        if answer is False:
            self.failing[expression] += 1

    def probe(self, expression: str, base: str, value: Any, resource: Any, root: Any, scope: Any, answer: bool,
              engine: bool | None) -> None:
        self.both(expression, base, value, resource, root, scope)
        self._mutated[(expression, base)] += 1
        if self._mutated[(expression, base)] > 20 or not isinstance(value, dict):
            return
        for key, item in value.items():
            dropped = {k: v for k, v in value.items() if k != key}
            if dropped:
                self.both(expression, base, dropped, resource, root, scope)
            if isinstance(item, list) and len(item) > 1:
                self.both(expression, base, {**value, key: item[:1]}, resource, root, scope)


@pytest.fixture
def comparison() -> Iterator[Comparison]:
    c = Comparison()
    invariants.probe = c.probe
    try:
        yield c
    finally:
        invariants.probe = None


def example_resources() -> list[dict[str, Any]]:
    docs = [orjson.loads(p.read_bytes()) for p in sorted(cache_dir().glob("*/package/example/*.json"))]
    from mappers.hl7v2 import to_fhir

    docs += [to_fhir(p.read_bytes()).bundle for p in sorted((ROOT / "tests/mappers/hl7v2/messages").glob("*.hl7"))]
    return docs


def test_compiled_invariants_agree_with_the_engine_on_the_examples(comparison: Comparison,
                                                                   validator: Validator) -> None:
    docs = example_resources()
    assert len(docs) > 250
    for doc in docs:
        validator.validate(doc)
    assert comparison.disagreements == []
    assert len(comparison.agreed) >= 40, "the examples exercise the compiled invariants"
    assert sum(comparison.agreed.values()) > 3000
    assert len(comparison.failing) >= 15, "failing verdicts are compared too (mutated values)"


def test_compiled_invariants_agree_with_the_engine_on_the_corpus(comparison: Comparison) -> None:
    harness = corpus.harness()  # skips, or fails under CI, without the corpus
    harness.evaluate()
    assert comparison.disagreements == []
    assert len(comparison.agreed) >= 60
    assert len(comparison.failing) >= 30


# ---- the compiled subset on hand-made values, beside the engine
def compiled(expression: str, value: Any, base: str | None = None) -> bool:
    fn = fc.compile_invariant(expression, base)
    assert fn is not None, fc.refusal(expression, base)
    resource = value if isinstance(value, dict) and "resourceType" in value else {"resourceType": "Basic"}
    return fn(value, resource, resource, None)


def engine(expression: str, value: Any, base: str) -> bool | None:
    resource = value if isinstance(value, dict) and "resourceType" in value else {"resourceType": "Basic"}
    return fhirpath.evaluate(expression, value, base, resource, resource,
                             fhirpath.Scope(lambda r: None, lambda u, s, c: None, lambda r, u: None))


TRUE, FALSE, EMPTY = "active", "deceasedBoolean", "missing"  # on PATIENT: true, false, absent
PATIENT = {"resourceType": "Patient", "active": True, "deceasedBoolean": False}


@pytest.mark.parametrize(("op", "table"), [
    # FHIRPath N1 §6.5: left operand true / false / empty × right operand true / false / empty
    ("and", ["T", "F", "E", "F", "F", "F", "E", "F", "E"]),
    ("or", ["T", "T", "T", "T", "F", "E", "T", "E", "E"]),
    ("xor", ["F", "T", "E", "T", "F", "E", "E", "E", "E"]),
    ("implies", ["T", "F", "E", "T", "T", "T", "T", "E", "E"]),
])
def test_three_valued_logic(op: str, table: list[str]) -> None:
    operands = [TRUE, FALSE, EMPTY]
    for i, left in enumerate(operands):
        for j, right in enumerate(operands):
            expected = table[i * 3 + j]
            # as an invariant: empty holds, so compare through `.empty()` and `= true` to see all three outcomes
            expression = f"({left} {op} {right})"
            got_empty = compiled(f"{expression}.empty()", PATIENT, "Patient")
            got_true = compiled(f"{expression} = true", PATIENT, "Patient")
            got = "E" if got_empty else "T" if got_true else "F"
            assert got == expected, (expression, got)
            assert compiled(f"{expression}.empty()", PATIENT, "Patient") == engine(
                f"{expression}.empty()", PATIENT, "Patient")


@pytest.mark.parametrize(("expression", "value", "base", "expected"), [
    ("value.exists()", {"valueQuantity": {"value": 1}}, "Observation", True),
    ("value.ofType(Quantity).value > 0", {"valueQuantity": {"value": 1}}, "Observation", True),
    ("value.ofType(Quantity).value > 0", {"valueQuantity": {"value": -1}}, "Observation", False),
    ("value is Quantity", {"valueString": "x"}, "Observation", False),
    ("dataAbsentReason.empty() or value.empty()", {"valueString": "x", "dataAbsentReason": {"text": "x"}},
     "Observation", False),
    ("code.empty() or system.exists()", {"code": "mg"}, "Quantity", False),
    ("low <= high", {"low": {"value": 2}, "high": {"value": 1}}, "Range", False),  # rng-2 without units
    ("low <= high", {"low": {"value": 2, "code": "mg"}, "high": {"value": 1, "code": "g"}}, "Range", True),
    ("low <= high", {"low": {"value": 2, "code": "mg"}, "high": {"value": 1, "code": "m"}}, "Range", True),
    ("where(use = 'home').empty()", {"use": "home"}, "ContactPoint", False),
    ("(identifier.count() + name.count()) > 0", {"identifier": [{"value": "1"}]}, "Organization", True),
    ("fullUrl.contains('/_history/').not()", {"fullUrl": "http://a/Patient/1/_history/2"}, "Bundle.entry", False),
    ("status.exists()", {"_status": {"extension": [{"url": "http://x", "valueString": "y"}]}}, "Observation",
     True),
    ("name.exists() implies name.matches('^[A-Z]([A-Za-z0-9_]){0,254}$')", {"name": "lower"}, "StructureDefinition",
     False),
    ("entry.all(request.exists() = (%resource.type = 'batch'))",
     {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET"}}, {}]}, "Bundle", False),
])
def test_compiled_answers_match_the_engine(expression: str, value: Any, base: str, expected: bool) -> None:
    assert compiled(expression, value, base) is expected
    assert engine(expression, value, base) is expected


@pytest.mark.parametrize(("expression", "value", "base"), [
    ("start <= end", {"start": "2020", "end": "2020-01-01"}, "Period"),  # different precisions
    ("start <= end", {"start": "2020-01-01T10:00:00+02:00", "end": "2020-01-01T09:00:00Z"}, "Period"),  # zones
    ("low <= high", {"low": {"value": 2}, "high": "1"}, "Range"),  # a quantity beside a string
    ("name.given = '2020-01'", {"name": [{"given": ["2020"]}]}, None),  # untyped, and it may be a date
])
def test_what_the_compiled_form_cannot_judge_goes_to_the_engine(expression: str, value: Any, base: str | None
                                                                ) -> None:
    fn = fc.compile_invariant(expression, base)
    assert fn is not None
    with pytest.raises(fc.Undecided):
        fn(value, {"resourceType": "Basic"}, {"resourceType": "Basic"}, None)


def test_expressions_outside_the_subset_are_not_compiled() -> None:
    for expression, why in [("descendants().linkId.isDistinct()", "descendants"),
                            ("%context.grouping.exists()", "%context"),
                            ("effective > @2020-01-01", "date/time literal"),
                            ("value > 4 'mg'", "quantity literal")]:
        assert fc.compile_invariant(expression, "Observation") is None
        assert why in fc.refusal(expression, "Observation")


# ---- arguments that do not depend on the focus: computed once per evaluation
SDF8A = ("(%resource.kind = 'logical' or element.first().path.startsWith(%resource.type)) and (element.tail().empty()"
         " or element.tail().all(path.startsWith(%resource.differential.element.first().path"
         ".replaceMatches('\\\\..*','')&'.')))")
SDF8 = ("(%resource.kind = 'logical' or element.first().path = %resource.type) and element.tail().all("
        "path.startsWith(%resource.snapshot.element.first().path&'.'))")
SCOPE = fhirpath.Scope(lambda r: None, lambda u, s, c: None, lambda r, u: None)


def definition(*elements: list[Any], kind: str = "resource") -> dict[str, Any]:
    """A StructureDefinition whose differential (one, or several: a fuzzed repeat) and snapshot hold `elements`."""
    parts = [{"element": [e if isinstance(e, dict) else {"path": e} for e in els]} for els in elements]
    return {"resourceType": "StructureDefinition", "kind": kind, "type": "Patient",
            "differential": parts[0] if len(parts) == 1 else parts, "snapshot": parts[0]}


@pytest.mark.parametrize("resource", [
    definition(["Patient", "Patient.name"]),
    definition(["Patient", "Observation.code"]),  # fails
    definition(["Patient", "Patient"]),  # fails: 'Patient.' is not a prefix
    definition(["Patient.name", "Patient.name.given", "Patient.x"]),
    definition(["Patient"]),
    definition(["Observation", "Observation.code"]),  # fails, unless logical
    definition(["Observation", "Observation.code"], kind="logical"),
    definition(["Patient", "Patient.a"], ["Patient", "Patient.b"]),
    definition(["Patient", "Patient.a"], ["Observation", "Patient.b"]),  # the first differential's first path
    definition(["Observation", "Patient.a"], ["Patient", "Patient.b"]),
    definition([{"id": "x"}, "Patient.a"]),  # an empty argument: '' & '.'
    definition(["", "Patient.a"]),
    definition(["Patient", {"id": "x"}]),
    definition([{"_path": {"id": "x"}}, "Patient.a"]),  # a path without a value: the engine decides
    definition([3, "Patient.a"]),
    definition(["Patient", ["Patient.a", "Patient.b"]]),
    definition(["Pa(tient", "Pa(tient.a"]),
])
def test_sdf_8_and_8a_answer_as_the_engine(resource: dict[str, Any]) -> None:
    parts = resource["differential"] if isinstance(resource["differential"], list) else [resource["differential"]]
    cases = [(SDF8A, "StructureDefinition.differential", p) for p in parts]
    cases.append((SDF8, "StructureDefinition.snapshot", resource["snapshot"]))
    for expression, base, value in cases:
        fn = fc.compile_invariant(expression, base)
        assert fn is not None, fc.refusal(expression, base)
        engine_answer = fhirpath.evaluate(expression, value, base, resource, resource, SCOPE)
        try:
            answer = fn(value, resource, resource, SCOPE)
        except fc.Undecided:
            assert engine_answer is None, (expression, value)  # the engine cannot evaluate it either
            continue
        assert answer is (True if engine_answer is None else engine_answer), (expression, value)


def test_an_argument_that_does_not_depend_on_the_focus_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Counter()
    real = fc._replace_matches

    def counted(*args: Any) -> Any:
        calls["replaceMatches"] += 1
        return real(*args)

    monkeypatch.setattr(fc, "_replace_matches", counted)
    resource = definition(["Patient", *(f"Patient.e{i}" for i in range(50))])
    fn = fc.compile_invariant(SDF8A, "StructureDefinition.differential")
    assert fn is not None
    assert fn(resource["differential"], resource, resource, SCOPE) is True
    assert calls["replaceMatches"] == 1  # not once per element of the all()
    assert fn(resource["differential"], resource, resource, SCOPE) is True
    assert calls["replaceMatches"] == 2  # once per evaluation: another resource gets its own


@pytest.mark.parametrize(("expression", "value"), [
    ("name.startsWith(%resource.alias)", {"name": "ab", "alias": ["a", "b"]}),  # several items
    ("name.contains(%resource.alias)", {"name": "ab"}),  # empty: fhirpathpy raises
    ("name.startsWith(%resource.version)", {"name": "ab", "version": 1}),  # not a string
    ("name.replaceMatches(%resource.title, 'x').exists()", {"name": "ab", "title": "("}),  # not a pattern
])
def test_computed_arguments_the_engine_cannot_use_are_its_to_decide(expression: str, value: dict[str, Any]) -> None:
    resource = {"resourceType": "StructureDefinition", **value}
    fn = fc.compile_invariant(expression, "StructureDefinition")
    assert fn is not None, fc.refusal(expression, "StructureDefinition")
    with pytest.raises(fc.Undecided):
        fn(resource, resource, resource, SCOPE)
    assert fhirpath.evaluate(expression, resource, "StructureDefinition", resource, resource, SCOPE) is None


@pytest.mark.parametrize(("expression", "expected"), [
    ("name.startsWith(%resource.title)", True),
    ("name.startsWith(%resource.missing)", True),  # an empty argument: an empty result
    ("name.endsWith(%resource.title & 'b')", True),
    ("name.matches(%resource.title & '.$')", True),
    ("name.replaceMatches(%resource.title, %resource.url) = 'zb'", True),
    ("name.replaceMatches(%resource.missing, 'x').empty()", True),
    ("name.startsWith(%resource.url)", False),
    ("name.startsWith(%rootResource.name.replaceMatches('b$', ''))", True),
])
def test_computed_arguments(expression: str, expected: bool) -> None:
    resource = {"resourceType": "StructureDefinition", "name": "ab", "title": "a", "url": "z"}
    assert compiled(expression, resource, "StructureDefinition") is expected
    assert engine(expression, resource, "StructureDefinition") is expected


def test_arguments_that_depend_on_the_focus_are_not_compiled() -> None:
    for expression in ("name.startsWith(title)", "name.startsWith($this.title)", "name.startsWith(first().title)",
                       "name.startsWith(%resource.name.union(title).first())"):
        assert fc.compile_invariant(expression, "StructureDefinition") is None
        assert "depends on the focus" in fc.refusal(expression, "StructureDefinition")
    assert "not a literal" in fc.refusal("name.substring(%resource.version)", "StructureDefinition")


# ---- the report
def test_every_invariant_of_the_installed_packages_has_a_path(validator: Validator) -> None:
    rows = invariants.report(validator.defs.structures)
    paths = Counter(r.path for r in rows)
    assert set(paths) <= {"structural", "rule", "native", "compiled", "fhirpathpy", "mixed"}
    assert {r.key for r in rows if r.path == "structural"} >= {"ele-1", "ext-1"}
    evaluated = [r for r in rows if r.path not in ("structural", "rule")]
    assert sum(r.path in ("native", "compiled") for r in evaluated) / len(evaluated) >= 0.9
    assert all(r.reason for r in rows if r.path == "fhirpathpy")


def test_the_report_through_the_cli() -> None:
    r = subprocess.run([sys.executable, "-m", "gateway.cli.main", "packages", "invariants", "--format", "json"],
                       capture_output=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = orjson.loads(r.stdout)
    assert doc["summary"]["compiled"] > 150
    by_key = {i["key"]: i for i in doc["invariants"]}
    assert by_key["obs-7"]["path"] in ("native", "compiled")
    assert by_key["que-2"]["path"] == "native"  # a walk over the JSON, not a FHIRPath node per descendant
    assert by_key["ig-1"]["path"] == "fhirpathpy" and "%context" in by_key["ig-1"]["reason"]
    assert by_key["sdf-8a"]["path"] == "compiled"  # an argument computed from %resource, once per evaluation
    table = subprocess.run([sys.executable, "-m", "gateway.cli.main", "packages", "invariants", "--path",
                            "fhirpathpy"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert table.returncode == 0
    listed = table.stdout.split("invariants:")[0]
    assert "ig-1" in table.stdout and "que-2" not in listed and "obs-7" not in listed

