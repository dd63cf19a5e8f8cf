"""A worker process: consumes the inbound and bulk streams through the consumer group, at most `concurrency`
entries at a time, and acknowledges (XACK + XDEL) an entry only once it is delivered (or dead-lettered).

- Crash safety: an entry a worker took but never acknowledged stays pending; after `claim_idle_ms` any worker
  takes it over (XAUTOCLAIM) and its delivery count goes up. Workers refresh the idle time of what they are
  still working on (XCLAIM … JUSTID), so a slow delivery or a long bulk job is not taken from a live worker.
- Retries: a transient failure leaves the entry pending, so it is retried after `claim_idle_ms`; once it has
  been delivered `max_attempts` times it moves to the dead-letter stream. Permanent failures go there at once.
- Back-pressure: nothing more is read while `concurrency` entries are in flight, so a slow upstream slows the
  worker down instead of filling its memory; the backlog waits in Redis.
- Budget: a message whose conversion overruns its time or memory budget (gateway.workers.budget) is retried
  like a transient failure, but dead-lettered after `budget_attempts` deliveries.
- Stopping (SIGTERM): nothing new is read; in-flight entries get `grace` seconds to finish, then are cancelled
  and released (their idle time set past `claim_idle_ms`, so another worker takes them over at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ClusterDownError, ReadOnlyError, RedisError, ResponseError, TryAgainError

from gateway.audit import delivery_event
from gateway.workers.budget import OverBudget
from gateway.workers.dlq import dead_letter
from gateway.workers.pipeline import Failure, Message, Permanent, Pipeline, Transient
from gateway.workers.streams import BULK, GROUP, INBOUND, ensure_group, migrate_legacy

log = logging.getLogger("helixgate.worker")
BulkRunner = Callable[[str, dict[bytes, bytes]], Awaitable[None]]
# Errors Redis answers while a master changes (Sentinel or cluster failover, a slot moving): not the worker's fault.
_PASSING = (ClusterDownError, TryAgainError, ReadOnlyError)
# UNBLOCKED: a blocked XREADGROUP whose server turned replica under it (Redis ≥ 7).
_PASSING_CODES = ("UNBLOCKED", "READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int = 8
    claim_idle_ms: int = 60_000
    max_attempts: int = 5
    block_ms: int = 1000
    name: str = ""
    budget_attempts: int = 2  # deliveries of an over-budget message before it is dead-lettered
    grace: float = 10.0  # seconds in-flight entries get to finish on stop


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    """Runs until `stop()`; `pipeline` None means this worker takes bulk jobs only (no upstream configured)."""

    def __init__(self, client: Any, pipeline: Pipeline | None, options: WorkerOptions, *,
                 bulk: BulkRunner | None = None, audit: Any = None) -> None:
        self.client = client
        self.pipeline = pipeline
        self.options = options
        self.name = options.name or consumer_name()
        self.bulk = bulk
        self.audit = audit
        self.streams = [s for s, on in ((INBOUND, pipeline is not None), (BULK, bulk is not None)) if on]
        self.inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.stats = {"delivered": 0, "dead_lettered": 0, "retrying": 0, "claimed": 0, "bulk_jobs": 0,
                      "max_inflight": 0}
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._redis_down = False

    def stop(self) -> None:
        """Stop gracefully; a second call skips what is left of the grace period."""
        if self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()

    async def run(self) -> None:
        if not self.streams:
            raise ValueError("the worker has nothing to consume: configure an upstream and/or bulk jobs")
        opts = self.options
        claim_every = max(0.05, opts.claim_idle_ms / 1000 / 4)
        next_claim = 0.0
        next_touch = time.monotonic() + claim_every
        log.info("worker %s consuming %s (concurrency %d, reclaim after %d ms, %d attempts)", self.name,
                 ", ".join(self.streams), opts.concurrency, opts.claim_idle_ms, opts.max_attempts)
        await self._groups()
        while not self._stopping.is_set():
            try:
                free = opts.concurrency - len(self.inflight)
                if free <= 0:
                    await asyncio.wait(list(self.inflight.values()), timeout=claim_every,
                                       return_when=asyncio.FIRST_COMPLETED)
                    if time.monotonic() >= next_touch:
                        await self._touch()
                        next_touch = time.monotonic() + claim_every
                    continue
                now = time.monotonic()
                if now >= next_touch:
                    await self._touch()
                    next_touch = now + claim_every
                if now >= next_claim:
                    next_claim = now + claim_every
                    if await self._claim(free):
                        continue
                block = min(opts.block_ms, int(claim_every * 1000))
                read = await self.client.xreadgroup(GROUP, self.name, dict.fromkeys(self.streams, ">"), count=free,
                                                    block=block)
                self._up()
                for stream, entries in read or []:
                    for entry_id, fields in entries:
                        self._start(_s(stream), _s(entry_id), fields, 1)
            except ResponseError as e:
                if "NOGROUP" in str(e):  # Redis restarted without its data: recreate the groups
                    await self._groups()
                elif isinstance(e, _PASSING) or str(e).startswith(_PASSING_CODES):  # a failover or resharding
                    # under way: wait it out like an outage
                    self._down(e)
                    await asyncio.sleep(0.5)
                else:
                    raise
            except (RedisError, OSError) as e:
                self._down(e)
                await asyncio.sleep(0.5)
        await self._drain()
        log.info("worker %s stopped: %s", self.name, " ".join(f"{k}={v}" for k, v in self.stats.items()))

    async def _drain(self) -> None:
        """Give in-flight entries the grace period, then cancel and release what is left."""
        if not self.inflight:
            return
        finished = asyncio.ensure_future(asyncio.wait(list(self.inflight.values())))
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait([finished, hurry], timeout=self.options.grace, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (finished, hurry):
            waiter.cancel()
        left = [(key, task) for key, task in self.inflight.items() if not task.done()]
        if not left:
            return
        for _, task in left:
            task.cancel()
        await asyncio.wait([task for _, task in left], timeout=5)
        self.stats["released"] = len(left)
        by_stream: dict[str, list[str]] = {}
        for (stream, eid), _ in left:
            by_stream.setdefault(stream, []).append(eid)
        try:
            for stream, ids in by_stream.items():
                # IDLE makes them look abandoned now; JUSTID does not count a delivery attempt.
                await self.client.xclaim(stream, GROUP, self.name, 0, ids, idle=self.options.claim_idle_ms,
                                         justid=True)
        except (RedisError, OSError) as e:
            log.warning("worker %s: could not release %d entries (%s); they are taken over after %d ms", self.name,
                        len(left), type(e).__name__, self.options.claim_idle_ms)
            return
        log.warning("worker %s: %d entries not finished within %g s released to other workers", self.name,
                    len(left), self.options.grace)

    async def _groups(self) -> None:
        while not self._stopping.is_set():
            try:
                await migrate_legacy(self.client)  # streams named before the hash tag, on a single server
                for stream in self.streams:
                    await ensure_group(self.client, stream)
                self._up()
                return
            except (RedisError, OSError) as e:
                self._down(e)
                await asyncio.sleep(0.5)

    def _down(self, e: Exception) -> None:
        if not self._redis_down:
            log.error("worker %s: cannot reach Redis (%s); retrying", self.name, type(e).__name__)
            self._redis_down = True

    def _up(self) -> None:
        if self._redis_down:
            log.warning("worker %s: Redis is reachable again", self.name)
            self._redis_down = False

    async def _claim(self, free: int) -> int:
        """Take over entries idle past claim_idle_ms (their worker died, or they failed transiently)."""
        taken = 0
        for stream in self.streams:
            if taken >= free:
                break
            result = await self.client.xautoclaim(stream, GROUP, self.name, min_idle_time=self.options.claim_idle_ms,
                                                  start_id="0-0", count=free - taken)
            for entry_id, fields in result[1]:
                eid = _s(entry_id)
                if (stream, eid) in self.inflight or fields is None:
                    continue
                attempts = await self._attempts(stream, eid)
                self.stats["claimed"] += 1
                self._start(stream, eid, fields, attempts)
                taken += 1
        return taken

    async def _attempts(self, stream: str, entry_id: str) -> int:
        info = await self.client.xpending_range(stream, GROUP, min=entry_id, max=entry_id, count=1)
        return int(info[0]["times_delivered"]) if info else 1

    async def _touch(self) -> None:
        """Reset the idle time of the entries in flight, so no other worker takes them."""
        by_stream: dict[str, list[str]] = {}
        for stream, eid in self.inflight:
            by_stream.setdefault(stream, []).append(eid)
        for stream, ids in by_stream.items():
            await self.client.xclaim(stream, GROUP, self.name, 0, ids, justid=True)

    def _start(self, stream: str, entry_id: str, fields: dict[bytes, bytes], attempts: int) -> None:
        task = asyncio.create_task(self._process(stream, entry_id, fields, attempts))
        self.inflight[(stream, entry_id)] = task
        self.stats["max_inflight"] = max(self.stats["max_inflight"], len(self.inflight))
        task.add_done_callback(lambda _t: self.inflight.pop((stream, entry_id), None))

    async def _process(self, stream: str, entry_id: str, fields: dict[bytes, bytes], attempts: int) -> None:
        try:
            if attempts > self.options.max_attempts:
                await self._dead(stream, entry_id, fields, "too-many-attempts",
                                 f"still failing after {attempts - 1} attempts", attempts - 1)
                return
            if stream == BULK:
                assert self.bulk is not None
                await self.bulk(entry_id, fields)
                self.stats["bulk_jobs"] += 1
                await self._ack(stream, entry_id)
                return
            assert self.pipeline is not None
            msg = Message.from_fields(fields)
            try:
                delivered = await self.pipeline.run(msg)
            except Permanent as e:
                await self._dead(stream, entry_id, fields, e.reason, e.detail, attempts, msg)
                return
            except Transient as e:
                limit = self.options.budget_attempts if isinstance(e, OverBudget) else self.options.max_attempts
                if attempts >= limit:
                    await self._dead(stream, entry_id, fields, e.reason, e.detail, attempts, msg)
                else:
                    self._record(msg, "retrying", [], str(e))
                    self.stats["retrying"] += 1
                    log.warning("worker %s: entry %s not delivered (attempt %d of %d): %s", self.name, entry_id,
                                attempts, limit, e)
                return
            await self._ack(stream, entry_id)
            self.stats["delivered"] += 1
            log.debug("worker %s: entry %s delivered (%d created, %d existed)", self.name, entry_id,
                      len(delivered.created), len(delivered.matched))
            self._record(msg, "delivered", delivered.references)
        except (RedisError, OSError) as e:  # left pending; reclaimed once Redis is back
            self._down(e)
        except Exception:
            log.exception("worker %s: entry %s of %s failed unexpectedly; left pending for a retry", self.name,
                          entry_id, stream)

    async def _ack(self, stream: str, entry_id: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(stream, GROUP, entry_id)
        pipe.xdel(stream, entry_id)
        await pipe.execute()

    async def _dead(self, stream: str, entry_id: str, fields: dict[bytes, bytes], reason: str,
                    detail: dict[str, Any] | str, attempts: int, msg: Message | None = None) -> None:
        dead_id = await dead_letter(self.client, stream, entry_id, fields, reason, detail, attempts)
        self.stats["dead_lettered"] += 1
        log.warning("worker %s: entry %s dead-lettered as %s (%s, %d attempts)", self.name, entry_id, dead_id,
                    reason, attempts)
        if msg is not None:
            text = reason if isinstance(detail, dict) else f"{reason}: {detail}"
            self._record(msg, "dead-lettered", [], text)

    def _record(self, msg: Message, outcome: str, refs: list[str], detail: str = "") -> None:
        if self.audit is not None:
            self.audit.record(delivery_event(msg.message_id, msg.facility, outcome, refs, time.time(), detail))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def run_until_signalled(worker: Worker) -> None:
    """Run `worker`, stopping gracefully on SIGTERM/SIGINT (in-flight entries get the grace period to finish; a
    second signal cuts it short)."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, worker.stop)
    await worker.run()


__all__ = ["Failure", "Worker", "WorkerOptions", "consumer_name", "run_until_signalled"]
