"""The HL7 validator cases of ../shared/corpora/fhir-test-cases, read the way bench/validator_accuracy.py reads them
(its manifest, supporting files, options and recorded outcomes), for the tests that compare with them."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from types import ModuleType
from typing import Any

import orjson

from profiles.definitions import Definitions
from profiles.validator import Validator
from tests.conftest import ROOT


@lru_cache(maxsize=1)
def harness() -> ModuleType:
    """bench/validator_accuracy.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("validator_accuracy", ROOT / "bench" / "validator_accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(module: str) -> list[dict[str, Any]]:
    """The manifest's cases of one module; a missing corpus fails collection loudly rather than yielding no tests."""
    manifest = harness().CORPUS / "manifest-r4-selfcontained.json"
    return [c for c in orjson.loads(manifest.read_bytes())["test-cases"] if c["module"] == module]


def assert_error_counts_match(case: dict[str, Any], base: list[dict[str, Any]]) -> None:
    """Each step of `case` (base, and profile where there is one) has the Java validator's recorded error count."""
    va = harness()
    for step, expected, support, profiles in va.steps(case):
        validator = Validator(Definitions([*base, *va.supporting(support)]), security_checks=False,
                              references=va.reference_policy(case, step))
        errors = [i for i in validator.validate(va.read(va.CORPUS / case["input"]), profiles)
                  if i.severity in ("error", "fatal")]
        assert len(errors) == expected["errorCount"], (step, [f"{i.expression}: {i.message}" for i in errors])
