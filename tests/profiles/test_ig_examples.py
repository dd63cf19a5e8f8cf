"""Every example of the Genomics Reporting IG 3.0.0 package validates with zero errors against its declared
profiles, and mutated copies each give an error at the right expression."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from profiles.packages import cache_dir
from profiles.validator import Validator

IG = cache_dir() / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package" / "example"
EXAMPLES = sorted(IG.glob("*.json"))


@pytest.fixture(scope="module")
def v(validator: Validator) -> Validator:
    return validator


def load(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())


def errors(v: Validator, res: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(i.code, i.expression or "", i.message) for i in v.validate(res) if i.severity in ("error", "fatal")]


def test_all_examples_are_present() -> None:
    assert len(EXAMPLES) == 204, f"expected the IG's 204 examples in {IG}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_has_no_errors(v: Validator, path: Path) -> None:
    assert errors(v, load(path)) == []


def _genomic(res: dict[str, Any]) -> bool:
    return res.get("resourceType") == "Observation" and any(
        c.get("code") == "GE" for cat in res.get("category", []) for c in cat.get("coding", []))


OBSERVATIONS = [p for p in EXAMPLES if _genomic(load(p)) and load(p).get("meta", {}).get("profile")]


@pytest.mark.parametrize("path", OBSERVATIONS, ids=[p.stem for p in OBSERVATIONS])
def test_mutations_are_caught_where_they_are(v: Validator, path: Path) -> None:
    base = load(path)
    cases: list[tuple[str, dict[str, Any], str, str]] = []

    m = copy.deepcopy(base)
    m.pop("status")
    cases.append(("required element dropped", m, "Observation", "Observation.status: minimum required = 1"))

    profile = v.node(base["meta"]["profile"][0])
    assert profile is not None
    if profile.children["code"].pattern is not None:  # molecular-biomarker fixes no code
        m = copy.deepcopy(base)
        m["code"]["coding"][0]["code"] = "00000-0"
        cases.append(("fixed code changed", m, "Observation.code", "pattern"))

    m = copy.deepcopy(base)
    m["status"] = {"value": "final"}
    cases.append(("wrong value type", m, "Observation.status", "must be a JSON string"))

    # break the first required category slice: drop the categories that match it
    name, required = next((n, s) for n, s in profile.children["category"].slices.items() if s.min >= 1)
    wanted = required.children["coding"].pattern
    wanted = wanted if isinstance(wanted, dict) else wanted[0]
    m = copy.deepcopy(base)
    m["category"] = [c for c in m["category"] if not any(
        all(coding.get(k) == val for k, val in wanted.items()) for coding in c.get("coding", []))]
    cases.append(("slice broken", m, "Observation", name))

    m = copy.deepcopy(base)
    m["dataAbsentReason"] = {"text": "not asked"}
    if not any(k.startswith("value") for k in m):
        m["valueString"] = "x"
    cases.append(("invariant violated", m, "Observation", "obs-6"))

    for name, mutant, where, text in cases:
        found = errors(v, mutant)
        assert any(w == where and text in msg for _, w, msg in found), (name, found)


def test_enough_observation_examples_are_mutated() -> None:
    assert len(OBSERVATIONS) >= 50
