"""The HL7 validator cases of the fhir-test-cases corpus (tests/corpora.py says where it is), read the way
bench/validator_accuracy.py reads them (its manifest, supporting files, options and recorded outcomes), for the tests
that compare with them."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from profiles.definitions import Definitions
from profiles.validator import Validator
from tests import corpora
from tests.conftest import ROOT

NAME = "fhir-test-cases"


def case_file(name: str) -> Path:
    """A file of the corpus's validator/ folder; skips the test (fails it under CI=true) when the corpus is missing."""
    return corpora.corpus(NAME) / "validator" / name


def harness() -> ModuleType:
    """bench/validator_accuracy.py as a module (it is a script, not a package), reading the corpus where
    tests/corpora.py finds it; skips the calling test (fails it under CI=true) when the corpus is missing."""
    corpora.require(NAME)
    return _harness()


@lru_cache(maxsize=1)
def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validator_accuracy", ROOT / "bench" / "validator_accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.CORPUS = corpora.location(NAME)
    return module


def cases(module: str) -> list[Any]:
    """The manifest's cases of one module, for parametrize; without the corpus, one placeholder case that is skipped
    (fails under CI) naming it, so a missing corpus never passes silently as zero tests."""
    def build(folder: Path) -> list[dict[str, Any]]:
        manifest = orjson.loads((folder / "manifest-r4-selfcontained.json").read_bytes())
        return [c for c in manifest["test-cases"] if c["module"] == module]

    return corpora.params(NAME, build)


def assert_error_counts_match(case: dict[str, Any], base: list[dict[str, Any]]) -> None:
    """Each step of `case` (base, and profile where there is one) has the Java validator's recorded error count."""
    va = harness()
    for step, expected, support, profiles in va.steps(case):
        validator = Validator(Definitions([*base, *va.supporting(support)]), security_checks=False,
                              references=va.reference_policy(case, step))
        errors = [i for i in validator.validate(va.read(va.CORPUS / case["input"]), profiles)
                  if i.severity in ("error", "fatal")]
        assert len(errors) == expected["errorCount"], (step, [f"{i.expression}: {i.message}" for i in errors])
