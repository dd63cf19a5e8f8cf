"""Session fixtures: real Redis servers and the real gateway on loopback ports."""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import uvicorn

from gateway.app import create_app
from gateway.auth.config import AuthConfig
from gateway.settings import Settings
from tests import corpora
from tests.auth.oidc import oidc_server  # noqa: F401 - session test authorization server (oidc-provider)
from tests.redis_topologies import engine_redis, redis_cluster, redis_sentinel  # noqa: F401 - cluster, Sentinel
from tests.upstream.fixtures import medplum_upstream, upstream_control  # noqa: F401 - session upstream FHIR server

ROOT = Path(__file__).resolve().parents[1]

# Hypothesis keeps its example database and caches in ./.hypothesis: outside the checkout instead, unless told where
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    with contextlib.suppress(ImportError):
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "helixgate-hypothesis")


@pytest.fixture(scope="session", autouse=True)
def _warm_sandbox() -> None:
    """The default HTTP sandbox processes (gateway/sandbox.py), shared by every app of the session, started once
    before the first test: their warm-up (loading the validator) would otherwise fall on whichever test converts
    first, inside its request timeout."""
    from gateway.sandbox import sandbox_for

    d = Settings()
    pool = sandbox_for(d.http_processes, d.http_timeout_ms, d.http_memory_mb)
    pool.prestart()
    pool.wait_ready()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{corpora.MARK}(name): reads third-party corpus NAME (tests/corpora.py)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `corpus(NAME)` are skipped (failed under CI=true) when that corpus is missing."""
    for mark in item.iter_markers(corpora.MARK):
        corpora.require(mark.args[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A missing corpus skips at one place (tests/corpora.py), wherever the test or fixture asked for it, so the
    summary has one line a missing corpus rather than one a test."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and corpora.is_missing_reason(str(longrepr[2])):
        report.longrepr = (corpora.__file__, inspect.getsourcelines(corpora.require)[1], longrepr[2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    workdir: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def start(self) -> None:
        """(Re)start on the same port."""
        self.proc = _spawn_redis(self.port, self.workdir)


def _spawn_redis(port: int, workdir: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; .ci/run installs it (apt-get install redis-server)")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"redis-server did not start on port {port}")


def start_redis() -> RedisServer:
    workdir = tempfile.mkdtemp(prefix="helixgate-redis-")
    port = free_port()
    return RedisServer(port, _spawn_redis(port, workdir), workdir)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the test session (its own port, so tests may flush or stop it)."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture()
def own_redis() -> Iterator[RedisServer]:
    """A redis-server this one test may stop and restart."""
    server = start_redis()
    yield server
    server.stop()


class ServedApp:
    """create_app(settings, auth=auth) under uvicorn on a loopback port, in a thread; a context manager."""

    def __init__(self, settings: Settings, auth: AuthConfig | None = None) -> None:
        self.port = free_port()
        self.app = create_app(settings, auth=auth)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServedApp:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("gateway did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def gateway(redis_server: RedisServer) -> Iterator[ServedApp]:
    """The gateway on a loopback port, caching in the session's Redis, with a small body limit for tests."""
    with ServedApp(Settings(redis_url=redis_server.url, max_request_bytes=512 * 1024)) as app:
        yield app


@pytest.fixture(scope="session")
def embedded_gateway() -> Iterator[ServedApp]:
    """The gateway on its embedded default: in-process LRU cache, no Redis."""
    with ServedApp(Settings()) as app:
        yield app


@pytest.fixture(scope="session")
def validator():  # type: ignore[no-untyped-def]
    """The validator over the default FHIR packages (R4 core, Genomics Reporting IG, IPS), built once."""
    from profiles.context import default_validator
    from profiles.packages import PackageError

    try:
        return default_validator()
    except PackageError as e:
        pytest.fail(f"the default FHIR packages are not installed ({e}); run: helixgate packages install")
