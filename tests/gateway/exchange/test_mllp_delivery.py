"""Delivery over MLLP to a partner: the gateway's own MLLP listener (a real one, on loopback, with Redis) receives
the pseudonymised HL7 v2 output; a partner's NAK is a failed delivery whose count is released."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from gateway.exchange.counters import MemoryCounters
from gateway.exchange.mllp import DeliveryFailed
from gateway.exchange.pipeline import run
from gateway.exchange.routes import RoutesError, load
from gateway.exchange.rules.facts import Transfer
from gateway.exchange.service import LocalEngine
from gateway.exchange.trail import MemoryTrail
from gateway.mllp.partners import Partners
from gateway.workers.streams import INBOUND
from tests.conftest import RedisServer, free_port
from tests.gateway.exchange.conftest import SECRETS, source_bytes
from tests.gateway.test_mllp import Listener

RESEARCH = Transfer("research", "2026-12-07", ("EU-SCC-2021-914-M1-0007",))


def _mllp_route(routes_file: Path, port: int) -> Path:
    doc = orjson.loads(routes_file.read_bytes())
    doc["routes"][1]["target"] = {"format": "hl7v2"}
    doc["routes"][1]["delivery"] = {"mode": "mllp", "host": "127.0.0.1", "port": port, "timeoutMs": 10000}
    routes_file.write_bytes(orjson.dumps(doc))
    return routes_file


def _send(routes_file: Path, source: str, validator: Any, counters: MemoryCounters, trail: MemoryTrail) -> Any:
    return asyncio.run(run(source_bytes(source), source=None, route_id="eu-cn-research", transfer=RESEARCH,
                           routes=load(routes_file), engine=LocalEngine(validator), counters=counters, trail=trail))


@pytest.mark.parametrize("source", ["ws445", "cda-cn"])
def test_delivered_over_mllp(redis_server: RedisServer, routes_file: Path, validator: Any, source: str) -> None:
    stream = redis.Redis.from_url(redis_server.url)
    stream.delete(INBOUND)
    listener = Listener(redis_server.url)
    try:
        result = _send(_mllp_route(routes_file, listener.port), source, validator, MemoryCounters(), MemoryTrail())
        [(_, fields)] = stream.xrange(INBOUND)
        message = fields[b"data"]
        assert message.startswith(b"MSH|") and b"ORU^R01" in message
        assert result.delivered == [f"mllp://127.0.0.1:{listener.port} MSA-2 {fields[b'control'].decode()}"]
        for secret in SECRETS[source]:
            assert secret.encode() not in message
    finally:
        listener.close()
        stream.delete(INBOUND)
        stream.close()


def test_a_nak_is_a_failed_delivery(redis_server: RedisServer, routes_file: Path, validator: Any) -> None:
    listener = Listener(redis_server.url, partners=Partners.parse('{"SOMEONE-ELSE": null}'))  # answers AR to us
    counters, trail = MemoryCounters(), MemoryTrail()
    try:
        with pytest.raises(DeliveryFailed, match="refused the message: MSA-1 AR"):
            _send(_mllp_route(routes_file, listener.port), "ws445", validator, counters, trail)
    finally:
        listener.close()
    assert set(asyncio.run(counters.counts()).values()) == {0}  # counted, then released
    assert [i["event"]["outcome"] for i in trail.items] == ["8"]
    with pytest.raises(DeliveryFailed, match="cannot reach"):
        _send(_mllp_route(routes_file, free_port()), "ws445", validator, counters, trail)


def test_mllp_needs_hl7v2(routes_file: Path) -> None:
    doc = orjson.loads(routes_file.read_bytes())
    doc["routes"][1]["delivery"] = {"mode": "mllp", "host": "127.0.0.1", "port": 2575}
    routes_file.write_bytes(orjson.dumps(doc))
    with pytest.raises(RoutesError, match="the target format must be hl7v2"):
        load(routes_file)
