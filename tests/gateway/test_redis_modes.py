"""Redis deployment modes: HELIXGATE_REDIS_URL for one server, a cluster and Sentinel (read and refused), keys of
the single-server layout before the hash tag found again, the MLLP listener and the audit trail on a 3-master
cluster, and a Sentinel failover under a worker (master killed; every acknowledged message delivered once)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from gateway.audit import AuditLog, read_events, rest_event
from gateway.bulk.jobs import LEGACY_JOB_PREFIX, job_key, job_state
from gateway.exchange.counters import RedisCounters
from gateway.exchange.trail import HEAD, STREAM, RedisTrail, verify
from gateway.redis_client import describe, parse, redis_client
from gateway.settings import Settings, SettingsError
from gateway.workers.streams import AUDIT, BULK, DLQ, GROUP, INBOUND, Enqueuer, migrate_legacy
from tests.conftest import RedisServer, ServedApp, free_port, start_redis
from tests.gateway.test_doctor import doctor, statuses
from tests.gateway.test_mllp import Listener
from tests.gateway.test_worker import assert_delivered_once, settings_env
from tests.redis_topologies import ClusterServers, SentinelServers
from tests.upstream.engine import MllpClient, WorkerProcess, enqueue, segments, unique_message
from tests.upstream.fixtures import UpstreamControl, wait_for


def test_the_url_names_the_mode_its_nodes_and_options() -> None:
    single = parse("redis://:pw@127.0.0.1:6380/2")
    assert (single.mode, single.options["port"], single.options["db"]) == ("single", 6380, 2)
    cluster = parse("redis+cluster://user:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert cluster.mode == "cluster"
    assert cluster.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (cluster.options["username"], cluster.options["password"], cluster.options["ssl"]) == ("user", "pw", False)
    assert parse("rediss+cluster://h:7000?ssl_ca_certs=/etc/ca.pem").options["ssl"] is True
    sentinel = parse("redis+sentinel://:pw@s1:26380,s2/gateway-master/1?sentinel_password=spw")
    assert (sentinel.mode, sentinel.service, sentinel.options["db"]) == ("sentinel", "gateway-master", 1)
    assert sentinel.hosts == (("s1", 26380), ("s2", 26379))  # Sentinel's own default port
    assert sentinel.options["password"] == "pw" and sentinel.sentinel_options == {"password": "spw"}
    # descriptions for logs carry no credentials
    assert "pw" not in describe("redis+cluster://user:pw@10.0.0.1:7000") + describe("redis://:pw@h:1/0")


@pytest.mark.parametrize(("url", "says"), [
    ("http://127.0.0.1:6379", "must start with redis://"),
    ("127.0.0.1:6379", "no scheme"),
    ("redis+cluster://h:7000/3", "database 0 only"),
    ("redis+cluster://h:port", "no valid port"),
    ("redis+cluster://", "names no host"),
    ("redis+sentinel://s1:26379", "names the master"),
    ("redis+sentinel://[::1:26379/m", "unclosed"),
])
def test_a_bad_url_is_refused_when_the_settings_are_read(url: str, says: str) -> None:
    with pytest.raises(SettingsError, match="HELIXGATE_REDIS_URL") as raised:
        Settings.from_env({"HELIXGATE_REDIS_URL": url})
    assert says in str(raised.value)


def test_streams_and_jobs_named_before_the_hash_tag_are_found_again(own_redis: RedisServer) -> None:
    """A single server written by a version before the tag: its streams are renamed with their consumer group and
    pending entries; an old process appending after that has its entries moved; an old job hash is found."""
    sync = redis.Redis.from_url(own_redis.url)
    old_ids = [sync.xadd("helixgate:inbound", {"n": str(n)}) for n in range(3)]
    sync.xgroup_create("helixgate:inbound", GROUP, id="0")
    sync.xreadgroup(GROUP, "old-worker", {"helixgate:inbound": ">"}, count=1)  # one taken, not acknowledged
    sync.xadd("helixgate:dlq", {"dlq.reason": "conversion-failed"})
    sync.xadd(BULK, {"job": "new"})  # the new name exists already: the old one's entries are appended to it
    sync.xadd("helixgate:bulk", {"job": "old"})
    job = uuid.uuid4().hex
    sync.hset(LEGACY_JOB_PREFIX + job, mapping={"status": "queued", "total": "0"})

    async def scenario() -> dict[str, str]:
        client = redis_client(own_redis.url)
        try:
            await migrate_legacy(client)
            await migrate_legacy(client)  # idempotent
            return await job_state(client, job)
        finally:
            await client.aclose()

    state = asyncio.run(scenario())
    assert not sync.exists("helixgate:inbound", "helixgate:dlq", "helixgate:bulk")
    assert [i for i, _ in sync.xrange(INBOUND)] == old_ids  # renamed: same ids
    pending = sync.xpending(INBOUND, GROUP)
    assert pending["pending"] == 1 and pending["consumers"][0]["name"] == b"old-worker"
    assert [f[b"dlq.reason"] for _, f in sync.xrange(DLQ)] == [b"conversion-failed"]
    assert [f[b"job"] for _, f in sync.xrange(BULK)] == [b"new", b"old"]
    assert state["status"] == "queued"
    assert sync.exists(job_key(job)) and not sync.exists(LEGACY_JOB_PREFIX + job)
    sync.close()


def test_the_mllp_listener_and_the_audit_trail_write_to_a_cluster(redis_cluster: ClusterServers) -> None:
    redis_cluster.flush()
    cluster = redis_cluster.client()
    listener = Listener(redis_cluster.url)
    client = MllpClient(listener.port)
    try:
        for n in range(5):
            ack = segments(client.send(unique_message(n, "C", original_mode=True)))
            assert ack["MSA"][1:3] == ["AA", f"HGT-C{n:05d}"]
    finally:
        client.close()
        listener.close()
    assert [f[b"control"] for _, f in cluster.xrange(INBOUND)] == [f"HGT-C{n:05d}".encode() for n in range(5)]

    async def audit() -> list[dict]:
        client = redis_client(redis_cluster.url)
        log = AuditLog(client, interval=0.01)
        for n in range(3):
            log.record(rest_event("GET", f"/fhir/Patient/{n}", 200, "127.0.0.1", time.time()))
        await log.close()
        events = await read_events(client)
        await client.aclose()
        return events

    events = asyncio.run(audit())
    assert [e["entity"][0]["what"]["reference"] for e in events] == [f"Patient/{n}" for n in range(3)]

    async def wait_for_a_replica() -> str:
        """WAIT goes to the node of the stream's slot; this cluster's masters have no replica, so it is refused."""
        client = redis_client(redis_cluster.url)
        enqueuer = Enqueuer(client, replicas=1, replica_timeout_ms=100)
        try:
            await enqueuer.add({"control": "W1"})
        except redis.RedisError as e:
            return str(e)
        finally:
            await enqueuer.close()
            await client.aclose()
        return "accepted"

    assert asyncio.run(wait_for_a_replica()) == "the append reached 0 of 1 replicas in 100 ms"
    assert cluster.xlen(AUDIT) == 3
    # the tagged keys share a slot; the audit stream and cache keys hash on their own
    assert len({cluster.keyslot(k) for k in (INBOUND, BULK, DLQ, job_key("0" * 32))}) == 1
    assert cluster.keyslot(AUDIT) != cluster.keyslot(INBOUND)
    cluster.close()


def test_a_bulk_job_left_by_a_dead_worker_is_finished_by_another_in_the_shared_folder(
        redis_cluster: ClusterServers, tmp_path: Path) -> None:
    """Two workers (standing for two hosts) on the cluster and one shared bulk folder: the first is killed mid-job,
    the second takes the job over and writes every output; the gateway serves them from the same folder."""
    redis_cluster.flush()
    shared = tmp_path / "shared-bulk"
    env = {"HELIXGATE_REDIS_URL": redis_cluster.url, "HELIXGATE_BULK_DIR": str(shared), "HELIXGATE_UPSTREAM_URL": "",
           "HELIXGATE_WORKER_CLAIM_IDLE_MS": "1500"}
    first = WorkerProcess(env, "host-a")
    second: WorkerProcess | None = None
    try:
        with ServedApp(Settings(redis_url=redis_cluster.url, bulk_dir=str(shared))) as app:
            body = b"".join(unique_message(n, "J") for n in range(120))
            kick = httpx.post(f"{app.url}/fhir/$convert", content=body,
                              headers={"Content-Type": "x-application/hl7-v2+er7", "Prefer": "respond-async"},
                              timeout=10)
            assert kick.status_code == 202
            status = kick.headers["content-location"]

            def running() -> bool:
                r = httpx.get(status, timeout=10)
                assert r.status_code == 202, "the job ended before the worker was killed"
                done = r.headers["x-progress"].split("/")[0]
                return done.isdigit() and int(done) > 0

            wait_for(running, 60, interval=0.05, what="the first worker to be mid-job")
            first.kill()
            second = WorkerProcess(env, "host-b")
            done = wait_for(lambda: (r := httpx.get(status, timeout=10)).status_code == 200 and r, 90, interval=0.2,
                            what="the second worker to finish the job")
            outputs = {o["type"]: o for o in done.json()["output"]}
            assert outputs["Patient"]["count"] == 120
            patients = httpx.get(outputs["Patient"]["url"], timeout=10).content.splitlines()
            assert sorted(orjson.loads(p)["identifier"][0]["value"] for p in patients) == [
                f"PAT-J{n:05d}" for n in range(120)]
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert "bulk_jobs=1" in second.log()  # the job was the second's to finish
    assert redis_cluster.client().xlen(BULK) == 0


def test_the_exchange_trail_and_counters_hold_on_a_cluster(redis_cluster: ClusterServers) -> None:
    """The chain's head is WATCHed and set with the append (one slot by its hash tag): concurrent appenders from
    separate clients still make one verifying chain; the per-year subject sets live on several nodes and are all
    counted; the hard stop holds under concurrency."""
    redis_cluster.flush()

    async def scenario() -> tuple[list[dict], list[bool], dict[str, int]]:
        clients = [redis_client(redis_cluster.url) for _ in range(4)]
        try:
            await asyncio.gather(*(RedisTrail(clients[i % 4]).append({"resourceType": "AuditEvent", "id": f"e{i}"})
                                   for i in range(16)))
            items = [i async for i in RedisTrail(clients[0]).entries(page=5)]
            counters = [RedisCounters(c) for c in clients]
            admitted = await asyncio.gather(*(counters[i % 4].reserve("lab-a", "2026", [f"p{i}"], 5)
                                              for i in range(12)))
            for n in range(8):
                await counters[0].reserve(f"exporter-{n}", "2026", ["x", "y"], 100)
            return items, [r.admitted for r in admitted], await counters[0].counts()
        finally:
            for c in clients:
                await c.aclose()

    items, admitted, counts = asyncio.run(scenario())
    assert len(items) == 16 and verify(items) == (16, None)
    assert admitted.count(True) == 5 and counts["lab-a:2026"] == 5
    assert all(counts[f"exporter-{n}:2026"] == 2 for n in range(8))
    cluster = redis_cluster.client()
    assert cluster.keyslot(STREAM) == cluster.keyslot(HEAD)
    subject_nodes = {cluster.get_node_from_key(f"helixgate:exchange:subjects:exporter-{n}:2026").port
                     for n in range(8)}
    assert len(subject_nodes) > 1  # spread, yet every set counted
    cluster.close()


def test_doctor_checks_every_master_of_a_cluster_and_names_an_unreachable_one(redis_cluster: ClusterServers,
                                                                              tmp_path: Path) -> None:
    code, found, text = doctor({"HELIXGATE_REDIS_URL": redis_cluster.url}, tmp_path)
    answered = [f["detail"] for f in found["redis"] if f["status"] == "ok"]
    assert sorted(answered) == sorted(f"Redis Cluster master 127.0.0.1:{p} answers" for p in redis_cluster.ports), \
        found["redis"]
    assert statuses(found, "redis persistence") == ["fail"] * 3  # each master without its append-only file
    assert code == 1 and "Traceback" not in text
    code, found, text = doctor({"HELIXGATE_REDIS_URL": f"redis+cluster://user:s3cret@127.0.0.1:{free_port()}"},
                               tmp_path)
    assert statuses(found, "redis") == ["fail"] and "Redis Cluster (seeds 127.0.0.1:" in found["redis"][0]["detail"]
    assert code == 1 and "s3cret" not in text and "Traceback" not in text


def test_a_worker_waits_out_its_master_turned_replica_and_goes_on(upstream_control: UpstreamControl) -> None:
    """The worker's server is demoted to a replica (as a failover does to an old master that comes back): every
    write answers READONLY. The worker waits like during an outage instead of exiting, and delivers once its
    server is a master again."""
    first, second = start_redis(), start_redis()
    worker = WorkerProcess(settings_env(first.url, upstream_control.base, HELIXGATE_WORKER_CLAIM_IDLE_MS="400"),
                           "demoted")
    try:
        a, b = redis.Redis(port=first.port), redis.Redis(port=second.port)
        enqueue(a, unique_message(0, "R"))
        wait_for(lambda: upstream_control.count("DiagnosticReport") == 1, 60, what="the first delivery")
        b.replicaof("127.0.0.1", first.port)
        wait_for(lambda: b.info("replication")["master_link_status"] == "up", 20, what="the copy")
        b.replicaof("NO", "ONE")
        a.replicaof("127.0.0.1", second.port)  # the worker's server: now a replica, READONLY to it
        wait_for(lambda: a.info("replication").get("master_link_status") == "up", 20, what="the demotion")
        time.sleep(1.5)  # several reads and reclaims refused
        assert worker.proc.poll() is None, worker.log()[-2000:]
        a.replicaof("NO", "ONE")
        enqueue(a, unique_message(1, "R"))
        wait_for(lambda: upstream_control.count("DiagnosticReport") == 2, 60, what="delivery after the promotion")
        assert worker.proc.poll() is None
        log = worker.log()
        assert "cannot reach Redis (" in log and "Redis is reachable again" in log  # refused, and said so, once
    finally:
        worker.stop()
        first.stop()
        second.stop()


def test_a_sentinel_failover_loses_no_acknowledged_message(redis_sentinel: SentinelServers,
                                                           upstream_control: UpstreamControl) -> None:
    """MLLP in, worker out, both through Sentinel. The master is killed mid-stream; the listener acknowledges a
    message only once the replica has it (HELIXGATE_REDIS_WAIT_REPLICAS=1), refuses while there is no master or no
    replica (the sender resends), and the killed server rejoins as a replica. Every message
    acknowledged with AA is delivered, once."""
    mllp_port = free_port()
    settings = Settings(redis_url=redis_sentinel.url, mllp_port=mllp_port, redis_wait_replicas=1,
                        redis_wait_timeout_ms=500)
    worker = WorkerProcess(settings_env(redis_sentinel.url, upstream_control.base), "failover")
    sent = 12
    old = redis_sentinel.master_port
    acked: list[str] = []
    refused = 0
    restarted = False
    try:
        with ServedApp(settings):
            sender = MllpClient(mllp_port, timeout=15)
            try:
                for n in range(sent):
                    if n == 4:
                        redis_sentinel.kill(old)
                    deadline = time.monotonic() + 60
                    while True:  # the sender's part: resend until AA
                        try:
                            ack = segments(sender.send(unique_message(n, "F", original_mode=True)))
                        except OSError:
                            sender.close()
                            sender = MllpClient(mllp_port, timeout=15)
                            continue
                        if ack["MSA"][1] == "AA":
                            acked.append(ack["MSA"][2])
                            break
                        refused += 1
                        assert time.monotonic() < deadline, "the listener kept refusing"
                        if not restarted and _master_port(redis_sentinel) == redis_sentinel.replica_port:
                            redis_sentinel.restart(old)  # the operator restarts the dead server: now a replica
                            restarted = True
                        time.sleep(0.2)
            finally:
                sender.close()
        assert acked == [f"HGT-F{n:05d}" for n in range(sent)]
        assert restarted and refused > 0  # there was a time without a master, or without a replica, and it was said so
        wait_for(lambda: upstream_control.count("DiagnosticReport") == sent, 90, what="every delivery")
        time.sleep(1.0)  # nothing delivered twice shows up late
        assert_delivered_once(upstream_control, sent)
        wait_for(redis_sentinel.settled, 30, what="the Sentinels agreeing on one master with the other its replica")
    finally:
        worker.stop()
    assert "Traceback" not in worker.log()


def _master_port(servers: SentinelServers) -> int:
    try:
        return servers.master()[1]
    except RuntimeError:
        return 0
