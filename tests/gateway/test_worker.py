"""Workers as real processes against a real Redis and Medplum's FHIR router: delivery after validation, a worker
killed mid-message, an upstream that is down (retries, dead letters, replay), a slow upstream (bounded in-flight)
and several workers sharing a stream. The kill, the dead letters and the shared stream run on one Redis server and
on a 3-master Redis Cluster (engine_redis)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import orjson
import pytest
import redis

from gateway.audit import AUDIT_STREAM
from gateway.workers.streams import DLQ, GROUP, INBOUND
from tests.conftest import ROOT, RedisServer, free_port
from tests.redis_topologies import EngineRedis
from tests.upstream.engine import OWN, WorkerProcess, enqueue, unique_message
from tests.upstream.fixtures import UpstreamControl, wait_for


def settings_env(redis_url: str, upstream: str, **extra: str) -> dict[str, str]:
    env = {"HELIXGATE_REDIS_URL": redis_url, "HELIXGATE_UPSTREAM_URL": upstream,
           "HELIXGATE_UPSTREAM_TRANSACTION_MAX_ENTRIES": "8", "HELIXGATE_WORKER_CLAIM_IDLE_MS": "1000",
           "HELIXGATE_WORKER_MAX_ATTEMPTS": "3", "HELIXGATE_UPSTREAM_RETRIES": "1",
           "HELIXGATE_UPSTREAM_TIMEOUT_MS": "5000", "HELIXGATE_WORKER_VALIDATE": "0",
           "HELIXGATE_WORKER_CONCURRENCY": "4"}
    return {**env, **extra}


@pytest.fixture()
def streams(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A client of the test's Redis: `engine_redis` for a test that runs on one server and on a cluster, else the
    test's own server."""
    if "engine_redis" in request.fixturenames:
        client = request.getfixturevalue("engine_redis").client()
    else:
        client = redis.Redis.from_url(request.getfixturevalue("own_redis").url)
    yield client
    client.close()


@pytest.fixture()
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


def drained(client: redis.Redis) -> bool:
    """Nothing left to deliver: the inbound stream is empty and nothing is pending."""
    if client.xlen(INBOUND):
        return False
    try:
        return client.xpending(INBOUND, GROUP)["pending"] == 0
    except redis.ResponseError:
        return False


def assert_delivered_once(control: UpstreamControl, messages: int) -> None:
    for rtype, per_message in OWN.items():
        assert control.count(rtype) == per_message * messages, rtype
    for shared in ("Practitioner", "Organization", "Device"):
        assert control.count(shared) == 1, shared


def audit_outcomes(client: redis.Redis) -> list[str]:
    events = [orjson.loads(f[b"event"]) for _, f in client.xrange(AUDIT_STREAM)]
    return [e["outcomeDesc"].split(":")[0] for e in events if e["type"]["code"] == "110106"]


def _errors_only(detail: bytes) -> object:
    """The error issues of a dead letter's OperationOutcome (its warnings would hide them), or the raw detail."""
    try:
        outcome = orjson.loads(detail)
    except orjson.JSONDecodeError:
        return detail[:2000]
    return [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]


def test_a_worker_validates_and_delivers_each_message_and_a_replay_duplicates_nothing(
        own_redis: RedisServer, streams: redis.Redis, upstream_control: UpstreamControl, workers) -> None:
    workers.append(WorkerProcess(settings_env(own_redis.url, upstream_control.base, HELIXGATE_WORKER_VALIDATE="1"),
                                 "validating"))
    messages = [unique_message(n, "V") for n in range(4)]
    for m in messages:
        enqueue(streams, m)
    wait_for(lambda: drained(streams), 60, what="four deliveries")
    dead = [(f[b"dlq.reason"], _errors_only(f[b"dlq.detail"])) for _, f in streams.xrange(DLQ)]
    assert dead == [], workers[0].log()[-3000:]
    assert_delivered_once(upstream_control, 4)
    for m in messages:  # the same messages again: conditional creates find every resource
        enqueue(streams, m)
    wait_for(lambda: drained(streams) and audit_outcomes(streams).count("delivered") == 8, 30, what="redelivery")
    assert_delivered_once(upstream_control, 4)
    provenance = [p for p in upstream_control.search("Provenance")
                  if p["entity"][0]["what"]["identifier"]["system"] == "urn:helixgate:message-id"]
    assert len(provenance) == 4
    assert {a["type"]["coding"][0]["code"] for a in provenance[0]["agent"]} == {"performer", "assembler"}
    assert provenance[0]["agent"][1]["who"]["identifier"]["value"].startswith("hl7v2-oru-r01/")
    assert all(t["reference"].split("/")[0] in OWN or t["reference"].startswith(("Practitioner/", "Organization/",
                                                                                    "Device/"))
               for t in provenance[0]["target"])
    assert streams.xlen(DLQ) == 0


def test_a_worker_killed_mid_message_leaves_it_to_another_that_delivers_it_once(
        engine_redis: EngineRedis, streams: redis.Redis, upstream_control: UpstreamControl, workers) -> None:
    upstream_control.behave(delayMs=700)  # every transaction takes a while: the kill lands mid-delivery
    for n in range(3):
        enqueue(streams, unique_message(n, "K"))
    env = settings_env(engine_redis.url, upstream_control.base)
    doomed = WorkerProcess(env, "doomed")
    workers.append(doomed)
    wait_for(lambda: upstream_control.stats()["requests"] >= 3, 20, what="transactions in flight")
    doomed.kill()
    pending = streams.xpending(INBOUND, GROUP)
    assert pending["pending"] == 3 and pending["consumers"][0]["name"] == b"doomed"
    time.sleep(0.8)  # the first transactions complete upstream although their worker is gone
    upstream_control.behave(delayMs=0)
    workers.append(WorkerProcess(env, "heir"))
    wait_for(lambda: drained(streams), 30, what="the heir to deliver")
    assert_delivered_once(upstream_control, 3)
    assert streams.xlen(DLQ) == 0
    assert audit_outcomes(streams).count("delivered") == 3


def test_while_the_upstream_is_down_messages_are_retried_then_dead_lettered_and_replay_delivers_them(
        engine_redis: EngineRedis, streams: redis.Redis, upstream_control: UpstreamControl, workers) -> None:
    messages = [unique_message(n, "D") for n in range(3)]
    for m in messages:
        enqueue(streams, m)
    down = f"http://127.0.0.1:{free_port()}/fhir/R4"
    worker = WorkerProcess(settings_env(engine_redis.url, down, HELIXGATE_WORKER_CLAIM_IDLE_MS="400"), "stranded")
    workers.append(worker)
    wait_for(lambda: streams.xlen(DLQ) == 3, 30, what="three dead letters")
    assert drained(streams)
    dead = streams.xrange(DLQ)
    assert sorted(f[b"data"] for _, f in dead) == sorted(messages)  # nothing lost
    assert {f[b"dlq.reason"] for _, f in dead} == {b"upstream-unavailable"}
    assert {f[b"dlq.attempts"] for _, f in dead} == {b"3"}
    wait_for(lambda: audit_outcomes(streams).count("dead-lettered") == 3, 5, what="audit of the dead letters")
    assert audit_outcomes(streams).count("retrying") == 6
    worker.stop()
    env = {**os.environ, **settings_env(engine_redis.url, upstream_control.base)}
    listed = subprocess.run([sys.executable, "-m", "gateway.cli.main", "dlq", "list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0 and listed.stdout.count("upstream-unavailable") == 3
    assert "HGT-D00000" in listed.stdout and "Testperson" not in listed.stdout
    first = dead[0][0].decode()
    shown = subprocess.run([sys.executable, "-m", "gateway.cli.main", "dlq", "show", first], cwd=ROOT, env=env,
                           capture_output=True, timeout=30)
    doc = orjson.loads(shown.stdout)
    assert doc["reason"] == "upstream-unavailable" and doc["fields"]["data"].startswith("MSH|")
    replayed = subprocess.run([sys.executable, "-m", "gateway.cli.main", "dlq", "replay", "--all"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=30)
    assert replayed.returncode == 0 and "replayed 3" in replayed.stderr
    assert streams.xlen(DLQ) == 0 and streams.xlen(INBOUND) == 3
    workers.append(WorkerProcess(settings_env(engine_redis.url, upstream_control.base), "recovered"))
    wait_for(lambda: drained(streams), 30, what="delivery after replay")
    assert_delivered_once(upstream_control, 3)


def test_a_message_that_cannot_be_converted_is_dead_lettered_at_once_with_the_reason(
        own_redis: RedisServer, streams: redis.Redis, upstream_control: UpstreamControl, workers) -> None:
    enqueue(streams, unique_message(1, "P").replace(b"ORU^R01^ORU_R01", b"ADT^A01"), control="POISON-1")
    enqueue(streams, unique_message(2, "P"))
    workers.append(WorkerProcess(settings_env(own_redis.url, upstream_control.base), "picky"))
    wait_for(lambda: drained(streams) and streams.xlen(DLQ) == 1, 30, what="a dead letter and a delivery")
    (_, fields), = streams.xrange(DLQ)
    assert fields[b"dlq.reason"] == b"conversion-failed" and fields[b"dlq.attempts"] == b"1"
    outcome = orjson.loads(fields[b"dlq.detail"])
    assert outcome["issue"][0]["expression"] == ["MSH-9"]
    assert upstream_control.count("DiagnosticReport") == 1


def test_a_slow_upstream_holds_the_worker_to_its_in_flight_limit(
        own_redis: RedisServer, streams: redis.Redis, upstream_control: UpstreamControl, workers) -> None:
    upstream_control.behave(delayMs=150)
    for n in range(16):
        enqueue(streams, unique_message(n, "S"))
    worker = WorkerProcess(settings_env(own_redis.url, upstream_control.base, HELIXGATE_WORKER_CONCURRENCY="2"),
                           "slow")
    workers.append(worker)
    wait_for(lambda: upstream_control.stats()["requests"] > 0, 20, what="the first delivery")
    most_pending, rss = 0, []
    while not drained(streams):
        summary = streams.xpending(INBOUND, GROUP)
        most_pending = max([most_pending, *(c["pending"] for c in summary["consumers"])])
        rss.append(worker.rss_kib())
        assert len(rss) < 300, "the worker did not finish in time"
        time.sleep(0.05)
    assert most_pending <= 2  # never more than its concurrency taken from the stream
    assert max(rss) - rss[0] < 30 * 1024  # KiB: memory stays flat while the backlog waits in Redis
    assert_delivered_once(upstream_control, 16)


def test_several_workers_share_one_stream(engine_redis: EngineRedis, streams: redis.Redis,
                                          upstream_control: UpstreamControl, workers) -> None:
    upstream_control.behave(delayMs=100)
    env = settings_env(engine_redis.url, upstream_control.base, HELIXGATE_WORKER_CONCURRENCY="1")
    pair = [WorkerProcess(env, "left"), WorkerProcess(env, "right")]
    workers.extend(pair)
    time.sleep(1.0)  # both consumers are up before the messages arrive
    for n in range(8):
        enqueue(streams, unique_message(n, "W"))
    wait_for(lambda: drained(streams), 30, what="eight deliveries")
    for w in pair:
        w.stop()
    counts = [int(re.search(r"delivered=(\d+)", w.log()).group(1)) for w in pair]
    assert sum(counts) == 8 and min(counts) > 0
    assert_delivered_once(upstream_control, 8)
