"""Redis Streams the integration engine uses, and the producer side: appending with group commit.

    {helixgate}:inbound   messages to convert and deliver (MLLP listener → workers)
    {helixgate}:bulk      bulk conversion jobs ($convert with Prefer: respond-async → workers)
    {helixgate}:dlq       entries that failed for good, with the reason (inspect/replay: helixgate dlq)
    helixgate:audit       AuditEvents

Workers share each stream through the consumer group `helixgate-workers`. Entries are deleted once handled
(XACK + XDEL), never trimmed by length, so nothing is dropped before it is delivered.

The braces are a Redis Cluster hash tag: the keys one MULTI/EXEC or one XREADGROUP touches together (the two work
streams, the dead-letter stream, the bulk job hashes) hash to one slot. The audit stream is written alone and
spreads like the cache keys. Streams named before the tag (helixgate:inbound, :bulk, :dlq) are renamed on a single
server when a worker, the gateway or `helixgate dlq` starts (`migrate_legacy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.exceptions import RedisError, ResponseError

from gateway.redis_client import is_cluster, redis_client

log = logging.getLogger("helixgate.streams")

TAG = "{helixgate}"
INBOUND = TAG + ":inbound"
BULK = TAG + ":bulk"
DLQ = TAG + ":dlq"
AUDIT = "helixgate:audit"
GROUP = "helixgate-workers"
LEGACY = {"helixgate:inbound": INBOUND, "helixgate:bulk": BULK, "helixgate:dlq": DLQ}

# KEYS old, new. Renames old to new, or, when both exist (a process of the old version appended after the rename),
# moves up to ARGV[1] entries of old to the end of new (new ids; an entry an old worker still holds may then be
# delivered twice, which delivery tolerates, but none is lost) and deletes old once it is empty. Returns what is left.
_MIGRATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('RENAME', KEYS[1], KEYS[2]) return 0 end
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[1])
for _, e in ipairs(entries) do
  redis.call('XADD', KEYS[2], '*', unpack(e[2]))
  redis.call('XDEL', KEYS[1], e[1])
end
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) return 0 end
return redis.call('XLEN', KEYS[1])
"""

__all__ = ["AUDIT", "BULK", "DLQ", "GROUP", "INBOUND", "Enqueuer", "ensure_group", "migrate_legacy", "redis_client"]


async def migrate_legacy(client: Any, batch: int = 1000) -> None:
    """Move the streams of a single server from their names before the hash tag to the tagged names (a rename:
    consumer groups and pending entries go along). Nothing to do on a cluster (the old names never worked there)."""
    if is_cluster(client):
        return
    for old, new in LEGACY.items():
        for _ in range(10_000):  # bounded: 10M entries appended by an old process at most
            if not await client.eval(_MIGRATE, 2, old, new, batch):
                break
        else:
            log.warning("%s still holds entries after migration; they are moved on the next start", old)


async def ensure_group(client: Any, stream: str, group: str = GROUP) -> None:
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

    def __init__(self, client: Any, stream: str = INBOUND, max_batch: int = 512, *, replicas: int = 0,
                 replica_timeout_ms: int = 1000) -> None:
        self.client = client
        self.stream = stream
        self.max_batch = max_batch
        # With replicas > 0 an append counts only once that many replicas have it (WAIT, on the connection that
        # appended): a failover to a replica then loses nothing the listener acknowledged.
        self.replicas = replicas
        self.replica_timeout_ms = replica_timeout_ms
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
                if self.replicas:
                    where = {}
                    if is_cluster(self.client):  # WAIT on the node that holds the stream (slot map read first)
                        await self.client.initialize()
                        where = {"target_nodes": self.client.get_node_from_key(self.stream)}
                    pipe.execute_command("WAIT", self.replicas, self.replica_timeout_ms, **where)
                results = await pipe.execute(raise_on_error=False)
                if self.replicas:
                    acked = results.pop()
                    if isinstance(acked, BaseException) or int(acked) < self.replicas:
                        short = RedisError(f"the append reached {acked} of {self.replicas} replicas in "
                                           f"{self.replica_timeout_ms} ms")
                        results = [r if isinstance(r, BaseException) else short for r in results]
            except (RedisError, OSError) as e:
                results = [e] * len(batch)
            except Exception as e:  # never leave an appender waiting: it answers AR and the sender resends
                log.exception("appending to %s failed unexpectedly", self.stream)
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
