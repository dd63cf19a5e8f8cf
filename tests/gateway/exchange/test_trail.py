"""The exchange audit trail: a hash chain in a Redis Stream that shows any change, removal or reordering."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.exchange.trail import GENESIS, MemoryTrail, RedisTrail, link, verify
from tests.conftest import RedisServer


def _event(n: int) -> dict:
    return {"resourceType": "AuditEvent", "id": f"e{n}", "outcomeDesc": "permit"}


def test_chain_and_tamper_evidence(redis_server: RedisServer) -> None:
    async def go() -> list[dict]:
        client = aioredis.from_url(redis_server.url)
        trail = RedisTrail(client, stream="test:trail", head="test:trail:head")
        await client.delete("test:trail", "test:trail:head")
        await asyncio.gather(*(RedisTrail(aioredis.from_url(redis_server.url), "test:trail", "test:trail:head")
                               .append(_event(i)) for i in range(20)))  # concurrent appenders serialise
        items = [i async for i in trail.entries(page=7)]
        await client.aclose()
        return items

    items = asyncio.run(go())
    assert len(items) == 20 and items[0]["prev"] == GENESIS
    assert verify(items) == (20, None)
    changed = [dict(i) for i in items]
    changed[5] = {**changed[5], "event": {**changed[5]["event"], "outcomeDesc": "refuse"}}
    n, problem = verify(changed)
    assert problem is not None and "does not match" in problem and n == 6
    removed = items[:3] + items[4:]
    assert "previous hash" in (verify(removed)[1] or "")
    swapped = [items[1], items[0], *items[2:]]
    assert verify(swapped)[1] is not None


def test_memory_trail_is_the_same_chain() -> None:
    async def go() -> list[dict]:
        t = MemoryTrail()
        for i in range(3):
            await t.append(_event(i))
        return [i async for i in t.entries()]

    items = asyncio.run(go())
    assert verify(items) == (3, None)
    assert items[1]["hash"] == link(items[0]["hash"], _event(1))
