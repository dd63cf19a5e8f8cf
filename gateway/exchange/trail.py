"""The exchange audit trail: append-only, tamper-evident. Each transfer's AuditEvent is appended to the Redis Stream
`{helixgate:exchange:audit}` with the hash of the entry before it and its own hash, SHA-256(previous hash ‖ canonical
JSON of the event): changing, removing or reordering any entry breaks every hash after it (`verify`). The chain's
head is kept beside the stream and updated in the same MULTI/EXEC, under WATCH, so concurrent appends from several
gateway processes serialise. The stream is never trimmed; `export` writes it out (NDJSON) with the hashes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from redis.exceptions import WatchError

log = logging.getLogger("helixgate.exchange")
# One hash tag for both: the head is WATCHed and set in the MULTI/EXEC that appends, so on a Redis Cluster they
# must share a slot (gateway/redis_client.py).
STREAM = "{helixgate:exchange:audit}"
HEAD = STREAM + ":head"
GENESIS = "0" * 64


def link(previous: str, event: dict[str, Any]) -> str:
    return hashlib.sha256(previous.encode() + orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()


class RedisTrail:
    kind = "redis"

    def __init__(self, client: Any, stream: str = STREAM, head: str = HEAD) -> None:
        self.client, self.stream, self.head = client, stream, head

    async def append(self, event: dict[str, Any]) -> str:
        """Append `event`; returns its hash. Retries when another process appended in between."""
        for _ in range(100):
            async with self.client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.head)
                    previous = (await pipe.get(self.head) or GENESIS.encode()).decode()
                    digest = link(previous, event)
                    pipe.multi()
                    pipe.xadd(self.stream, {"event": orjson.dumps(event, option=orjson.OPT_SORT_KEYS),
                                            "prev": previous, "hash": digest})
                    pipe.set(self.head, digest)
                    await pipe.execute()
                    return digest
                except WatchError:
                    continue
        raise RuntimeError("the exchange audit trail stayed contended for 100 attempts")

    async def entries(self, page: int = 500) -> AsyncIterator[dict[str, Any]]:
        start = "-"
        while True:
            batch = await self.client.xrange(self.stream, min=start, count=page)
            for sid, fields in batch:
                yield {"id": sid.decode(), "prev": fields[b"prev"].decode(), "hash": fields[b"hash"].decode(),
                       "event": orjson.loads(fields[b"event"])}
            if len(batch) < page:
                return
            last = batch[-1][0].decode()
            ms, seq = last.split("-")
            start = f"{ms}-{int(seq) + 1}"


class MemoryTrail:
    """The embedded mode's trail: in process memory (the same chain), gone on restart."""

    kind = "memory"

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    async def append(self, event: dict[str, Any]) -> str:
        previous = self.items[-1]["hash"] if self.items else GENESIS
        digest = link(previous, event)
        self.items.append({"id": str(len(self.items)), "prev": previous, "hash": digest,
                           "event": orjson.loads(orjson.dumps(event, option=orjson.OPT_SORT_KEYS))})
        return digest

    async def entries(self, page: int = 500) -> AsyncIterator[dict[str, Any]]:
        for item in list(self.items):
            yield item


def verify(entries: Iterable[dict[str, Any]]) -> tuple[int, str | None]:
    """(entries checked, the first problem or None). The first entry may follow an exported, older part."""
    previous: str | None = None
    n = 0
    for n, item in enumerate(entries, 1):
        if previous is not None and item["prev"] != previous:
            return n, f"entry {item['id']}: its previous hash is not the hash of the entry before it"
        if link(item["prev"], item["event"]) != item["hash"]:
            return n, f"entry {item['id']}: its hash does not match its content"
        previous = item["hash"]
    return n, None
