"""AuditEvents per request (and per MLLP message and delivery) in a Redis Stream, optionally sent upstream;
Provenance for delivered Bundles; no patient data in events or logs."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import orjson
import pytest
import redis

from gateway.audit import (
    AUDIT_STREAM,
    AuditLog,
    delivery_event,
    delivery_provenance,
    interaction,
    mllp_event,
    read_events,
    rest_event,
)
from gateway.upstream import Upstream
from gateway.workers.streams import redis_client
from tests.conftest import RedisServer, ServedApp
from tests.upstream.engine import unique_message
from tests.upstream.fixtures import UpstreamControl, wait_for


def test_interactions_are_named_from_method_and_path_without_the_query() -> None:
    assert interaction("GET", "/fhir/Patient/1") == ("read", "Patient/1")
    assert interaction("GET", "/fhir/Patient/1/_history/2") == ("vread", "Patient/1")
    assert interaction("GET", "/fhir/Patient") == ("search-type", None)
    assert interaction("POST", "/fhir/Observation") == ("create", None)
    assert interaction("PUT", "/fhir/Observation/9") == ("update", "Observation/9")
    assert interaction("POST", "/fhir/$convert") == ("operation", None)
    assert interaction("POST", "/fhir") == ("transaction", None)
    assert interaction("GET", "/fhir/metadata") == ("capabilities", None)
    # the facade's other interactions (gateway/facade/table.py)
    assert interaction("PATCH", "/fhir/Patient/1") == ("patch", "Patient/1")
    assert interaction("DELETE", "/fhir/Patient/1") == ("delete", "Patient/1")
    assert interaction("POST", "/fhir/Patient/_search") == ("search-type", None)
    assert interaction("POST", "/fhir/_search") == ("search-system", None)
    assert interaction("GET", "/fhir/Patient/1/_history") == ("history-instance", "Patient/1")
    assert interaction("GET", "/fhir/Patient/_history") == ("history-type", None)
    assert interaction("GET", "/fhir/_history") == ("history-system", None)


def test_every_fhir_request_is_audited_in_the_stream_without_its_query(gateway: ServedApp,
                                                                      redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(AUDIT_STREAM)
    httpx.post(f"{gateway.url}/fhir/$convert", content=unique_message(1),
               headers={"Content-Type": "x-application/hl7-v2+er7"}, timeout=10).raise_for_status()
    assert httpx.post(f"{gateway.url}/fhir/$convert", content=b"nonsense", timeout=10).status_code in (400, 415)
    httpx.get(f"{gateway.url}/fhir/metadata", params={"name": "Secretname"}, timeout=10)
    httpx.get(f"{gateway.url}/healthz", timeout=10)  # not a FHIR request: not audited
    events = wait_for(lambda: (e := asyncio.run(_events(redis_server.url))) and len(e) >= 3 and e, 5,
                      what="three AuditEvents")
    assert len(events) == 3
    convert_ok, convert_bad, capabilities = events
    assert convert_ok["subtype"][0]["code"] == "operation" and convert_ok["outcome"] == "0"
    assert convert_ok["agent"][0]["requestor"] is True and convert_ok["agent"][0]["network"]["address"] == "127.0.0.1"
    assert convert_bad["outcome"] == "4" and convert_bad["action"] == "E"
    assert capabilities["subtype"][0]["code"] == "capabilities"
    raw = b"".join(f[b"event"] for _, f in client.xrange(AUDIT_STREAM))
    assert b"Secretname" not in raw and b"Testperson" not in raw and b"PAT10001" not in raw
    client.close()


async def _events(url: str) -> list[dict]:
    client = redis_client(url)
    try:
        return await read_events(client)
    finally:
        await client.aclose()


def test_events_wait_in_the_buffer_while_redis_is_down(own_redis: RedisServer) -> None:
    async def scenario() -> tuple[int, int, list[dict]]:
        client = redis_client(own_redis.url, timeout=0.5)
        log = AuditLog(client, interval=0.05)
        own_redis.stop()
        for n in range(5):
            log.record(rest_event("GET", f"/fhir/Patient/{n}", 200, "127.0.0.1", time.time()))
        await asyncio.sleep(0.3)
        waiting = len(log.pending)
        own_redis.start()
        deadline = time.monotonic() + 10
        while log.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        events = await read_events(client)
        await log.close()
        await client.aclose()
        return waiting, len(log.pending), events

    waiting, left, events = asyncio.run(scenario())
    assert waiting == 5 and left == 0
    assert [e["entity"][0]["what"]["reference"] for e in events] == [f"Patient/{n}" for n in range(5)]


def test_a_full_buffer_drops_the_oldest_and_counts_them() -> None:
    log = AuditLog(client=object(), buffer=3)
    log._task = asyncio.Future(loop=asyncio.new_event_loop())  # no flusher: nothing leaves the buffer
    for n in range(5):
        log.record({"n": n})
    assert [item[1]["n"] for item in log.pending] == [2, 3, 4] and log.dropped == 2


def test_events_can_also_go_to_the_upstream(upstream_control: UpstreamControl) -> None:
    async def scenario() -> None:
        up = Upstream(upstream_control.base)
        log = AuditLog(None, upstream=up)
        log.record(delivery_event("LAB|1", "LAB", "delivered", ["Patient/1"], time.time()))
        log.record(mllp_event("1", "LAB", "accepted", "127.0.0.1", time.time()))
        await log.close()
        await up.aclose()

    asyncio.run(scenario())
    assert upstream_control.count("AuditEvent") == 2


@pytest.fixture(scope="module")
def validator():  # type: ignore[no-untyped-def]
    from profiles.context import default_validator
    from profiles.packages import PackageError

    try:
        return default_validator()
    except PackageError as e:
        pytest.fail(f"the default FHIR packages are not installed ({e}); run: helixgate packages install")


def test_audit_events_and_the_delivery_provenance_are_valid_fhir(validator) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:8c9c8e6c-1111-5000-8000-000000000001",
         "resource": {"resourceType": "Patient", "id": "8c9c8e6c-1111-5000-8000-000000000001"},
         "request": {"method": "POST", "url": "Patient"}}]}
    now = time.time()
    resources = [
        rest_event("GET", "/fhir/Patient/1", 200, "127.0.0.1", now),
        rest_event("POST", "/fhir/$convert", 500, None, now),
        mllp_event("CTRL1", "LAB", "rejected", "10.0.0.1", now),
        delivery_event("LAB|CTRL1", "LAB", "dead-lettered", [], now, "upstream-unavailable"),
        delivery_provenance(bundle, source_format="hl7v2", message_id="LAB|CTRL1", mapper_version="m/1",
                            recorded="2026-01-01T00:00:00.000+00:00"),
    ]
    for res in resources:
        errors = [(i.expression, i.message) for i in validator.validate(res) if i.severity in ("error", "fatal")]
        assert errors == [], res["resourceType"]
    assert resources[-1]["target"] == [{"reference": "urn:uuid:8c9c8e6c-1111-5000-8000-000000000001"}]


def test_no_patient_data_reaches_the_logs(gateway: ServedApp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="helixgate")
    body = unique_message(3)
    httpx.post(f"{gateway.url}/fhir/$convert", content=body, headers={"Content-Type": "x-application/hl7-v2+er7"},
               timeout=10).raise_for_status()
    httpx.post(f"{gateway.url}/fhir/$convert", content=body.replace(b"ORU^R01^ORU_R01", b"ADT^A01"),
               headers={"Content-Type": "x-application/hl7-v2+er7"}, timeout=10)
    text = caplog.text + orjson.dumps([r.args for r in caplog.records], default=str).decode()
    for phi in ("Testperson", "Alice", "PAT-T00003", "19620314", "Example St"):
        assert phi not in text
