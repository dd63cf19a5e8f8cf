"""The playground's page weight and time to first conversion in headless Chromium (the OS package, through
Playwright), beside the same conversion posted straight to the API (the floor: what the page adds is rendering).

    python bench/bench_playground.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.settings import Settings  # noqa: E402
from tests.conformance.chromium import find_chromium  # noqa: E402
from tests.conftest import ServedApp  # noqa: E402

SAMPLES = {"hl7v2": ROOT / "examples" / "oru-egfr-somatic.hl7", "vcf": ROOT / "examples" / "germline-grch38.vcf",
           "cda-cn": ROOT / "examples" / "cn-lab-record.utf8.xml"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    binary = find_chromium()
    if binary is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    with ServedApp(Settings()) as app, sync_playwright() as p:
        weight = {name: len(httpx.get(f"{app.url}/playground/{name}", timeout=30).content)
                  for name in ("", "app.js", "app.css", "catalogue.json")}
        print(f"page weight: html {weight['']} B, js {weight['app.js']} B, css {weight['app.css']} B, catalogue "
              f"{weight['catalogue.json']} B; total {sum(weight.values())} B (uncompressed, no other requests)")
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox", "--disable-gpu"])
        for fmt, path in SAMPLES.items():
            text = path.read_text(encoding="utf-8")
            body = {"resourceType": "Parameters", "parameter": [
                {"name": "input", "valueString": text}, {"name": "source", "valueCode": fmt},
                {"name": "target", "valueCode": "fhir"}, {"name": "allowInvalid", "valueBoolean": True}]}
            api, ready, first, shown = [], [], [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                httpx.post(f"{app.url}/fhir/$convert", json=body, timeout=60,
                           headers={"Content-Type": "application/fhir+json"}).raise_for_status()
                api.append(time.perf_counter() - started)
                page = browser.new_page()
                started = time.perf_counter()
                page.goto(f"{app.url}/playground/")
                page.wait_for_selector("body[data-ready=true]")
                ready.append(time.perf_counter() - started)
                page.fill("#input", text)
                page.select_option("#source", fmt)
                clicked = time.perf_counter()
                page.click("#run-convert")
                page.wait_for_selector("#output details[data-path='Bundle']")
                first.append(time.perf_counter() - clicked)
                page.wait_for_selector("#diff-section:not([hidden])")
                shown.append(time.perf_counter() - clicked)
                page.close()
            med = statistics.median
            print(f"{fmt:7s} API alone {med(api) * 1000:6.0f} ms | page ready {med(ready) * 1000:5.0f} ms | first "
                  f"output shown {med(first) * 1000:6.0f} ms ({med(first) / med(api):.1f}x the API call) | with the "
                  f"reverse conversion and diff {med(shown) * 1000:6.0f} ms  (median of {args.runs}, cached after "
                  "the first)")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
