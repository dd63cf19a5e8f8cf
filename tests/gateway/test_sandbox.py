"""The HTTP routes' work runs in budgeted sandbox processes (gateway/sandbox.py, issue 12): a request past its
time or memory budget is stopped and answered 422, one whose client went away is stopped, a batch file has a
document cap, and the server keeps answering other requests (/healthz) while a costly one is in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.sandbox import sandbox_for
from gateway.settings import Settings
from profiles.packages import cache_dir
from tests.conftest import ServedApp

VARIANT_SD = cache_dir() / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package" / "StructureDefinition-variant.json"
FHIR = {"Content-Type": "application/fhir+json"}
BUDGET = Settings(http_processes=1, http_timeout_ms=1500, http_memory_mb=1024)


def _costly_structure_definition() -> bytes:
    """A StructureDefinition whose differential is repeated 200 times, each copy different (so nothing checked once
    is remembered for the next): 6.5 MB, under the 10 MB body limit, and ~4.5 CPU-seconds of checks (linear in the
    17,000 elements), well past the 1.5 s budget. 30 copies were enough while sdf-8a ran on the FHIRPath engine,
    cubic in the copies."""
    sd = orjson.loads(VARIANT_SD.read_bytes())
    copies = []
    for i in range(200):
        copy = orjson.loads(orjson.dumps(sd["differential"]))
        for element in copy["element"]:
            element["short"] = f"{element.get('short', '')} #{i}"
        copies.append(copy)
    sd["differential"] = copies
    return orjson.dumps(sd)


def _issue_codes(r: httpx.Response) -> list[str]:
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome", doc
    return [i["details"]["coding"][0]["code"] for i in doc["issue"]]


@pytest.fixture(scope="module")
def budgeted() -> Iterator[ServedApp]:
    with ServedApp(BUDGET) as app:
        # the sandbox process starts on first use: a cheap validation, so later timings are the budget's alone
        ok = httpx.post(f"{app.url}/fhir/$validate", content=b'{"resourceType":"Basic","code":{"text":"x"}}',
                        headers=FHIR, timeout=300)
        assert ok.status_code == 200, ok.text
        yield app


def test_a_request_past_its_time_budget_is_stopped_and_answered_422(budgeted: ServedApp) -> None:
    sandbox = sandbox_for(BUDGET.http_processes, BUDGET.http_timeout_ms, BUDGET.http_memory_mb)
    before = sandbox.stats["over_time"]
    r = httpx.post(f"{budgeted.url}/fhir/$validate", content=_costly_structure_definition(), headers=FHIR,
                   timeout=120)
    assert r.status_code == 422, r.text[:300]
    assert _issue_codes(r) == ["over-time-budget"]
    assert "HELIXGATE_HTTP_TIMEOUT_MS" in r.json()["issue"][0]["details"]["text"]
    assert sandbox.stats["over_time"] == before + 1
    # the process was replaced: the next request is served
    again = httpx.post(f"{budgeted.url}/fhir/$validate", content=b'{"resourceType":"Basic","code":{"text":"y"}}',
                       headers=FHIR, timeout=300)
    assert again.status_code == 200, again.text


def test_healthz_answers_while_a_costly_request_is_in_flight(budgeted: ServedApp) -> None:
    answers: list[httpx.Response] = []
    costly = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{budgeted.url}/fhir/$validate", content=_costly_structure_definition(), headers=FHIR, timeout=120)))
    costly.start()
    time.sleep(0.3)  # the costly request is being worked on
    health = [httpx.get(f"{budgeted.url}/healthz", timeout=30) for _ in range(5)]
    in_flight = costly.is_alive()
    costly.join(120)
    assert all(h.status_code == 200 for h in health)
    assert in_flight, "the costly request ended before /healthz was asked: the test proves nothing"
    assert answers and answers[0].status_code == 422


def test_a_request_whose_client_went_away_is_stopped(budgeted: ServedApp) -> None:
    sandbox = sandbox_for(BUDGET.http_processes, BUDGET.http_timeout_ms, BUDGET.http_memory_mb)
    before = dict(sandbox.stats)
    slow = Settings(http_processes=1, http_timeout_ms=60_000)
    with ServedApp(slow) as app:
        pool = sandbox_for(slow.http_processes, slow.http_timeout_ms, slow.http_memory_mb)
        httpx.post(f"{app.url}/fhir/$validate", content=b'{"resourceType":"Basic","code":{"text":"x"}}',
                   headers=FHIR, timeout=300)
        cancelled = pool.stats["cancelled"]
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{app.url}/fhir/$validate", content=_costly_structure_definition(), headers=FHIR,
                       timeout=httpx.Timeout(60, read=0.5))
        for _ in range(100):  # the disconnect is seen within a poll (0.25 s) and the process killed
            if pool.stats["cancelled"] > cancelled:
                break
            time.sleep(0.1)
        assert pool.stats["cancelled"] == cancelled + 1
    assert sandbox.stats["cancelled"] == before["cancelled"]  # the other pool was not touched


def test_a_request_past_its_memory_budget_is_stopped_and_answered_422() -> None:
    small = Settings(http_processes=1, http_timeout_ms=60_000, http_memory_mb=100)  # below the process's baseline
    with ServedApp(small) as app:
        # the process starts (its resident set is read only while it works) and is stopped at its first job
        r = httpx.post(f"{app.url}/fhir/$validate", content=_costly_structure_definition(), headers=FHIR,
                       timeout=300)
        assert r.status_code == 422, r.text[:300]
        assert _issue_codes(r) == ["over-memory-budget"]
        assert "HELIXGATE_HTTP_MEMORY_MB" in r.json()["issue"][0]["details"]["text"]


def test_a_batch_file_over_the_document_cap_is_413_naming_the_setting(embedded_gateway: Any) -> None:
    message = (b"MSH|^~\\&|LAB|HOSP|HELIXGATE|HG|20250301120000||ORU^R01^ORU_R01|M%d|P|2.5.1\r"
               b"PID|1||P1^^^HOSP^MR||Doe^Jane||19700101|F\r")
    body = b"".join(message % i for i in range(1001))
    r = httpx.post(f"{embedded_gateway.url}/fhir/$convert", content=body,
                   headers={"Content-Type": "x-application/hl7-v2+er7"}, timeout=300)
    assert r.status_code == 413, r.text[:300]
    assert _issue_codes(r) == ["batch-too-large"]
    text = r.json()["issue"][0]["details"]["text"]
    assert "1001 documents" in text and "HELIXGATE_MAX_BATCH_DOCUMENTS" in text and "respond-async" in text
