"""Rate limits per client and access class on the real gateway: a token bucket in process, or in Redis shared by
several server processes; 429 + Retry-After + OperationOutcome `throttled`; public routes never limited; with
Redis down each process goes on limiting by itself."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from gateway.auth.ratelimit import RateLimiter, RateLimitError, parse_limit, parse_limits
from gateway.settings import Settings, SettingsError
from tests.conftest import RedisServer
from tests.gateway.principals import KeyedApp
from tests.redis_topologies import MODES, EngineRedis, engine_redis_for

LIMITS = '{"bulk": "30/min burst 3", "translate": "1/min burst 2", "*": "off"}'
CLIENTS = {"lab-a": ["system/$convert", "system/$translate"], "lab-b": ["system/$convert"]}
UNKNOWN_JOB = "/fhir/bulk/" + "0" * 32  # access class bulk: a poll answered 404 (cheap, no job needed)
TRANSLATE = "/fhir/ConceptMap/$translate?url=urn:none&system=urn:none&code=x"  # access class translate


@pytest.fixture(scope="module", params=MODES)
def limit_redis(request: pytest.FixtureRequest) -> Iterator[EngineRedis]:
    """One server, then a 3-master cluster (the bucket script runs on the node of its key)."""
    with engine_redis_for(request, request.param) as target:
        yield target


def get(app: KeyedApp, path: str, client: str | None) -> httpx.Response:
    return httpx.get(f"{app.url}{path}", headers=app.auth(client) if client else {}, timeout=10)


def statuses(app: KeyedApp, path: str, client: str | None, n: int) -> list[int]:
    return [get(app, path, client).status_code for _ in range(n)]


def test_the_bucket_of_a_client_empties_refills_and_answers_429_with_retry_after(tmp_path: Path) -> None:
    with KeyedApp(Settings(rate_limits=LIMITS), tmp_path, CLIENTS) as app:
        assert statuses(app, UNKNOWN_JOB, "lab-a", 3) == [404, 404, 404]  # the burst
        refused = get(app, UNKNOWN_JOB, "lab-a")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] in ("1", "2")  # 30/min: a token every 2 s
        issue = refused.json()["issue"][0]
        assert refused.json()["resourceType"] == "OperationOutcome" and issue["code"] == "throttled"
        assert "bulk" in issue["details"]["text"] and "30/min burst 3" in issue["details"]["text"]
        assert get(app, UNKNOWN_JOB, "lab-b").status_code == 404  # another client has its own bucket
        assert get(app, TRANSLATE, "lab-a").status_code != 429  # and another class too
        time.sleep(2.1)  # one token is back
        assert statuses(app, UNKNOWN_JOB, "lab-a", 2) == [404, 429]


def test_a_request_refused_by_auth_spends_no_token(tmp_path: Path) -> None:
    with KeyedApp(Settings(rate_limits='{"translate": "1/h burst 1"}'), tmp_path, CLIENTS) as app:
        assert get(app, TRANSLATE, "lab-b").status_code == 403  # lab-b may not $translate: denied before the limiter
        assert get(app, TRANSLATE, None).status_code == 401
        assert get(app, TRANSLATE, "lab-a").status_code != 429


def test_public_routes_unlimited_classes_and_anonymous_callers() -> None:
    limits = '{"bulk": "1/h burst 1", "*": "1/h burst 1", "validate": "off"}'
    with KeyedApp(Settings(rate_limits=limits)) as app:  # auth off: every caller is anonymous
        assert statuses(app, "/fhir/metadata", None, 4) == [200] * 4  # public: never limited
        assert statuses(app, "/healthz", None, 4) == [200] * 4
        validate = [httpx.post(f"{app.url}/fhir/$validate", content=b"{", timeout=30).status_code for _ in range(3)]
        assert 429 not in validate  # "off" overrides "*"
        assert statuses(app, TRANSLATE, None, 2)[1] == 429  # "*" applies to classes not named
        assert statuses(app, UNKNOWN_JOB, None, 2) == [404, 429]  # anonymous: limited per network address
        slow = get(app, UNKNOWN_JOB, None)
        assert 3500 <= int(slow.headers["retry-after"]) <= 3600  # 1/h


def test_several_processes_share_one_budget_in_redis(limit_redis: EngineRedis, tmp_path: Path) -> None:
    settings = Settings(redis_url=limit_redis.url, rate_limits='{"bulk": "1/min burst 2"}')
    with KeyedApp(settings, tmp_path, CLIENTS) as one, KeyedApp(settings, same_keys=one) as two:
        # two requests in all, whichever server takes them
        assert get(one, UNKNOWN_JOB, "lab-a").status_code == 404
        assert get(two, UNKNOWN_JOB, "lab-a").status_code == 404
        assert get(one, UNKNOWN_JOB, "lab-a").status_code == 429
        last = get(two, UNKNOWN_JOB, "lab-a")
        assert last.status_code == 429 and 55 <= int(last.headers["retry-after"]) <= 60


def test_concurrent_requests_take_exactly_the_burst(limit_redis: EngineRedis, tmp_path: Path) -> None:
    settings = Settings(redis_url=limit_redis.url, rate_limits='{"bulk": "1/h burst 5"}')

    async def race(apps: list[KeyedApp]) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            replies = await asyncio.gather(*(client.get(f"{a.url}{UNKNOWN_JOB}", headers=a.auth("lab-b"))
                                             for a in apps))
        return [r.status_code for r in replies]

    with KeyedApp(settings, tmp_path, CLIENTS) as one, KeyedApp(settings, same_keys=one) as two:
        codes = asyncio.run(race([one, two] * 10))
    assert sorted(codes) == [404] * 5 + [429] * 15  # the script is atomic: no token spent twice


def test_with_redis_down_each_process_limits_on_its_own(own_redis: RedisServer, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(redis_url=own_redis.url, rate_limits='{"bulk": "1/h burst 2"}')
    with KeyedApp(settings, tmp_path, CLIENTS) as app:
        assert statuses(app, UNKNOWN_JOB, "lab-a", 1) == [404]  # one token spent in Redis
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="helixgate.ratelimit"):
            # open to the process's own bucket, not to everyone (503: the poll itself needs Redis)
            assert statuses(app, UNKNOWN_JOB, "lab-a", 3) == [503, 503, 429]
        assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
        own_redis.start()  # empty (no persistence): a full bucket
        time.sleep(1.1)  # the limiter tries Redis again after a second
        assert statuses(app, UNKNOWN_JOB, "lab-a", 3) == [404, 404, 429]
        assert redis.Redis(port=own_redis.port).keys("helixgate:rl:*") == [b"helixgate:rl:bulk:api-key:lab-a"]


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
