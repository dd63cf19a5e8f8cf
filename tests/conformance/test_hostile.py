"""Hostile targets cost one test each, as an `error` with a plain message, and the run goes on; secrets given
to the kit never reach a report."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from conformance import ERROR, PASS, RunOptions, load_suite, run_suite
from conformance.reports import render_html, render_json, render_junit
from tests.conftest import free_port

REQ = {"kind": "rest", "text": "t", "source": "https://hl7.org/fhir/R4/http.html"}


def _suite(tmp_path: Path, paths: list[str]) -> str:
    tests = [{"id": f"get-{p}" + ("-again" if p in paths[:i] else ""), "title": f"GET {p}", "check": "negotiate",
              "requirement": REQ, "params": {"path": p}} for i, p in enumerate(paths)]
    path = tmp_path / "hostile.json"
    path.write_bytes(orjson.dumps({"id": "hostile", "title": "Hostile", "version": "0",
                                   "groups": [{"id": "g", "title": "G", "tests": tests}]}))
    return str(path)


def test_each_misbehaviour_is_one_error_and_the_run_goes_on(tmp_path: Path, hostile_fhir: str) -> None:
    suite = load_suite(_suite(tmp_path, ["metadata", "slow", "drip", "html", "text", "huge", "metadata"]))
    started = time.monotonic()
    report = run_suite(suite, hostile_fhir, RunOptions(timeout=1.0, max_body=256 * 1024, report_body_limit=512))
    assert time.monotonic() - started < 15
    got = [(r.test.id, r.status, r.message) for r in report.results]
    assert [s for _, s, _ in got] == [PASS, ERROR, ERROR, ERROR, ERROR, ERROR, PASS]
    messages = dict((i, m) for i, _, m in got[1:6])
    assert messages["get-slow"].endswith("/fhir/slow: no response within 1 s (timeout)")
    assert "still arriving after 1 s" in messages["get-drip"] or "stalled for 1 s" in messages["get-drip"]
    assert messages["get-html"].endswith('expected HTTP 200, got HTTP 502, text/html (an HTML page: "502 Bad Gateway")')
    assert messages["get-text"].endswith('expected a FHIR resource, got HTTP 200, text/plain ("OK: service is up")')
    assert "passed the 262144 byte read cap; the kit stopped reading (raise it with --max-body)" in messages["get-huge"]
    huge = report.results[5].exchanges[0]
    assert huge.truncated and huge.response_size > 256 * 1024 and len(huge.response_body or "") <= 512
    assert report.results[1].exchanges[0].error and report.results[1].exchanges[0].status is None
    assert not report.passed


def test_tls_and_connection_failures_are_errors(tmp_path: Path, hostile_fhir: str) -> None:
    suite = load_suite(_suite(tmp_path, ["metadata"]))
    tls = run_suite(suite, hostile_fhir.replace("http://", "https://"), RunOptions(timeout=5))
    assert tls.results[0].status == ERROR
    assert "TLS handshake with 127.0.0.1 failed" in tls.results[0].message
    closed = run_suite(suite, f"http://127.0.0.1:{free_port()}/fhir", RunOptions(timeout=5))
    assert closed.results[0].status == ERROR and "cannot reach 127.0.0.1" in closed.results[0].message


def test_authorization_and_url_credentials_are_redacted(reference_fhir: str) -> None:
    secret_url = reference_fhir.replace("http://", "http://alice:pa55word@")
    report = run_suite(load_suite("gateway"), secret_url,
                       RunOptions(headers={"Authorization": "Bearer s3cret-token", "X-Trace": "visible"}))
    assert report.passed
    for render in (render_json, render_junit, render_html):
        out = render(report)
        assert b"s3cret-token" not in out and b"pa55word" not in out
    first = report.results[0].exchanges[0]
    assert first.request_headers["authorization"] == "[redacted]" and first.request_headers["x-trace"] == "visible"
    assert first.url.startswith("http://[redacted]@127.0.0.1:")
