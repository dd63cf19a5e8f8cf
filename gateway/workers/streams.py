"""Redis Streams the integration engine uses, and the producer side: appending with group commit.

    helixgate:inbound   messages to convert and deliver (MLLP listener → workers)
    helixgate:bulk      bulk conversion jobs ($convert with Prefer: respond-async → workers)
    helixgate:dlq       entries that failed for good, with the reason (inspect/replay: helixgate dlq)
    helixgate:audit     AuditEvents

Workers share each stream through the consumer group `helixgate-workers`. Entries are deleted once handled
(XACK + XDEL), never trimmed by length, so nothing is dropped before it is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger("helixgate.streams")

INBOUND = "helixgate:inbound"
BULK = "helixgate:bulk"
DLQ = "helixgate:dlq"
AUDIT = "helixgate:audit"
GROUP = "helixgate-workers"


def redis_client(url: str, timeout: float = 2.0) -> aioredis.Redis:
    """A client that fails fast while Redis is down (one retry, for a pooled connection that went stale)."""
    return aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                             retry=Retry(NoBackoff(), 1), health_check_interval=0)


async def ensure_group(client: aioredis.Redis, stream: str, group: str = GROUP) -> None:
    """Create the consumer group (and the stream) unless it exists."""
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def text(fields: dict[bytes, bytes], name: str, default: str = "") -> str:
    value = fields.get(name.encode())
    return value.decode("utf-8", "replace") if value is not None else default


class Enqueuer:
    """XADD with group commit: appends requested while a round trip is under way go together in one pipeline,
    so many connections share Redis round trips. `add` returns only once Redis has the entry."""

    def __init__(self, client: aioredis.Redis, stream: str = INBOUND, max_batch: int = 512) -> None:
        self.client = client
        self.stream = stream
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[str]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def add(self, fields: dict[str, Any]) -> str:
        """Append one entry; returns its stream id. Raises RedisError/OSError when Redis does not take it."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="helixgate-enqueuer")
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        await self._queue.put((fields, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                pipe = self.client.pipeline(transaction=False)
                for fields, _ in batch:
                    pipe.xadd(self.stream, fields)
                results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as e:
                results = [e] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result.decode() if isinstance(result, bytes) else str(result))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
