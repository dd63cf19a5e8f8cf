"""Volume counters against a real Redis: exact distinct counts per exporter and year, an atomic hard stop under
concurrency, release, and counts that survive a Redis restart (AOF); the in-process fallback warns."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import tempfile
import time

import pytest
import redis
import redis.asyncio as aioredis

from gateway.exchange.counters import MemoryCounters, RedisCounters, key, member
from tests.conftest import RedisServer, free_port


def _members(n: int, prefix: str = "p") -> list[str]:
    return [member("hosp", "urn:oid:1.2.3", f"{prefix}{i}") for i in range(n)]


def test_exact_distinct_counts(redis_server: RedisServer) -> None:
    async def go() -> None:
        client = aioredis.from_url(redis_server.url)
        await client.delete(key("hosp", "2026"), key("hosp", "2027"))
        c = RedisCounters(client)
        r = await c.reserve("hosp", "2026", _members(3) + _members(2), 10)  # repeats count once
        assert (r.admitted, r.count, r.new, len(r.members)) == (True, 3, 3, 3)
        r = await c.reserve("hosp", "2026", _members(5), 10)
        assert (r.count, r.new) == (5, 2)
        assert (await c.peek("hosp", "2026", _members(7))).count == 7  # a dry run adds nothing
        assert (await c.counts())["hosp:2026"] == 5
        r = await c.reserve("hosp", "2027", _members(1), 10)  # a new calendar year starts from zero
        assert r.count == 1
        over = await c.reserve("hosp", "2026", _members(12), 10)
        assert (over.admitted, over.count, over.new) == (False, 5, 7)
        assert await client.scard(key("hosp", "2026")) == 5  # a refused transfer changes nothing
        await c.release("hosp", "2026", r.members)
        await client.aclose()

    asyncio.run(go())


def test_the_hard_stop_holds_under_concurrency(redis_server: RedisServer) -> None:
    async def go() -> None:
        clients = [aioredis.from_url(redis_server.url) for _ in range(4)]
        await clients[0].delete(key("race", "2026"))
        counters = [RedisCounters(c) for c in clients]
        people = [member("race", "s", str(i)) for i in range(200)]
        results = await asyncio.gather(*(counters[i % 4].reserve("race", "2026", [people[i]], 50)
                                         for i in range(200)))
        assert sum(r.admitted for r in results) == 50
        assert await clients[0].scard(key("race", "2026")) == 50
        for c in clients:
            await c.aclose()

    asyncio.run(go())


def test_counts_survive_a_redis_restart() -> None:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    workdir, port = tempfile.mkdtemp(prefix="helixgate-exchange-redis-"), free_port()

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
                                 "--appendfsync", "always", "--save", "", "--dir", workdir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                redis.Redis(port=port).ping()
                return proc
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    proc = start()
    try:
        async def add() -> int:
            client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
            r = await RedisCounters(client).reserve("hosp", "2026", _members(4), 100)
            await client.aclose()
            return r.count

        assert asyncio.run(add()) == 4
        proc.terminate()
        proc.wait(10)
        proc = start()

        async def read() -> dict[str, int]:
            client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
            try:
                return await RedisCounters(client).counts()
            finally:
                await client.aclose()

        assert asyncio.run(read()) == {"hosp:2026": 4}
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def test_in_process_fallback_warns(caplog: pytest.LogCaptureFixture) -> None:
    MemoryCounters._warned = False
    with caplog.at_level(logging.WARNING, logger="helixgate.exchange"):
        c = MemoryCounters()
    assert "lost on restart" in caplog.text

    async def go() -> None:
        assert (await c.reserve("h", "2026", _members(3), 3)).admitted
        assert not (await c.reserve("h", "2026", _members(1, "q"), 3)).admitted
        assert await c.counts() == {"h:2026": 3}

    asyncio.run(go())


def test_members_are_hashes_not_identifiers() -> None:
    m = member("hosp", "urn:oid:2.16.156.10011.1.3", "110105198503121234")
    assert "110105198503121234" not in m and len(m) == 64
    keyed = member("hosp", "urn:oid:2.16.156.10011.1.3", "110105198503121234", key=bytes(32))
    assert keyed != m and len(keyed) == 64
    assert keyed != member("hosp", "urn:oid:2.16.156.10011.1.3", "110105198503121234", key=bytes(range(32)))
