"""Rate limits per client and access class on the real gateway: a token bucket in process, or in Redis shared by
several server processes; 429 + Retry-After + OperationOutcome `throttled`; public routes never limited; with
Redis down each process goes on limiting by itself."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from gateway.auth.ratelimit import RateLimiter, RateLimitError, parse_limit, parse_limits
from gateway.settings import Settings, SettingsError
from tests.conftest import RedisServer, start_redis
from tests.gateway.principals import PrincipalApp, as_client

LIMITS = '{"read": "30/min burst 3", "convert": "1/min burst 2", "*": "off"}'


@pytest.fixture(scope="module")
def limit_redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


def get(app: PrincipalApp, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{app.url}/fhir/metadata", headers=headers, timeout=10)


def statuses(app: PrincipalApp, headers: dict[str, str], n: int) -> list[int]:
    return [get(app, headers).status_code for _ in range(n)]


def test_the_bucket_of_a_client_empties_refills_and_answers_429_with_retry_after() -> None:
    with PrincipalApp(Settings(rate_limits=LIMITS)) as app:
        a, b = as_client("lab-a", "read"), as_client("lab-b", "read")
        get(app, {"X-Test-Access": "public"})  # the first /fhir/metadata builds the CapabilityStatement (~1 s)
        assert statuses(app, a, 3) == [200, 200, 200]  # the burst
        refused = get(app, a)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] in ("1", "2")  # 30/min: a token every 2 s
        issue = refused.json()["issue"][0]
        assert refused.json()["resourceType"] == "OperationOutcome" and issue["code"] == "throttled"
        assert "30/min burst 3" in issue["details"]["text"]
        assert get(app, b).status_code == 200  # another client has its own bucket
        assert get(app, as_client("lab-a", "convert")).status_code == 200  # and another class too
        time.sleep(2.1)  # one token is back
        assert statuses(app, a, 2) == [200, 429]


def test_public_routes_unlimited_classes_and_anonymous_callers() -> None:
    with PrincipalApp(Settings(rate_limits='{"read": "1/h burst 1", "*": "1/h burst 1", "validate": "off"}')) as app:
        get(app, {"X-Test-Access": "public"})
        assert statuses(app, {"X-Test-Access": "public"}, 5) == [200] * 5
        assert statuses(app, as_client("lab-a", "validate"), 5) == [200] * 5  # "off" overrides "*"
        assert statuses(app, as_client("lab-a", "write"), 2) == [200, 429]  # "*" applies to unnamed classes
        anonymous = {"X-Test-Access": "read"}  # auth off: limited per network address
        assert statuses(app, anonymous, 2) == [200, 429]
        slow = get(app, anonymous)
        assert 3500 <= int(slow.headers["retry-after"]) <= 3600  # 1/h


def test_several_processes_share_one_budget_in_redis(limit_redis: RedisServer) -> None:
    settings = Settings(redis_url=limit_redis.url, rate_limits=LIMITS)
    with PrincipalApp(settings) as one, PrincipalApp(settings) as two:
        c = as_client("shared-client", "convert")  # 1/min burst 2: two requests, whichever server takes them
        assert get(one, c).status_code == 200
        assert get(two, c).status_code == 200
        assert get(one, c).status_code == 429 and get(two, c).status_code == 429
        assert 55 <= int(get(two, c).headers["retry-after"]) <= 60


def test_concurrent_requests_take_exactly_the_burst(limit_redis: RedisServer) -> None:
    settings = Settings(redis_url=limit_redis.url, rate_limits='{"read": "1/h burst 5"}')
    c = as_client("burst-client", "read")

    async def race(urls: list[str]) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            replies = await asyncio.gather(*(client.get(f"{u}/fhir/metadata", headers=c) for u in urls))
        return [r.status_code for r in replies]

    with PrincipalApp(settings) as one, PrincipalApp(settings) as two:
        codes = asyncio.run(race([one.url, two.url] * 10))
    assert sorted(codes) == [200] * 5 + [429] * 15  # the script is atomic: no token spent twice


def test_with_redis_down_each_process_limits_on_its_own(own_redis: RedisServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(redis_url=own_redis.url, rate_limits='{"read": "1/h burst 2"}')
    c = as_client("outage-client", "read")
    with PrincipalApp(settings) as app:
        assert statuses(app, c, 1) == [200]  # one token spent in Redis
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="helixgate.ratelimit"):
            assert statuses(app, c, 3) == [200, 200, 429]  # open to the process's own bucket, not to everyone
        assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
        own_redis.start()  # empty (no persistence): a full bucket
        time.sleep(1.1)  # the limiter tries Redis again after a second
        assert statuses(app, c, 3) == [200, 200, 429]
        assert redis.Redis(port=own_redis.port).keys("helixgate:rl:*") == [b"helixgate:rl:read:api-key:outage-client"]


def test_limit_syntax() -> None:
    one, two = parse_limit("20/s burst 40"), parse_limit(" 20 / second  burst 40 ")
    assert (one.rate, one.burst) == (two.rate, two.burst) == (20, 40)
    limit = parse_limit("600/min")
    assert limit.rate == 10 and limit.burst == 600
    assert parse_limit("0.5/s").burst == 1
    assert parse_limits('{"bulk": "off"}') == {"bulk": None}
    for bad in ('{"convert": "20 per second"}', '{"convert": "0/s"}', '{"convert": "5/day"}', '{"public": "1/s"}',
                '{"search": "1/s"}', '["1/s"]', '{"read": 5}', "not json"):
        with pytest.raises(RateLimitError):
            parse_limits(bad)
    with pytest.raises(SettingsError, match="HELIXGATE_RATE_LIMITS"):
        Settings.from_env({"HELIXGATE_RATE_LIMITS": '{"convert": "lots"}'})
    assert Settings.from_env({"HELIXGATE_RATE_LIMITS": LIMITS}).rate_limits == LIMITS


def test_in_process_buckets_refill_at_the_configured_rate() -> None:
    limiter = RateLimiter(parse_limits('{"read": "10/s burst 1"}'))

    async def take() -> float:
        over = await limiter.take("read", "api-key:x")
        return over[1] if over else 0.0

    assert asyncio.run(take()) == 0.0
    wait = asyncio.run(take())
    assert 0.05 < wait <= 0.1  # a token every 100 ms
    time.sleep(wait)
    assert asyncio.run(take()) == 0.0
