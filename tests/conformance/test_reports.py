"""The three reports: JSON (machines), JUnit XML (CI, agreeing with the exit code) and self-contained HTML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from conformance import (
    ERROR,
    FAIL,
    PASS,
    SKIP,
    Exchange,
    Group,
    Requirement,
    RunReport,
    Suite,
    TestResult,
    TestSpec,
    write_reports,
)
from conformance.reports import render_html, render_json, render_junit

REQ = Requirement("rest", "GET [base]/metadata returns a CapabilityStatement", "https://hl7.org/fhir/R4/http.html")
EXCHANGE = Exchange("GET", "http://127.0.0.1:1/fhir/metadata", {"accept": "application/fhir+json"}, None, 0, 404,
                    "Not Found", {"content-type": "text/html"}, "<html><script>alert('x')</script></html>", 40,
                    elapsed_ms=3.2)


def synthetic_report() -> RunReport:
    """Every status, required and optional, with hostile text in messages and bodies."""
    cases = [("a-pass", PASS, True), ("b-fail", FAIL, True), ("c-error", ERROR, True), ("d-skip", SKIP, True),
             ("e-opt-fail", FAIL, False), ("f-opt-skip", SKIP, False), ("g-opt-error", ERROR, False)]
    specs = [TestSpec(i, f"Test {i} <b>bold?</b>", "capability-statement", REQ, required=req) for i, _, req in cases]
    one, two = Group("one", "Group one", "first & foremost", tuple(specs[:4])), Group("two", "Group two", "", tuple(
        specs[4:]))
    suite = Suite("synthetic", "Synthetic suite", "1.0", "every status", (one, two))
    started = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    results = tuple(TestResult(one if n < 4 else two, spec, status, f"message of {spec.id}: <script>x</script>\x0b",
                               12.5, (EXCHANGE,) if status != PASS else ())
                    for n, (spec, (_, status, _)) in enumerate(zip(specs, cases, strict=True)))
    return RunReport(suite, "http://127.0.0.1:1/fhir", started, started + timedelta(seconds=2), results, "0.1.0")


def test_json_report_is_the_run_as_data() -> None:
    report = synthetic_report()
    doc = orjson.loads(render_json(report))
    assert doc["summary"] == {"pass": 1, "fail": 2, "skip": 2, "error": 2, "total": 7, "passed": False,
                              "requiredNotPassed": ["b-fail", "c-error", "d-skip"]}
    test = doc["groups"][0]["tests"][1]
    assert test["requirement"] == {"kind": "rest", "text": REQ.text, "source": REQ.source}
    assert test["exchanges"][0]["response"]["status"] == 404
    assert test["exchanges"][0]["request"]["headers"] == {"accept": "application/fhir+json"}
    assert [g["id"] for g in doc["groups"]] == ["one", "two"]


def test_junit_has_one_testcase_per_test_and_agrees_with_the_exit_code() -> None:
    root = ET.fromstring(render_junit(synthetic_report()))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("7", "2", "1", "3")
    cases = {c.get("name").split(":")[0]: c for c in root.iter("testcase")}
    assert len(cases) == 7
    kinds = {name: [child.tag for child in case if child.tag != "system-out"] for name, case in cases.items()}
    assert kinds == {"a-pass": [], "b-fail": ["failure"], "c-error": ["error"], "d-skip": ["failure"],
                     "e-opt-fail": ["skipped"], "f-opt-skip": ["skipped"], "g-opt-error": ["skipped"]}
    assert cases["e-opt-fail"].find("skipped").get("message").startswith("optional test fail: ")
    assert cases["d-skip"].find("failure").get("type") == "required-skipped"
    out = cases["b-fail"].find("system-out").text
    assert "source: https://hl7.org/fhir/R4/http.html" in out and "< 404 Not Found" in out
    assert "\x0b" not in render_junit(synthetic_report()).decode()  # not allowed in XML 1.0
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["synthetic.one", "synthetic.two"]
    assert suites[0].find("properties/property[@name='target']").get("value") == "http://127.0.0.1:1/fhir"


def test_html_is_self_contained_and_escapes_what_it_shows() -> None:
    page = render_html(synthetic_report()).decode()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", page)  # nothing to fetch
    assert re.findall(r'href="([^"]+)"', page) == [REQ.source] * 7  # only the requirement links, to follow
    assert "<svg" in page and page.count('<details class="test"') == 7
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<b>bold?</b>" not in page
    assert 'data-status="fail"' in page and 'class="verdict failed"' in page


def test_write_reports_names_files_after_the_suite(tmp_path: Path) -> None:
    paths = write_reports(synthetic_report(), ["json", "junit", "html", "json"], tmp_path / "out")
    assert [p.name for p in paths] == ["synthetic.json", "synthetic.junit.xml", "synthetic.html"]
    assert all(p.stat().st_size > 500 for p in paths)


@pytest.mark.parametrize("status", [PASS, SKIP])
def test_verdict_follows_required_tests(status: str) -> None:
    report = synthetic_report()
    results = tuple(r if not r.test.required else TestResult(r.group, r.test, PASS, "ok", 1.0)
                    for r in report.results)
    passed = RunReport(report.suite, report.target, report.started, report.finished, results, "0.1.0")
    assert passed.passed  # optional failures, skips and errors do not fail a run
    if status == SKIP:
        spec = results[0].test
        blocked = (TestResult(results[0].group, spec, SKIP, "needs x", 1.0), *results[1:])
        assert not RunReport(report.suite, report.target, report.started, report.finished, blocked, "0").passed
