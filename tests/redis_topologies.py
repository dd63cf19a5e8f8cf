"""Redis deployments on loopback for the tests: a 3-master Redis Cluster and a Sentinel-watched master with one
replica, each redis-server in its own temporary directory, torn down after the session (or the test).

`engine_redis` is the fixture the engine's Redis tests take to run on each mode: a single server and the cluster,
each flushed before the test, with `.url` (HELIXGATE_REDIS_URL) and `.client()` (a synchronous redis-py client of
the matching kind, for the test's own reads and writes)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster


def _port_pair() -> tuple[int, int]:
    """Two free loopback ports (a cluster node's client port and its bus port)."""
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]


def _binary(name: str = "redis-server") -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; .ci/run installs it (apt-get install redis-server)")
    return found


def _wait(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen within {seconds} s")


def _spawn(args: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / "server.log").open("ab")
    return subprocess.Popen([_binary(), *args], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class ClusterServers:
    """Three masters on loopback, 16384 slots split between them."""

    ports: list[int]
    procs: list[subprocess.Popen[bytes]]
    workdir: str

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def client(self) -> RedisCluster:
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports])

    def keys(self, pattern: str) -> list[bytes]:
        """KEYS over every master (a cluster client's KEYS asks one node)."""
        found: list[bytes] = []
        for port in self.ports:
            with redis.Redis(port=port) as node:
                found += node.keys(pattern)
        return found

    def flush(self) -> None:
        for port in self.ports:
            with redis.Redis(port=port) as node:
                node.flushall()

    def stop(self) -> None:
        for proc in self.procs:
            _stop(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_cluster(masters: int = 3) -> ClusterServers:
    root = Path(tempfile.mkdtemp(prefix="helixgate-cluster-"))
    ports, buses, procs = [], [], []
    try:
        for i in range(masters):
            port, bus = _port_pair()
            workdir = root / f"node{i}"
            workdir.mkdir()
            procs.append(_spawn(["--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1",
                                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                 "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
                                 "--dir", str(workdir)], workdir))
            ports.append(port)
            buses.append(bus)
        for port in ports:
            _wait(lambda port=port: redis.Redis(port=port).ping(), 10, f"cluster node :{port} answering")
        # What `redis-cli --cluster create` does, without its prompt: each master its share of the slots
        # (CLUSTER ADDSLOTSRANGE), then every node told of the others (CLUSTER MEET).
        share = 16384 // masters
        for i, port in enumerate(ports):
            last = 16383 if i == masters - 1 else (i + 1) * share - 1
            with redis.Redis(port=port) as node:
                node.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
        with redis.Redis(port=ports[0]) as first:
            for port, bus in zip(ports[1:], buses[1:], strict=True):
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus)

        def ok() -> bool:
            for port in ports:
                with redis.Redis(port=port) as node:
                    info = node.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info or f"cluster_known_nodes:{masters}" not in info:
                        return False
            return True

        _wait(ok, 20, "the cluster reaching cluster_state:ok")
    except BaseException:
        for proc in procs:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return ClusterServers(ports, procs, str(root))


@dataclass
class SentinelServers:
    """A master and one replica, watched by three Sentinels (quorum 2) that fail over after 1 s of silence."""

    master_port: int
    replica_port: int
    sentinel_ports: list[int]
    procs: dict[int, subprocess.Popen[bytes]]
    workdir: str
    service: str = "helixgate"
    stopped: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+sentinel://{','.join(f'127.0.0.1:{p}' for p in self.sentinel_ports)}/{self.service}"

    def master(self) -> tuple[str, int]:
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError, OSError), redis.Redis(port=port) as s:
                host, mport = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
                return host.decode(), int(mport)
        raise RuntimeError("no Sentinel answers")

    def settled(self) -> bool:
        """Every Sentinel names the same master, and the other server is its replica with the link up. Which of the
        two is master is Sentinel's to choose: under load it may fail over a second time, back to the restarted one."""
        masters = set()
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError, OSError), redis.Redis(port=port) as s:
                masters.add(int(s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)[1]))
        if len(masters) != 1 or (master := masters.pop()) not in (self.master_port, self.replica_port):
            return False
        other = self.replica_port if master == self.master_port else self.master_port
        with contextlib.suppress(redis.RedisError, OSError), redis.Redis(port=other) as r:
            info = r.info("replication")
            return info["role"] == "slave" and info["master_port"] == master and info["master_link_status"] == "up"
        return False

    def client(self) -> redis.Redis:
        from redis.sentinel import Sentinel

        return Sentinel([("127.0.0.1", p) for p in self.sentinel_ports], socket_timeout=2).master_for(
            self.service, socket_timeout=2)

    def kill(self, port: int) -> None:
        """SIGKILL the server on `port`: no chance to write or hand over anything."""
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)
        self.stopped.append(port)

    def restart(self, port: int) -> None:
        """Start the server killed on `port` again, empty and as a master: the Sentinels make it a replica."""
        workdir = Path(self.workdir) / f"redis{port}"
        self.procs[port] = _spawn(["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--dir", str(workdir)], workdir)

    def stop(self) -> None:
        for proc in self.procs.values():
            _stop(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_sentinel() -> SentinelServers:
    root = Path(tempfile.mkdtemp(prefix="helixgate-sentinel-"))
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        master, replica = _port_pair()
        for port, extra in ((master, []), (replica, ["--replicaof", "127.0.0.1", str(master)])):
            workdir = root / f"redis{port}"
            workdir.mkdir()
            procs[port] = _spawn(["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                  "--dir", str(workdir), *extra], workdir)
        _wait(lambda: redis.Redis(port=replica).info("replication").get("master_link_status") == "up", 20,
              "the replica in sync")
        sentinels = []
        for _ in range(3):
            port, _unused = _port_pair()
            workdir = root / f"sentinel{port}"
            workdir.mkdir()
            conf = workdir / "sentinel.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                            f"sentinel monitor helixgate 127.0.0.1 {master} 2\n"
                            "sentinel down-after-milliseconds helixgate 1000\n"
                            "sentinel failover-timeout helixgate 10000\n"
                            "sentinel parallel-syncs helixgate 1\n")
            procs[port] = _spawn([str(conf), "--sentinel"], workdir)
            sentinels.append(port)

        def watching() -> bool:
            for port in sentinels:
                with redis.Redis(port=port) as s:
                    info = s.sentinel_master("helixgate")
                    if int(info["num-other-sentinels"]) < 2 or int(info["num-slaves"]) < 1:
                        return False
            return True

        _wait(watching, 30, "the Sentinels seeing each other and the replica")
    except BaseException:
        for proc in procs.values():
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return SentinelServers(master, replica, sentinels, procs, str(root))


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterServers]:
    """A 3-master Redis Cluster on loopback for the session (flush it before use: `engine_redis` does)."""
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture()
def redis_sentinel() -> Iterator[SentinelServers]:
    """A master, a replica and three Sentinels for one test (which may kill the master)."""
    servers = start_sentinel()
    yield servers
    servers.stop()


@dataclass
class EngineRedis:
    """One Redis deployment as the engine's tests see it."""

    mode: str
    url: str
    _client: Any
    _keys: Any = None

    def client(self) -> Any:
        return self._client()

    def keys(self, pattern: str) -> list[bytes]:
        """The keys matching `pattern`, on every node."""
        if self._keys is not None:
            return self._keys(pattern)
        with self.client() as client:
            return client.keys(pattern)


@pytest.fixture(params=["single", "cluster"])
def engine_redis(request: pytest.FixtureRequest) -> Iterator[EngineRedis]:
    """The engine's Redis, once as one server and once as a 3-master cluster, empty at the start of the test."""
    if request.param == "single":
        server = request.getfixturevalue("own_redis")
        yield EngineRedis("single", server.url, lambda: redis.Redis.from_url(server.url))
        return
    cluster: ClusterServers = request.getfixturevalue("redis_cluster")
    cluster.flush()
    yield EngineRedis("cluster", cluster.url, cluster.client, cluster.keys)


MODES = ["single", "cluster"]


@contextlib.contextmanager
def engine_redis_for(request: pytest.FixtureRequest, mode: str) -> Iterator[EngineRedis]:
    """For fixtures of a wider scope parametrised over MODES: a fresh single server (stopped afterwards), or the
    session's cluster flushed."""
    if mode == "single":
        from tests.conftest import start_redis  # here: the conftest imports this module

        server = start_redis()
        try:
            yield EngineRedis("single", server.url, lambda: redis.Redis.from_url(server.url))
        finally:
            server.stop()
        return
    cluster: ClusterServers = request.getfixturevalue("redis_cluster")
    cluster.flush()
    yield EngineRedis("cluster", cluster.url, cluster.client, cluster.keys)
