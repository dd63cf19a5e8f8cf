"""The web playground in a real headless Chromium (the OS package) driven by Playwright: every readable format
converted through the page, issues linked to the source and the output, the reverse conversion's diff, validate and
translate, keyboard only, with auth on; no console errors, no request leaving the gateway's origin. Screenshots are
checked by the elements present, not pixel by pixel."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api

from gateway.settings import Settings
from mappers.toolkit.registry import HUB, registry
from tests.conformance.chromium import find_chromium
from tests.conftest import ServedApp
from tests.corpora import corpus, in_ci
from tests.gateway.principals import KeyedApp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# One input per readable format: a format added to the registry needs a sample here, or the test names it.
SAMPLES: dict[str, tuple[str | None, str]] = {
    "hl7v2": (None, "oru-egfr-somatic.hl7"),
    "vcf": (None, "germline-grch38.vcf"),
    "cda-cn": (None, "cn-lab-record.utf8.xml"),
    "ws445": (None, "cn-ws445-lab.json"),
    "ehdsi-cda": ("ehdsi-cda", "PS_L3_W6.xml"),
    "phenopacket": ("phenopackets", "ABCA4__PMID_10874631_II_2.json"),
}
TIMEOUT_MS = 60_000


def sample(fmt: str) -> Path:
    folder, name = SAMPLES[fmt]
    return (corpus(folder) if folder else EXAMPLES) / name


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = find_chromium()
    if binary is None:
        if in_ci():
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=binary, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    with ServedApp(Settings()) as app:
        yield app


class Page:
    """One tab on the playground, collecting console errors and every request it makes."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.page = browser.new_page(viewport={"width": 1366, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(f"{base}/playground/")
        self.page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)

    def convert(self, text: str | None = None, *, source: str = "", target: str = HUB, view: str = "json") -> str:
        p = self.page
        if text is not None:
            p.fill("#input", text)
        p.select_option("#source", source)
        p.select_option("#target", target)
        p.select_option("#view", view)
        before = p.text_content("#status")
        p.click("#run-convert")
        p.wait_for_function("s => !['converting…', s].includes(document.getElementById('status').textContent)",
                            arg=before, timeout=TIMEOUT_MS)
        if p.is_visible("#diff-section") or "converted" not in (p.text_content("#status") or ""):
            return p.text_content("#status") or ""
        fmt = registry().get(source) if source else None
        if target == HUB and view == "json" and (fmt is None or fmt.from_fhir):  # the reverse conversion follows
            p.wait_for_selector("#diff-section:not([hidden])", timeout=TIMEOUT_MS)
        return p.text_content("#status") or ""

    def close(self) -> None:
        assert self.errors == [], self.errors
        assert all(u.startswith(self.base) for u in self.requests), [u for u in self.requests
                                                                     if not u.startswith(self.base)]
        self.page.close()


@pytest.fixture()
def tab(browser: Any, served: ServedApp) -> Iterator[Page]:
    page = Page(browser, served.url)
    yield page
    page.close()


def test_the_page_is_served_under_a_strict_policy(served: ServedApp) -> None:
    r = httpx.get(f"{served.url}/playground/", timeout=30)
    csp = r.headers["content-security-policy"]
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in r.text and " style=" not in r.text and "http" not in r.text.split("<body>")[1]
    assert httpx.get(f"{served.url}/playground/app.js", timeout=30).headers["content-type"].startswith("text/java")
    missing = httpx.get(f"{served.url}/playground/secrets.txt", timeout=30)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert httpx.get(f"{served.url}/playground", timeout=30, follow_redirects=False).status_code == 308
    root = httpx.get(f"{served.url}/", timeout=30)  # the bare root says where the page is
    assert root.status_code == 404 and "/playground/" in root.text


def test_every_readable_format_has_a_sample() -> None:
    readers = {name for name, f in registry().items() if f.to_fhir and name != HUB}
    assert readers - SAMPLES.keys() == set(), "add a sample for each new format to SAMPLES"


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_each_format_converts_through_the_page(tab: Page, fmt: str) -> None:
    if fmt not in registry():
        pytest.fail(f"{fmt} is not a registered format any more: update SAMPLES")
    path = sample(fmt)
    tab.page.set_input_files("#file", str(path))  # the file's own bytes (charset kept), as a user uploads it
    status = tab.convert(source="")
    assert status.startswith(f"converted {fmt} → fhir"), status
    assert tab.page.locator("#output details[data-path='Bundle']").count() == 1
    assert tab.page.locator("#output [data-path^='Bundle.entry[']").count() > 0
    assert "0 errors" in (tab.page.text_content("#issue-count") or "")
    if registry()[fmt].from_fhir:
        summary = tab.page.text_content("#diff-summary") or ""
        assert summary.startswith(f"converted back to {fmt}:"), summary
        assert tab.page.locator("#diff tbody tr").count() > 0 or "too long" in summary
    shot = tab.page.screenshot()
    assert len(shot) > 10_000  # something was drawn; what is on it is checked by the elements above


def test_report_items_point_into_the_source_and_references_link_resources(tab: Page) -> None:
    tab.convert((EXAMPLES / "oru-egfr-somatic.hl7").read_text(encoding="utf-8"), source="hl7v2")
    links = tab.page.locator("#issues button.link", has_text="in the source")
    assert links.count() > 0
    label = links.first.text_content() or ""
    links.first.click()
    hit = tab.page.locator("#source-lines li.hit")
    assert hit.count() == 1
    segment = label.removeprefix("show ").split("[")[0].split("-")[0]
    assert (hit.text_content() or "").startswith(segment + "|"), (label, hit.text_content())
    assert tab.page.evaluate("document.activeElement.classList.contains('hit')")
    ref = tab.page.locator("#output a.ref").first
    target = (ref.get_attribute("href") or "").removeprefix("#")
    ref.click()
    assert tab.page.locator(f"#{target}.hit").count() == 1


def test_validation_issues_point_at_their_element(tab: Page) -> None:
    p = tab.page
    p.click("#tab-validate")
    p.fill("#resource", '{"resourceType": "Observation", "code": {"text": "x"}, "valueQuantity": {"value": "7"}}')
    p.click("#run-validate")
    p.wait_for_selector("#validate-results:not([hidden])", timeout=TIMEOUT_MS)
    assert "error" in (p.text_content("#status") or "")
    issue = p.locator("#validate-issues li.error button.link").first
    expression = (issue.text_content() or "").removeprefix("show ")
    issue.click()
    hit = p.locator("#validate-tree .hit")
    assert hit.count() == 1
    assert expression.startswith(hit.get_attribute("data-path") or "?")


def test_validate_against_a_chosen_profile(tab: Page) -> None:
    p = tab.page
    p.click("#tab-validate")
    p.fill("#profile", "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant")
    p.fill("#resource", '{"resourceType": "Observation", "status": "final", "code": {"text": "x"}}')
    p.click("#run-validate")
    p.wait_for_selector("#validate-results:not([hidden])", timeout=TIMEOUT_MS)
    texts = " ".join(p.locator("#validate-issues li.error").all_text_contents())
    assert "variant" in texts.lower() or "69548-6" in texts or "category" in texts  # the profile's own rules ran


def test_translate(tab: Page) -> None:
    p = tab.page
    p.click("#tab-translate")
    maps = p.locator("#conceptmap option").all_inner_texts()
    assert len(maps) >= 10
    value = p.eval_on_selector_all("#conceptmap option", "os => os.map(o => o.value)")
    p.select_option("#conceptmap", next(v for v in value if v == "v2-0001-to-administrative-gender"))
    p.fill("#code", "F")
    p.click("#run-translate")
    p.wait_for_selector("#translate-results:not([hidden])", timeout=TIMEOUT_MS)
    assert "female" in p.locator("#matches tbody").inner_text()


def test_fhir_xml_view_and_a_fhir_input_to_another_format(tab: Page) -> None:
    text = (EXAMPLES / "oru-egfr-somatic.hl7").read_text(encoding="utf-8")
    status = tab.convert(text, source="hl7v2", view="xml")
    assert "→ fhir-xml" in status
    xml = (tab.page.text_content("#output pre") or "").splitlines()
    assert xml[1] == '<Bundle xmlns="http://hl7.org/fhir">' and xml[2].startswith("  <id value=")
    bundle = httpx.post(f"{tab.base}/fhir/$convert", content=text.encode(),
                        headers={"Content-Type": "x-application/hl7-v2+er7"}, timeout=60).text
    status = tab.convert(bundle, source=HUB, target="hl7v2")
    assert status.startswith("converted fhir → hl7v2")
    assert (tab.page.text_content("#output pre") or "").startswith("MSH|")


def test_keyboard_only(tab: Page) -> None:
    p = tab.page
    for _ in range(40):  # Tab from the top of the page to the input
        p.keyboard.press("Tab")
        if p.evaluate("document.activeElement.id") == "input":
            break
    else:
        pytest.fail("the input cannot be reached with Tab")
    p.keyboard.insert_text((EXAMPLES / "germline-grch38.vcf").read_text(encoding="utf-8"))
    p.keyboard.press("Control+Enter")
    p.wait_for_selector("#diff-section:not([hidden])", timeout=TIMEOUT_MS)
    assert (p.text_content("#status") or "").startswith("converted vcf → fhir")
    for _ in range(60):  # on to the first report link, and Enter follows it
        p.keyboard.press("Tab")
        if p.evaluate("document.activeElement.matches('#issues button.link')"):
            break
    else:
        pytest.fail("no issue link is reachable with Tab")
    p.keyboard.press("Enter")
    assert p.evaluate("document.activeElement.classList.contains('hit')")


def test_with_auth_on_the_page_asks_for_a_credential(browser: Any, tmp_path: Path) -> None:
    with KeyedApp(Settings(http_processes=0), tmp_path, {"lab": ["system/$convert"]}) as app:
        tab = Page(browser, app.url)
        text = (EXAMPLES / "oru-egfr-somatic.hl7").read_text(encoding="utf-8")
        status = tab.convert(text, source="hl7v2")
        assert "needs credentials" in status
        tab.errors.clear()  # the browser logs the 401 it was shown
        tab.page.fill("#credential", app.keys["lab"])
        status = tab.convert(source="hl7v2")
        assert status.startswith("converted hl7v2 → fhir"), status
        tab.errors = [e for e in tab.errors if "403" not in e]  # the reverse conversion: converted, it is allowed
        tab.close()
    assert "HELIXGATE_API_KEYS_FILE" not in os.environ  # the app's key store was the test's own
