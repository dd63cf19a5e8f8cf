"""The HTML report in headless Chromium: it renders with no console error, no exception and no network request,
and its filters work."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import RunReport, load_suite, run_suite
from conformance.reports import render_html
from tests.conformance.chromium import Browser, find_chromium
from tests.conformance.conftest import served
from tests.conformance.servers import ReferenceServer
from tests.conformance.test_reports import synthetic_report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    b = Browser(binary)
    yield b
    b.close()


def _open(browser: Browser, tmp_path: Path, report: RunReport) -> str:
    path = tmp_path / "report.html"
    path.write_bytes(render_html(report))
    url = path.as_uri()
    browser.open(url)
    return url


def _visible(browser: Browser) -> int:
    return browser.evaluate("document.querySelectorAll('details.test:not([hidden])').length")


def test_report_of_a_real_run_renders_cleanly_and_filters(browser: Browser, tmp_path: Path) -> None:
    with served(ReferenceServer(["html-errors", "invalid-resources"]).app()) as url:
        report = run_suite(load_suite("genomics-server"), url + "/fhir")
    page = _open(browser, tmp_path, report)
    assert browser.evaluate("document.documentElement.dataset.ready") == "true"
    assert browser.problems(page) == []
    counts = report.counts()
    assert browser.evaluate("document.querySelectorAll('details.test').length") == len(report.results)
    assert browser.evaluate("document.querySelectorAll('svg.donut circle.seg').length") == sum(
        1 for n in counts.values() if n)
    browser.evaluate("document.querySelector('nav.filters button[data-status=fail]').click()")
    assert _visible(browser) == counts["fail"] > 0
    assert browser.evaluate("document.getElementById('shown').textContent") == \
        f"{counts['fail']} of {len(report.results)} tests shown"
    browser.evaluate("document.querySelector('nav.filters button[data-status=all]').click()")
    assert _visible(browser) == len(report.results)
    browser.evaluate("const q = document.getElementById('q'); q.value = 'read-unknown';"
                     "q.dispatchEvent(new Event('input'))")
    assert _visible(browser) == 1
    assert browser.evaluate("document.querySelector('#t-read-unknown .exchange .line').textContent").startswith(
        "GET http://127.0.0.1:")
    assert browser.problems(page) == []


def test_report_with_every_status_renders_cleanly(browser: Browser, tmp_path: Path) -> None:
    report = synthetic_report()
    page = _open(browser, tmp_path, report)
    assert browser.problems(page) == []
    # failures, errors and the required skip are opened for the reader
    assert browser.evaluate("document.querySelectorAll('details.test[open]').length") == 5
    browser.evaluate("document.getElementById('required-only').click()")
    assert _visible(browser) == 4
    browser.evaluate("document.querySelector('svg.donut circle.seg[data-filter=error]')"
                     ".dispatchEvent(new MouseEvent('click'))")
    assert _visible(browser) == 1  # error and required
    assert browser.evaluate("document.title") == "Synthetic suite conformance: failed"
    assert browser.problems(page) == []
