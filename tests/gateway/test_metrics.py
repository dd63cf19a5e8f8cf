"""GET /metrics over real HTTP: request, conversion, validation, cache, MLLP, stream and upstream metrics move with
the traffic that causes them (read as Prometheus text with prometheus-client's parser); who may scrape."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from gateway.mllp.framing import frame
from gateway.settings import Settings
from gateway.workers.streams import DLQ, GROUP, INBOUND
from tests.conftest import ROOT, ServedApp, free_port
from tests.gateway.principals import KeyedApp

V2 = {"Content-Type": "x-application/hl7-v2+er7"}
MESSAGE = (ROOT / "tests" / "mappers" / "hl7v2" / "messages" / "01-egfr-snv-somatic.hl7").read_bytes()


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture()
def served(own_redis) -> ServedApp:  # type: ignore[no-untyped-def]
    with ServedApp(Settings(redis_url=own_redis.url, http_processes=0, max_request_bytes=4096 * 1024)) as app:
        yield app


def test_requests_conversions_issues_and_cache_are_counted(served: ServedApp) -> None:
    before = scrape(served.url)
    for _ in range(2):  # a miss, then a hit
        r = httpx.post(f"{served.url}/fhir/$convert", content=MESSAGE, headers=V2, timeout=60)
        assert r.status_code == 200, r.text
    bad = httpx.post(f"{served.url}/fhir/$convert", content=b"MSH|not a message", headers=V2, timeout=10)
    assert bad.status_code in (400, 422)
    v = httpx.post(f"{served.url}/fhir/$validate", json={"resourceType": "Patient", "gender": "nope"}, timeout=60)
    assert v.status_code == 200
    for _ in range(2):
        t = httpx.get(f"{served.url}/fhir/ConceptMap/$translate", timeout=10,
                      params={"system": "http://terminology.hl7.org/CodeSystem/v2-0001", "code": "F"})
        assert t.status_code == 200
    after = scrape(served.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"route": "/fhir/$convert", "method": "POST"}
    assert delta("helixgate_http_requests_total", status="200", **route) == 2
    assert delta("helixgate_http_requests_total", status=str(bad.status_code), **route) == 1
    assert delta("helixgate_http_request_duration_seconds_count", **route) == 3
    assert delta("helixgate_conversions_total", source="hl7v2", target="fhir", outcome="converted") == 1
    assert delta("helixgate_conversions_total", source="hl7v2", target="fhir", outcome="cached") == 1
    assert delta("helixgate_conversions_total", source="hl7v2", target="fhir", outcome="refused") == 1
    assert delta("helixgate_cache_lookups_total", cache="conversion", result="hit") == 1
    assert delta("helixgate_cache_lookups_total", cache="conversion", result="miss") >= 1
    assert delta("helixgate_validation_issues_total", origin="validate", severity="error") >= 1
    assert delta("helixgate_cache_lookups_total", cache="translation", result="miss") == 1
    assert delta("helixgate_cache_lookups_total", cache="translation", result="hit") == 1
    # the stream gauges were read from this Redis: nothing queued yet
    assert value(after, "helixgate_redis_scrape_ok") == 1
    assert value(after, "helixgate_stream_length", stream=INBOUND) == 0


def test_unknown_paths_and_methods_do_not_grow_the_labels(served: ServedApp) -> None:
    before = value(scrape(served.url), "helixgate_http_requests_total", route="unmatched", method="GET", status="404")
    for i in range(5):
        httpx.get(f"{served.url}/no/such/path/{i}", params={"q": i}, timeout=10)
        httpx.request(f"BREW{i}", f"{served.url}/healthz", timeout=10)
    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    assert "/no/such" not in text and "BREW" not in text and "q=" not in text
    samples = scrape(served.url)
    # the counters are the process's: other apps of this test session count into them too, hence the difference
    assert value(samples, "helixgate_http_requests_total", route="unmatched", method="GET", status="404") - before == 5


def test_stream_lag_pending_and_dead_letters_are_read_from_redis(engine_redis) -> None:  # type: ignore[no-untyped-def]
    """On one Redis server and on a 3-master cluster (the streams' hash tag keeps each stream with its group)."""
    r = engine_redis.client()
    try:
        for i in range(5):
            r.xadd(INBOUND, {"data": f"m{i}"})
        r.xgroup_create(INBOUND, GROUP, id="0")
        r.xreadgroup(GROUP, "w1", {INBOUND: ">"}, count=2)  # two read, not acknowledged: pending; three unread
        for i in range(3):
            r.xadd(DLQ, {"reason": f"r{i}"})
    finally:
        r.close()
    with ServedApp(Settings(redis_url=engine_redis.url, http_processes=0)) as app:
        samples = scrape(app.url)
    assert value(samples, "helixgate_redis_scrape_ok") == 1
    assert value(samples, "helixgate_stream_length", stream=INBOUND) == 5
    assert value(samples, "helixgate_stream_pending", stream=INBOUND) == 2
    assert value(samples, "helixgate_stream_lag", stream=INBOUND) == 3
    assert value(samples, "helixgate_dead_letters") == 3


def test_redis_down_is_reported_not_failed(tmp_path: Path) -> None:
    with ServedApp(Settings(redis_url=f"redis://127.0.0.1:{free_port()}", http_processes=0)) as app:
        samples = scrape(app.url)
    assert value(samples, "helixgate_redis_scrape_ok") == 0


def _ack(port: int, message: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(frame(message))
        data = b""
        while not data.endswith(b"\x1c\r"):
            chunk = s.recv(65536)
            assert chunk, "connection closed before the ACK"
            data += chunk
    return data


def test_mllp_messages_and_ack_codes(own_redis) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with ServedApp(Settings(redis_url=own_redis.url, http_processes=0, mllp_port=port)) as app:
        before = scrape(app.url)
        accepted = _ack(port, MESSAGE.replace(b"\n", b"\r"))
        refused = _ack(port, b"MSH|^~\\&|LAB|FAC|GW|GW|20250101||ORU^R01|C1|P|2.5.1\rZZZ|")
        after = scrape(app.url)
    sent = [ack.split(b"\rMSA|", 1)[1][:2].decode() for ack in (accepted, refused)]
    assert sent[0] in ("AA", "CA") and sent[1] in ("AE", "AR", "CE", "CR")
    for code in sent:
        assert value(after, "helixgate_mllp_acks_total", code=code) - value(before, "helixgate_mllp_acks_total",
                                                                             code=code) == 1
    assert (value(after, "helixgate_mllp_messages_total", outcome="accepted")
            - value(before, "helixgate_mllp_messages_total", outcome="accepted")) == 1


def test_upstream_latency_and_circuit_state(served: ServedApp) -> None:
    async def calls() -> None:
        async with httpx.AsyncClient() as client:
            metrics.watch_upstream(client)
            for _ in range(3):
                await client.get(f"{served.url}/healthz")
            await client.get(f"{served.url}/fhir/nothing-here")

    before = scrape(served.url)
    asyncio.run(calls())
    after = scrape(served.url)
    count = "helixgate_upstream_request_duration_seconds_count"
    assert value(after, count, method="GET", status="2xx") - value(before, count, method="GET", status="2xx") == 3
    assert value(after, count, method="GET", status="4xx") - value(before, count, method="GET", status="4xx") == 1


def test_metrics_needs_the_metrics_scope_when_auth_is_on(tmp_path: Path) -> None:
    clients = {"prometheus": ["system/$metrics"], "lab": ["system/$convert"]}
    with KeyedApp(Settings(http_processes=0), tmp_path, clients) as app:
        anonymous = httpx.get(f"{app.url}/metrics", timeout=10)
        lab = httpx.get(f"{app.url}/metrics", headers=app.auth("lab"), timeout=10)
        scraper = httpx.get(f"{app.url}/metrics", headers=app.auth("prometheus"), timeout=10)
    assert anonymous.status_code == 401
    assert lab.status_code == 403 and "system/$metrics" in lab.text
    assert scraper.status_code == 200 and "helixgate_http_requests_total" in scraper.text
    # the refusals were counted under the route that would have answered
    assert 'route="/metrics",status="401"' in scraper.text


def test_several_server_processes_are_added_up(tmp_path: Path) -> None:
    """`helixgate serve --workers 2`: each process counts in its own files under PROMETHEUS_MULTIPROC_DIR and any
    scrape adds them all up (without it a scrape would see one process's share)."""
    import os
    import subprocess
    import sys
    import time

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"stale")  # an earlier run's file: serve empties the folder
    port = free_port()
    env = {**os.environ, "HELIXGATE_HTTP_PROCESSES": "0", "PROMETHEUS_MULTIPROC_DIR": str(folder),
           "HELIXGATE_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        pids = set()
        for _ in range(40):  # a new connection each: the kernel hands them to either process
            r = httpx.get(f"{url}/fhir/metadata", timeout=10)
            assert r.status_code == 200
        for _ in range(30):
            pids |= {p.name.split("_")[-1] for p in folder.glob("counter_*.db")}
            if len(pids) >= 2:
                break
            httpx.get(f"{url}/fhir/metadata", timeout=10)
        totals = [value(scrape(url), "helixgate_http_requests_total", route="/fhir/metadata", method="GET",
                        status="200") for _ in range(6)]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert len(pids) >= 2, "only one server process answered"
    assert "1.db" not in pids
    assert len(set(totals)) == 1 and totals[0] >= 40  # every scrape, whichever process answers it, sees them all


def test_the_circuit_state_follows_the_upstream() -> None:
    """An upstream that refuses connections: the breaker opens after its threshold of failures, and /metrics says so
    (read from the app's upstream client when scraped)."""
    dead = free_port()  # nothing listens there
    with ServedApp(Settings(upstream_url=f"http://127.0.0.1:{dead}/fhir", upstream_retries=0, http_processes=0)) as app:
        first = scrape(app.url)
        statuses = {httpx.get(f"{app.url}/fhir/Observation", timeout=30).status_code for _ in range(8)}
        after = scrape(app.url)
    assert value(first, "helixgate_upstream_circuit_state", state="closed") == 1
    assert statuses <= {502, 503, 504} and statuses
    assert value(after, "helixgate_upstream_circuit_state", state="open") == 1
    assert value(after, "helixgate_upstream_circuit_state", state="closed") == 0
