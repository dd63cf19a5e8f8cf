"""Bad input is reported, never a crash: the R4 validator cases of fhir-test-cases with values swapped for wrongly
typed JSON (null, numbers, strings, empty and odd arrays and objects, integers beyond 64 bits), a fixed seed."""

from __future__ import annotations

import contextlib
import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from profiles.definitions import Definitions
from profiles.packages import closure, conformance_resources
from profiles.validator import Validator
from tests.profiles import corpus

JUNK: list[Any] = [None, 1, -3.5, True, "x", "", [], [1], {}, {"a": 1}, [None], ["s"], [{}], {"reference": 5}, 10**30]
MUTATIONS = 600


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield (*prefix, k)
        yield from _paths(v, (*prefix, k))


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


@pytest.fixture(scope="module")
def cases() -> list[tuple[str, dict[str, Any], Validator]]:
    va = corpus.harness()
    base = list(conformance_resources(closure(va.BASE), va.TYPES))
    shared = Validator(Definitions(base))
    manifest = orjson.loads((va.CORPUS / "manifest-r4-selfcontained.json").read_bytes())
    out = []
    for case in manifest["test-cases"]:
        try:
            res = va.read(va.CORPUS / case["input"])
        except Exception:  # inputs that are meant to be unreadable
            continue
        extra = va.supporting(case.get("supporting", []))
        out.append((case["name"], res, Validator(Definitions([*base, *extra])) if extra else shared))
    return out


def test_wrongly_typed_values_are_reported_not_raised(cases: list[tuple[str, dict[str, Any], Validator]]) -> None:
    rng = random.Random(20261124)
    crashes = []
    for _ in range(MUTATIONS):
        name, res, validator = rng.choice(cases)
        paths = list(_paths(res))
        if not paths:
            continue
        mutated = copy.deepcopy(res)
        for _ in range(rng.randint(1, 3)):
            with contextlib.suppress(KeyError, IndexError, TypeError):  # an earlier swap removed the path
                _set(mutated, rng.choice(paths), copy.deepcopy(rng.choice(JUNK)))
        mutated = json.loads(json.dumps(mutated))  # what a JSON reader can give: string keys, big integers kept
        try:
            issues = validator.validate(mutated)
        except Exception as e:
            crashes.append(f"{name}: {type(e).__name__}: {e}")
            continue
        assert all(i.severity in ("fatal", "error", "warning", "information") for i in issues)
    assert crashes == []
