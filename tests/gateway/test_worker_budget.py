"""The per-message budget of real worker processes (real Redis, Medplum upstream): a poison message is
dead-lettered with the reason after a bounded number of attempts while the worker stays small and keeps
delivering, a slow conversion is stopped at its time budget, and SIGTERM releases in-flight work within the grace
period so another worker takes it over at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.workers.streams import DLQ, GROUP, INBOUND
from tests.conftest import RedisServer
from tests.gateway.test_worker import drained, settings_env
from tests.upstream.engine import WorkerProcess, enqueue, unique_message
from tests.upstream.fixtures import UpstreamControl, wait_for


@pytest.fixture()
def streams(own_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(own_redis.url)
    yield client
    client.close()


@pytest.fixture()
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


def heavy_message(variants: int, n: int = 1) -> bytes:
    """Sample 01 with its variant block repeated, each at a position of its own: `variants` × 19 OBX (under the
    mappers' segment cap when ≤ 500), about a second of conversion per 470 variants."""
    lines = unique_message(n, "H").split(b"\r")
    head = [x for x in lines if x and not x.startswith((b"OBX", b"SPM"))]
    overall = [x for x in lines if x.startswith((b"OBX|1|", b"OBX|2|", b"OBX|3|"))]
    block = [x for x in lines if x.startswith(b"OBX") and b"|2a|" in x]
    out, k = head + overall, 4
    for v in range(variants):
        for row in block:
            parts = row.split(b"|")
            parts[1], parts[4] = str(k).encode(), f"{v + 2}a".encode()
            # a position and dbSNP id of its own: no block reads (or validates) as one seen before
            out.append(b"|".join(parts).replace(b"55191822", b"%d" % (55191822 + v))
                       .replace(b"121434568", b"%d" % (121434568 + v)))
            k += 1
    return b"\r".join(out) + b"\r"


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _consuming(client: redis.Redis) -> bool:
    try:
        return bool(client.xinfo_groups(INBOUND))
    except redis.ResponseError:
        return False


def test_a_poison_message_is_dead_lettered_with_the_reason_and_the_worker_stays_small(
        own_redis: RedisServer, streams: redis.Redis, upstream_control: UpstreamControl, workers) -> None:
    """The reproducer: a 10 MB ORU of 1.7 M OBX segments (ACKed AA by the listener before its segment cap) ran
    the worker to 2.2 GB, ignored SIGTERM and was re-claimed forever."""
    poison = unique_message(1, "X") + b"OBX|1\r" * 1_700_000
    enqueue(streams, poison, control="POISON-1")
    enqueue(streams, unique_message(2, "X"))
    worker = WorkerProcess(settings_env(own_redis.url, upstream_control.base, HELIXGATE_WORKER_MESSAGE_MEMORY_MB="512",
                                        HELIXGATE_WORKER_MESSAGE_TIMEOUT_MS="30000"), "poisoned")
    workers.append(worker)
    parent, children = [], []
    deadline = time.monotonic() + 120
    while not (streams.xlen(DLQ) == 1 and drained(streams)):
        assert time.monotonic() < deadline, worker.log()[-3000:]
        parent.append(_rss_mb(worker.pid))
        children.append(max([0.0, *(_rss_mb(c) for c in _children(worker.pid))]))
        time.sleep(0.05)
    (_, fields), = streams.xrange(DLQ)
    assert fields[b"control"] == b"POISON-1"
    # With the mappers' segment cap the conversion refuses it at once; without, the budget stops it.
    reason = fields[b"dlq.reason"].decode()
    assert reason in ("over-memory-budget", "over-time-budget", "conversion-failed"), fields[b"dlq.detail"]
    assert int(fields[b"dlq.attempts"]) <= 2
    assert upstream_control.count("DiagnosticReport") == 1  # the message after it was delivered
    assert max(parent) < 300, max(parent)  # MB: the worker itself never holds the conversion
    assert max(children) < 512 + 200, max(children)  # the budget, and what one 50 ms poll can overshoot
    started = time.monotonic()
    worker.stop()  # SIGTERM: honoured
    assert worker.proc.returncode is not None and time.monotonic() - started < 12


def test_a_conversion_past_its_time_budget_is_stopped_and_dead_lettered_after_the_budget_attempts(
        own_redis: RedisServer, streams: redis.Redis, upstream_control: UpstreamControl, workers) -> None:
    # ~0.4 s of conversion (HL7 v2 → FHIR alone, on a quiet machine) against a 0.1 s budget; the next, small message
    # takes a few ms in a conversion process warmed before it says it is ready
    enqueue(streams, heavy_message(470), control="SLOW-1")
    worker = WorkerProcess(settings_env(own_redis.url, upstream_control.base,
                                        HELIXGATE_WORKER_MESSAGE_TIMEOUT_MS="100"), "hasty")
    workers.append(worker)
    # Two attempts, each after a conversion process has started (about 3 s; tens of seconds on a loaded machine).
    wait_for(lambda: streams.xlen(DLQ) == 1 and drained(streams), 180, what="the dead letter",
             explain=lambda: worker.log()[-3000:])
    (_, fields), = streams.xrange(DLQ)
    assert fields[b"dlq.reason"] == b"over-time-budget" and fields[b"dlq.attempts"] == b"2"
    assert b"HELIXGATE_WORKER_MESSAGE_TIMEOUT_MS" in fields[b"dlq.detail"]
    enqueue(streams, unique_message(3, "X"))  # the replaced conversion process serves the next message
    wait_for(lambda: drained(streams) and upstream_control.count("DiagnosticReport") == 1, 120, what="a delivery",
             explain=lambda: worker.log()[-3000:])
    assert "over-time-budget" in worker.log()


def test_sigterm_releases_work_still_in_flight_after_the_grace_period(
        own_redis: RedisServer, streams: redis.Redis, upstream_control: UpstreamControl, workers) -> None:
    env = settings_env(own_redis.url, upstream_control.base, HELIXGATE_WORKER_CLAIM_IDLE_MS="30000",
                       HELIXGATE_WORKER_GRACE_MS="50", HELIXGATE_WORKER_CONCURRENCY="1")
    first = WorkerProcess(env, "leaving")
    workers.append(first)
    wait_for(lambda: _consuming(streams), 30, what="the worker's consumer group")
    entry = enqueue(streams, heavy_message(500), control="LONG-1")  # ~0.4 s of conversion: still in flight
    wait_for(lambda: streams.xpending(INBOUND, GROUP)["pending"] == 1, 20, what="the entry taken")
    started = time.monotonic()
    first.stop()
    assert time.monotonic() - started < 10  # the 0.05 s grace, then cancelled and released (was: minutes)
    assert "released" in first.log()
    (pending,) = streams.xpending_range(INBOUND, GROUP, min=entry, max=entry, count=1)
    assert pending["time_since_delivered"] >= 30000  # looks abandoned: any worker takes it over now
    assert pending["times_delivered"] == 1  # releasing is not an attempt
    heir = WorkerProcess(env, "heir")
    workers.append(heir)
    wait_for(lambda: streams.xpending(INBOUND, GROUP)["consumers"][0]["name"] == b"heir", 15,
             what="the heir to take the released entry (well before the 30 s claim delay)")
