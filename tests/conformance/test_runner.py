"""conformance.runner: outcomes per test, `needs` turning into skips, and a broken check costing one test."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from conformance import CHECKS, ERROR, PASS, SKIP, CheckSkipped, Context, load_suite, run_suite

REQ = {"kind": "rest", "text": "t", "source": "https://hl7.org/fhir/R4/http.html"}


def test_a_broken_check_is_an_error_its_dependents_skip_and_the_run_goes_on(
        tmp_path: Path, reference_fhir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(ctx: Context) -> str | None:
        raise KeyError("oops")

    def not_here(ctx: Context) -> str | None:
        raise CheckSkipped("does not apply")

    monkeypatch.setitem(CHECKS, "test-boom", boom)
    monkeypatch.setitem(CHECKS, "test-skip", not_here)
    tests = [{"id": "boom", "title": "B", "check": "test-boom", "requirement": REQ},
             {"id": "after", "title": "A", "check": "capability-statement", "requirement": REQ, "needs": ["boom"]},
             {"id": "skipper", "title": "S", "check": "test-skip", "requirement": REQ, "required": False},
             {"id": "meta", "title": "M", "check": "capability-statement", "requirement": REQ}]
    path = tmp_path / "s.json"
    path.write_bytes(orjson.dumps({"id": "s", "title": "S", "version": "0",
                                   "groups": [{"id": "g", "title": "G", "tests": tests}]}))
    seen = []
    report = run_suite(load_suite(str(path)), reference_fhir, progress=lambda n, total, r: seen.append((n, total)))
    got = {r.test.id: (r.status, r.message) for r in report.results}
    assert got["boom"][0] == ERROR
    assert got["boom"][1].startswith("the check raised KeyError: 'oops' (at test_runner.py:")
    assert got["boom"][1].endswith("this is a kit bug, please report it")
    assert got["after"] == (SKIP, "needs boom (error), which did not pass")
    assert got["skipper"] == (SKIP, "does not apply")
    assert got["meta"][0] == PASS and got["meta"][1].startswith("FHIR 4.0.1")
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [r.test.id for r in report.required_not_passed] == ["boom", "after"]
