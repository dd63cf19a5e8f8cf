"""Issue 12's hostile HTTP requests against a real `helixgate serve` (default limits, embedded cache) while /healthz
is polled: each is answered with an OperationOutcome carrying the expected status and code, in bounded time and
memory, and /healthz keeps answering within 100 ms while the request is in flight. (A request stopped at its
time budget, with /healthz asked meanwhile: tests/gateway/test_sandbox.py.)

The body is sent by curl (another process), so sending it costs the test process nothing and the /healthz times
are the server's own; the resident set is the server's and its sandbox processes' (gateway/sandbox.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from bench.bench_hostile import rss_mb  # the server's and its sandbox processes' resident set
from tests.conftest import ROOT, free_port
from tests.mappers.vcf.test_hostile import HEAD, gzip_of
from tests.upstream.fixtures import wait_for

HEALTHZ_MS = 100  # the bound for /healthz while any one hostile request is in flight
ANSWER_S = 15  # the goal is 5 s (bench/bench_hostile.py); a 10 MB HL7 v2 body took 3-9 s at load 6-7
RSS_MB = 300  # the goal: peak RSS over the idle baseline

V2_HEAD = (b"MSH|^~\\&|LAB|HOSP|HELIXGATE|HG|20250301120000||ORU^R01^ORU_R01|H1|P|2.5.1\r"
           b"PID|1||P1^^^HOSP^MR||Doe^Jane||19700101|F\rOBR|1||F1|1^T^L\r")


@dataclass(frozen=True)
class Case:
    route: str
    media: str
    body: Callable[[], bytes]
    status: int
    code: str  # the first error issue's details code, or a text the issues carry when validation ran (200)
    accept: str = "application/fhir+json"


def _deep_extension() -> bytes:
    # 600 JSON levels: more than orjson writes (255), fewer than it reads (1024)
    ext = '{"url": "http://example.org/x", "extension": [' * 300
    ext += '{"url": "http://example.org/x", "valueString": "v"}' + "]}" * 300
    return ('{"resourceType": "Patient", "extension": [' + ext + "]}").encode()


CASES = {
    # the 170-byte body: ~28 s of backtracking on Python's re, every route waiting
    "redos-validate": Case("/fhir/$validate", "application/fhir+json", lambda: orjson.dumps(
        {"resourceType": "Binary", "contentType": "text/plain", "data": "AAAA  " * 25 + "AAA!"}), 200,
        "not a valid base64Binary"),
    # ~5 MB of gzip, 2 GiB of VCF records once inflated: drove the server past 8 GiB
    "gzip-bomb-vcf-bundle": Case("/fhir/$convert", "text/vcf", lambda: gzip_of(
        HEAD, b"chr1\t1\t.\tA\tA\t.\tPASS\t.\tGT\t0/0\n", 2 << 30), 422, "vcf-compression-ratio"),
    "gzip-bomb-vcf-ndjson": Case("/fhir/$convert", "text/vcf", lambda: gzip_of(HEAD, b"\n", 2 << 30), 422,
                                 "vcf-compression-ratio", "application/fhir+ndjson"),
    # under the 10 MiB body limit: 1.7 M OBX (> 9.7 GB and minutes before), 6 MB of NTE (47 s, +700 MB)
    "hl7v2-1.7M-obx": Case("/fhir/$convert", "x-application/hl7-v2+er7",
                           lambda: V2_HEAD + b"OBX|1\r" * 1_700_000, 422, "hl7v2-limit-segments"),
    "hl7v2-6MB-nte": Case("/fhir/$convert", "x-application/hl7-v2+er7",
                          lambda: V2_HEAD + b"OBX|1|ST|1^x^L||v||||||F\r" + b"NTE|1||note\r" * 500_000, 422,
                          "hl7v2-limit-segments"),
    "extension-300-deep": Case("/fhir/$validate", "application/fhir+json", _deep_extension, 200, "nested more than"),
    "json-100k-deep": Case("/fhir/$validate", "application/fhir+json",
                           lambda: b"[" * 100_000 + b"]" * 100_000, 400, "not-a-resource"),
}


@dataclass
class Served:
    url: str
    pid: int


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _warm(url: str) -> None:
    """Both sandbox processes started and idle (a process stopped over budget is replaced on the next request)."""
    def one() -> None:
        r = httpx.post(f"{url}/fhir/$validate", json={"resourceType": "Basic", "code": {"text": "x"}}, timeout=300)
        assert r.status_code == 200, r.text[:300]

    pair = [threading.Thread(target=one) for _ in range(2)]
    for t in pair:
        t.start()
    for t in pair:
        t.join()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIXGATE_")}  # the defaults, embedded cache
    env["HELIXGATE_PORT"] = str(port)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--log-level", "warning"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listening(port), 120, what="helixgate serve")
        yield Served(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def _healthz_ms(url: str, client: httpx.Client) -> float:
    started = time.perf_counter()
    assert client.get(f"{url}/healthz").status_code == 200
    return (time.perf_counter() - started) * 1000


@dataclass
class Attempt:
    status: int
    answer: bytes
    seconds: float
    rss_mb: float  # peak over the idle baseline
    healthz_ms: list[float]  # the /healthz answers asked while the request was in flight


def _attempt(served: Served, case: Case, body: Path) -> Attempt:
    _warm(served.url)
    baseline = rss_mb(served.pid)
    out = body.with_suffix(".answer")
    sent: dict[str, float] = {}

    def send() -> None:
        sent["start"] = time.monotonic()
        curl = subprocess.run(["curl", "-s", "-o", str(out), "-w", "%{http_code}", "--max-time", "120",
                               "-H", f"Content-Type: {case.media}", "-H", f"Accept: {case.accept}",
                               "--data-binary", f"@{body}", f"{served.url}{case.route}"],
                              capture_output=True, text=True)
        sent["end"] = time.monotonic()
        sent["status"] = int(curl.stdout or 0)

    in_flight: list[float] = []
    peak = baseline
    with httpx.Client(timeout=30) as client:
        sender = threading.Thread(target=send)
        sender.start()
        while sender.is_alive():
            asked = time.monotonic()
            took = _healthz_ms(served.url, client)
            peak = max(peak, rss_mb(served.pid))
            if sender.is_alive() and "start" in sent and asked >= sent["start"]:
                in_flight.append(took)
            time.sleep(0.02)
        sender.join()
    return Attempt(int(sent["status"]), out.read_bytes(), sent["end"] - sent["start"], peak - baseline, in_flight)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_request_is_answered_in_bounded_time_and_memory_while_healthz_answers(served: Served,
                                                                                     name: str, tmp_path: Path) -> None:
    case = CASES[name]
    body = tmp_path / "body"
    body.write_bytes(case.body())
    assert body.stat().st_size < 10 * 1024 * 1024  # under the default body limit: it reaches the mappers
    # /healthz within 100 ms while the request is in flight. On a shared 2-core machine the scheduler alone now and
    # then delays one answer past that (seen: 130-230 ms once in a few runs at load 6-7, with no callback of the
    # server's loop over 100 ms under asyncio debug), so up to three attempts; a server stalled by the request, as
    # it used to be (seconds), fails all three.
    attempts: list[Attempt] = []
    for _ in range(3):
        a = _attempt(served, case, body)
        attempts.append(a)
        assert a.status == case.status, (a.status, a.answer[:500])
        doc = orjson.loads(a.answer)
        assert doc["resourceType"] == "OperationOutcome", doc
        if case.status == 200:  # validation ran: the finding is among the issues
            assert any(case.code in i["details"]["text"] for i in doc["issue"]), doc["issue"][:5]
        else:
            assert doc["issue"][0]["details"]["coding"][0]["code"] == case.code, doc["issue"][0]
        assert a.seconds < ANSWER_S, a.seconds
        assert a.rss_mb < RSS_MB, a.rss_mb
        # a request answered within 100 ms cannot have held /healthz longer, asked or not
        if a.seconds * 1000 >= HEALTHZ_MS:
            assert a.healthz_ms, "no /healthz was asked while the request was in flight: the test proves nothing"
        if max(a.healthz_ms, default=0) < HEALTHZ_MS:
            break
    else:
        pytest.fail("/healthz over 100 ms in every attempt: " + "; ".join(
            f"slowest {sorted(a.healthz_ms)[-3:]} ms of {len(a.healthz_ms)}" for a in attempts))
