"""The compiled validator (profiles/validator.py: profiles compiled into checkers) gives exactly the issues the
validator before it gave (profiles/legacy_validator.py: the element walk interpreting the definitions) — same
severity, code, details, message and expression, in the same order — on every example of every installed package,
the ORU^R01 conversions, the repository's FHIR examples and every step of the fhir-test-cases corpus (with each
case's options and supporting definitions), validated twice so that remembered verdicts are compared too. The old
validator goes once this has held."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import orjson
import pytest

from mappers.exceptions import Issue
from profiles.context import load
from profiles.legacy_validator import Validator as LegacyValidator
from profiles.packages import cache_dir
from profiles.validator import Validator
from tests.conftest import ROOT
from tests.profiles import corpus

Key = tuple[str, str, str, str, str | None]


def keys(issues: list[Issue]) -> list[Key]:
    return [(i.severity, i.code, i.details, i.message, i.expression) for i in issues]


class Both:
    """Built like a Validator (same arguments), validates with both and records where they differ."""

    differences: ClassVar[list[tuple[str, list[Key], list[Key]]]] = []
    count = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.old = LegacyValidator(*args, **kwargs)
        self.new = Validator(*args, **kwargs)

    def validate(self, resource: Any, profiles: Any = ()) -> list[Issue]:
        old = self.old.validate(resource, profiles)
        new = self.new.validate(resource, profiles)
        Both.count += 1
        if keys(old) != keys(new):
            name = resource.get("id", "?") if isinstance(resource, dict) else "?"
            Both.differences.append((str(name), keys(old), keys(new)))
        return old


def report(differences: list[tuple[str, list[Key], list[Key]]]) -> str:
    lines = []
    for name, old, new in differences[:5]:
        lines.append(f"{name}: {len(old)} issues before, {len(new)} now")
        lines += [f"  only before: {k}" for k in old if k not in new]
        lines += [f"  only now:    {k}" for k in new if k not in old]
        if sorted(map(str, old)) == sorted(map(str, new)):
            lines.append("  (same issues, another order)")
    return "\n".join(lines)


@pytest.fixture
def both() -> Iterator[type[Both]]:
    Both.differences, Both.count = [], 0
    yield Both


def documents() -> list[tuple[str, Any]]:
    docs = [(p.name, orjson.loads(p.read_bytes())) for p in sorted(cache_dir().glob("*/package/example/*.json"))]
    from mappers.hl7v2 import to_fhir

    docs += [(p.name, to_fhir(p.read_bytes()).bundle)
             for p in sorted((ROOT / "tests/mappers/hl7v2/messages").glob("*.hl7"))]
    for p in sorted((ROOT / "examples").glob("*.json")):
        doc = orjson.loads(p.read_bytes())
        if isinstance(doc, dict) and "resourceType" in doc:
            docs.append((p.name, doc))
    return docs


def test_same_issues_on_every_example(both: type[Both]) -> None:
    docs = documents()
    assert len(docs) > 250
    pair = both(load())
    for _ in range(2):  # the second pass replays remembered verdicts
        for _name, doc in docs:
            pair.validate(doc)
            pair.validate(doc, ["http://hl7.org/fhir/StructureDefinition/Bundle"])  # an asked-for profile too
    assert both.count == 4 * len(docs)
    assert both.differences == [], report(both.differences)


def test_same_issues_on_every_corpus_step(both: type[Both], monkeypatch: pytest.MonkeyPatch) -> None:
    harness = corpus.harness()  # skips, or fails under CI, without the corpus
    monkeypatch.setattr(harness, "Validator", both)
    rows = harness.evaluate()
    assert len(rows) >= 400 and both.count >= 400
    assert both.differences == [], report(both.differences)


def test_the_old_validator_is_not_used_elsewhere() -> None:
    users = [str(p.relative_to(ROOT)) for folder in ("profiles", "gateway", "conformance", "mappers", "bench")
             for p in sorted((ROOT / folder).rglob("*.py"))
             if p.name != "legacy_validator.py" and "legacy_validator" in p.read_text()]
    assert users == []

