"""The test upstream FHIR server: Medplum's FhirRouter + MemoryRepository behind tests/upstream/server.mjs.

`medplum_upstream` (session) yields its FHIR base URL, e.g. http://127.0.0.1:PORT/fhir/R4. The Node packages are
installed into tests/upstream/node_modules on first use (`npm ci`, or `npm install` without a lock file).
`UpstreamControl` drives the wrapper's /_admin routes (reset, injected delay/failures, request counts).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
_install_lock = threading.Lock()


def ensure_node_modules() -> None:
    """Install the pinned @medplum packages once; fails the test with what to do when npm is missing."""
    with _install_lock:
        marker = ("@medplum/fhir-router", "fhir-kit-client")  # the packages the tests use: all there, or npm ci
        if all((HERE / "node_modules" / name / "package.json").is_file() for name in marker):
            return
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            pytest.fail("node and npm are needed for the test upstream (tests/upstream); install Node.js 20+")
        verb = "ci" if (HERE / "package-lock.json").is_file() else "install"
        done = subprocess.run([npm, verb, "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"npm {verb} in {HERE} failed: {done.stderr.strip()[-2000:]}")


class UpstreamProcess:
    """One running server.mjs; `base` is its FHIR base URL."""

    def __init__(self, port: int = 0, public_base: str | None = None) -> None:
        """`public_base`: the server calls itself by this URL (Location, fullUrl, links, CapabilityStatement) while
        it listens on loopback, as a server behind an ingress does."""
        ensure_node_modules()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop(); a pipe could fill up
        extra = ["--public-base", public_base] if public_base else []
        self.proc = subprocess.Popen(["node", str(HERE / "server.mjs"), "--port", str(port), *extra], cwd=HERE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        line = self._first_line(timeout=60)
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"test upstream did not start: {line!r}")
        self.base = line.split(" ", 1)[1].strip()
        self.port = int(self.base.split(":")[2].split("/")[0])
        self.control = UpstreamControl(self.base)

    def _first_line(self, timeout: float) -> str:
        return first_line(self.proc, timeout)

    def stop(self) -> None:
        stop_process(self.proc)
        self._stderr.close()


def first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line `proc` prints (its readiness line), or "" when none comes within `timeout` seconds."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline() if proc.stdout else ""),
                              daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def stop_process(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class UpstreamControl:
    """The wrapper's test controls (not FHIR): reset, behaviour (delayMs, failStatus, failCount, retryAfter), stats."""

    def __init__(self, base: str) -> None:
        self.root = base.split("/fhir/")[0]
        self.base = base

    def reset(self) -> None:
        httpx.post(f"{self.root}/_admin/reset", timeout=10).raise_for_status()

    def behave(self, **behaviour: Any) -> None:
        httpx.post(f"{self.root}/_admin/behaviour", json=behaviour, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.root}/_admin/stats", timeout=10).json()

    def count(self, resource_type: str, **params: str) -> int:
        """How many resources of a type the upstream holds (searching with a large _count)."""
        r = httpx.get(f"{self.base}/{resource_type}", params={"_count": "1000", **params}, timeout=30)
        r.raise_for_status()
        return len(r.json().get("entry", []))

    def search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.base}/{resource_type}", params={"_count": "1000", **params}, timeout=30)
        r.raise_for_status()
        return [e["resource"] for e in r.json().get("entry", [])]


@pytest.fixture(scope="session")
def medplum_upstream() -> Iterator[str]:
    """Medplum's FHIR router over an in-memory repository on a loopback port; yields the FHIR base URL."""
    server = UpstreamProcess()
    try:
        yield server.base
    finally:
        server.stop()


@pytest.fixture()
def upstream_control(medplum_upstream: str) -> Iterator[UpstreamControl]:
    """Controls of the session upstream, reset before and after the test (empty repository, no faults)."""
    control = UpstreamControl(medplum_upstream)
    control.reset()
    yield control
    with contextlib.suppress(httpx.HTTPError):
        control.reset()


def wait_for(predicate: Any, timeout: float, interval: float = 0.05, what: str = "condition",
             explain: Any = None) -> Any:
    """Poll `predicate` until it returns a truthy value; fails the test after `timeout` seconds, with what
    `explain()` returns (e.g. a process's log) appended."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}" + (f"\n{explain()}" if explain else ""))
        time.sleep(interval)
