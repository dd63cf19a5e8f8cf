"""The upstream client against Medplum's FHIR router: retries honouring Retry-After, rejection, the circuit
breaker, and idempotent (chunked) transaction delivery."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from gateway.convert import run as convert
from gateway.formats import Request
from gateway.upstream import (
    CircuitBreaker,
    Upstream,
    UpstreamRejected,
    UpstreamUnavailable,
    deliver,
    dependency_order,
    retry_after_seconds,
)
from mappers.toolkit.registry import ConvertOptions
from tests.conftest import free_port
from tests.upstream.engine import OWN, unique_message
from tests.upstream.fixtures import UpstreamControl


def transaction(n: int, tag: str = "U") -> dict[str, Any]:
    request = Request("hl7v2", "fhir", ConvertOptions("transaction"), allow_invalid=True)
    result = convert(unique_message(n, tag), request)
    return orjson.loads(result.body)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_transient_failures_are_retried_after_the_servers_retry_after(upstream_control: UpstreamControl) -> None:
    upstream_control.behave(failCount=1, failStatus=503, retryAfter=1)

    async def go() -> tuple[int, float]:
        up = Upstream(upstream_control.base, retries=2, backoff=0.01)
        started = time.monotonic()
        try:
            r = await up.send("GET", "Patient")
            return r.status_code, time.monotonic() - started
        finally:
            await up.aclose()

    status, elapsed = run(go())
    assert status == 200 and elapsed >= 1.0
    assert upstream_control.stats()["failuresServed"] == 1


def test_a_4xx_is_a_rejection_carrying_the_upstreams_operation_outcome(upstream_control: UpstreamControl) -> None:
    async def go() -> UpstreamRejected:
        up = Upstream(upstream_control.base)
        try:
            with pytest.raises(UpstreamRejected) as caught:
                await up.json("POST", "Patient", body={"resourceType": "Observation"})
            return caught.value
        finally:
            await up.aclose()

    rejected = run(go())
    assert rejected.status == 400 and rejected.outcome["resourceType"] == "OperationOutcome"
    assert upstream_control.stats()["requests"] == 1  # not retried


def test_the_breaker_opens_after_repeated_failures_and_lets_a_trial_through_later() -> None:
    dead = f"http://127.0.0.1:{free_port()}/fhir"

    async def go() -> tuple[float, str]:
        up = Upstream(dead, retries=1, backoff=0.01, breaker=CircuitBreaker(threshold=3, cooldown=0.3))
        try:
            for _ in range(2):
                with pytest.raises(UpstreamUnavailable):
                    await up.send("GET", "metadata")
            assert up.breaker.state == "open"
            started = time.monotonic()
            with pytest.raises(UpstreamUnavailable, match="circuit open"):
                await up.send("GET", "metadata")
            fast = time.monotonic() - started
            await asyncio.sleep(0.35)
            return fast, up.breaker.state
        finally:
            await up.aclose()

    fast, state = run(go())
    assert fast < 0.05 and state == "half-open"
    clock = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown=5, clock=lambda: clock[0])
    breaker.failure()
    assert not breaker.allow()
    clock[0] = 5.0
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_entries_are_ordered_after_what_they_reference_and_cycles_are_refused() -> None:
    bundle = transaction(1)
    entries = bundle["entry"]
    order = dependency_order(entries)
    position = {entries[i]["fullUrl"]: k for k, i in enumerate(order)}
    for i in order:
        for ref in orjson.dumps(entries[i]["resource"]).decode().split('"reference":"')[1:]:
            target = ref.split('"', 1)[0]
            if target in position:
                assert position[target] < position[entries[i]["fullUrl"]]
    def member(me: str, other: str) -> dict[str, Any]:
        return {"fullUrl": f"urn:uuid:{me}",
                "resource": {"resourceType": "Observation", "hasMember": [{"reference": f"urn:uuid:{other}"}]}}

    with pytest.raises(ValueError, match="cycle"):
        dependency_order([member("a", "b"), member("b", "a")])


@pytest.mark.parametrize("max_entries", [8, 3])
def test_a_chunked_transaction_delivered_twice_creates_each_resource_once(upstream_control: UpstreamControl,
                                                                         max_entries: int) -> None:
    bundle = transaction(1)

    async def go() -> tuple[Any, Any]:
        up = Upstream(upstream_control.base, transaction_max_entries=max_entries)
        try:
            return await deliver(up, bundle), await deliver(up, bundle)
        finally:
            await up.aclose()

    first, second = run(go())
    assert first.transactions == second.transactions > 1
    assert len(first.created) == len(bundle["entry"]) - 1  # all but the Provenance (PUT: 200)
    assert second.created == [] and sorted(second.matched) == sorted(first.references)
    for rtype, n in {**OWN, "Provenance": 1, "Practitioner": 1, "Organization": 1, "Device": 1}.items():
        assert upstream_control.count(rtype) == n, rtype
    report = upstream_control.search("DiagnosticReport")[0]
    observations = {f"Observation/{o['id']}" for o in upstream_control.search("Observation")}
    assert {r["reference"] for r in report["result"]} <= observations
    assert report["subject"]["reference"] == f"Patient/{upstream_control.search('Patient')[0]['id']}"


def test_a_whole_transaction_hits_medplums_limit_on_conditional_entries(upstream_control: UpstreamControl) -> None:
    async def go() -> None:
        up = Upstream(upstream_control.base)  # no chunking
        try:
            with pytest.raises(UpstreamRejected, match="strict isolation"):
                await deliver(up, transaction(2))
        finally:
            await up.aclose()

    run(go())
    assert upstream_control.count("Patient") == 0
