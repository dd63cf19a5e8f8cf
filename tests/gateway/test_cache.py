"""The conversion cache against real Redis servers: miss then hit, and Redis stopped in the middle of a run."""

from __future__ import annotations

import logging

import httpx

from gateway.cache import KEY_PREFIX
from gateway.settings import Settings
from tests.conftest import ROOT, ServedApp

MESSAGE = sorted((ROOT / "tests" / "mappers" / "hl7v2" / "messages").glob("*.hl7"))[2].read_bytes()
V2 = {"Content-Type": "x-application/hl7-v2+er7"}


def _convert(url: str, body: bytes = MESSAGE, **params: str) -> httpx.Response:
    return httpx.post(f"{url}/fhir/$convert", content=body, headers=V2, params=params, timeout=10)


def test_miss_then_hit_is_stored_in_redis(engine_redis) -> None:
    client = engine_redis.client()  # one server, then a 3-master cluster (keys spread over its nodes)
    with ServedApp(Settings(redis_url=engine_redis.url)) as app:
        first, second = _convert(app.url), _convert(app.url)
        other = _convert(app.url, bundleType="transaction")
    assert (first.headers["x-cache"], second.headers["x-cache"], other.headers["x-cache"]) == ("miss", "hit", "miss")
    assert first.json() == second.json()
    keys = engine_redis.keys(KEY_PREFIX + "*")
    assert len(keys) == 2  # one per (input, options)
    assert client.ttl(keys[0]) > 0


def test_redis_stopped_mid_run_keeps_serving_and_says_so_once(own_redis, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="helixgate.cache")
    with ServedApp(Settings(redis_url=own_redis.url)) as app:
        assert _convert(app.url).headers["x-cache"] == "miss"
        assert _convert(app.url).headers["x-cache"] == "hit"
        own_redis.stop()
        responses = [_convert(app.url) for _ in range(5)]
        assert [r.status_code for r in responses] == [200] * 5
        assert {r.headers["x-cache"] for r in responses} == {"miss"}
        assert responses[0].json()["resourceType"] == "Bundle"
        assert httpx.get(f"{app.url}/healthz").json()["cacheStatus"] == "down"
        down = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
        assert len(down) == 1
        own_redis.start()
        app_cache = app.server.config.app.state.cache
        app_cache._down_until = 0.0  # skip the retry pause instead of sleeping through it
        assert _convert(app.url).status_code == 200
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert _convert(app.url).headers["x-cache"] == "hit"
