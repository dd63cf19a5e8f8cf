"""The dead-letter stream: entries that failed for good, kept with the reason, to inspect and replay.

A dead-lettered entry holds the original fields plus `dlq.stream`, `dlq.id`, `dlq.reason`, `dlq.detail`
(an OperationOutcome as JSON, or a message), `dlq.attempts` and `dlq.at`. Replaying appends the original fields
to the original stream again and removes the dead letter, in one MULTI/EXEC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.workers.streams import DLQ, GROUP

_META = b"dlq."


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    stream: str
    original_id: str
    reason: str
    detail: str
    attempts: int
    at: str
    fields: dict[bytes, bytes]  # the original entry

    @property
    def summary(self) -> dict[str, Any]:
        """What `dlq list` shows: no message content."""
        f = self.fields
        return {"id": self.id, "at": self.at, "stream": self.stream, "reason": self.reason, "attempts": self.attempts,
                "facility": f.get(b"facility", b"").decode("utf-8", "replace"),
                "control": f.get(b"control", b"").decode("utf-8", "replace"),
                "job": f.get(b"job", b"").decode("utf-8", "replace")}


def _decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
    def meta(name: str) -> str:
        return fields.get(_META + name.encode(), b"").decode("utf-8", "replace")

    original = {k: v for k, v in fields.items() if not k.startswith(_META)}
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return DeadLetter(eid, meta("stream"), meta("id"), meta("reason"), meta("detail"), int(meta("attempts") or 0),
                      meta("at"), original)


async def dead_letter(client: Any, stream: str, entry_id: str, fields: dict[bytes, bytes], reason: str,
                      detail: str | dict[str, Any], attempts: int) -> str:
    """Move an entry to the dead-letter stream: XADD there, XACK and XDEL here, atomically."""
    info = orjson.dumps(detail).decode() if isinstance(detail, dict) else detail
    dead = {**fields, b"dlq.stream": stream, b"dlq.id": entry_id, b"dlq.reason": reason, b"dlq.detail": info,
            b"dlq.attempts": str(attempts), b"dlq.at": datetime.now(UTC).isoformat(timespec="seconds")}
    pipe = client.pipeline(transaction=True)
    pipe.xadd(DLQ, dead)
    pipe.xack(stream, GROUP, entry_id)
    pipe.xdel(stream, entry_id)
    new_id, _, _ = await pipe.execute()
    return new_id.decode() if isinstance(new_id, bytes) else str(new_id)


async def list_dead(client: Any, count: int = 100) -> list[DeadLetter]:
    """The oldest `count` dead letters."""
    return [_decode(i, f) for i, f in await client.xrange(DLQ, count=count)]


async def get_dead(client: Any, dead_id: str) -> DeadLetter | None:
    found = await client.xrange(DLQ, min=dead_id, max=dead_id, count=1)
    return _decode(*found[0]) if found else None


async def replay(client: Any, dead_id: str) -> str | None:
    """Put a dead letter back on its stream; returns the new entry id, or None when there is no such letter."""
    dead = await get_dead(client, dead_id)
    if dead is None:
        return None
    pipe = client.pipeline(transaction=True)
    pipe.xadd(dead.stream, dead.fields)
    pipe.xdel(DLQ, dead_id)
    new_id, _ = await pipe.execute()
    return new_id.decode() if isinstance(new_id, bytes) else str(new_id)


async def replay_all(client: Any) -> list[str]:
    """Replay every dead letter (oldest first); returns the new entry ids."""
    out: list[str] = []
    while True:
        batch = await client.xrange(DLQ, count=100)
        if not batch:
            return out
        for dead_id, _ in batch:
            new = await replay(client, dead_id.decode() if isinstance(dead_id, bytes) else dead_id)
            if new:
                out.append(new)
