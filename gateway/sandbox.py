"""Sandbox processes for the HTTP routes' CPU-bound work: every conversion, batch file and validation runs in a
conversion process (`python -m gateway.workers.child`) under a time and memory budget, never in the server.

Why: a conversion or validation holds the interpreter for as long as it runs. In the server that stalls every
other request (even /healthz) and cannot be stopped: a hostile input may run for minutes after its client gave
up. In a separate process it can be measured and killed:

- Time: wall clock from handing the job to an idle process; past HELIXGATE_HTTP_TIMEOUT_MS the process is killed
  and the request is answered 422 (too-costly). Waiting for a busy process counts too: when none frees up within
  the budget the answer is 503 with Retry-After.
- Memory: the process's resident set (≈ 350 MB of it is the validator and mappers) is read every 50 ms; past
  HELIXGATE_HTTP_MEMORY_MB it is killed, 422. An address-space limit inside the process backstops bursts.
- Disconnect: when the client goes away the job's process is killed (`run_job` watches the connection).
- CPU: the processes run at a lower priority (nice 5) than the server, so its event loop is scheduled first.

A killed process is replaced in the background. The pool is per server process and shared by the apps it
serves; it is driven from threads (not an event loop), so it outlives any one loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gateway import metrics
from gateway.jobs import Refused
from gateway.workers.frames import HEADER
from mappers.exceptions import Issue

log = logging.getLogger("helixgate.sandbox")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_ROOT = str(Path(__file__).resolve().parents[1])
_POLL = 0.05
_START_TIMEOUT = 300.0  # loading the packages and the warm-up conversion on a busy machine


class Cancelled(Exception):
    """The client went away; the job's process was stopped."""


class _Proc:
    """One sandbox process and its pipes."""

    def __init__(self, config: dict[str, Any]) -> None:
        path = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)
        self.popen = subprocess.Popen([sys.executable, "-m", "gateway.workers.child"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, bufsize=0, env={**os.environ, "PYTHONPATH": path})
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.stdin, self.stdout = self.popen.stdin, self.popen.stdout
        self.send(config)
        first = self.receive(time.monotonic() + _START_TIMEOUT)
        if first is None or first[0] != "ready":
            self.kill()
            raise RuntimeError(first[1] if first else "the sandbox process did not start")
        self.fingerprint: str | None = first[2] if len(first) > 2 else None

    def send(self, value: Any) -> None:
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.stdin.write(HEADER.pack(len(body)) + body)

    def _read(self, size: int) -> bytes:
        parts, got = [], 0
        while got < size:
            chunk = self.stdout.read(min(size - got, 1 << 20))
            if not chunk:
                raise EOFError
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def receive(self, deadline: float) -> Any:
        """The next frame, or None when the process ended (or sent nothing) before `deadline`."""
        while True:
            ready, _, _ = select.select([self.stdout], [], [], max(0.0, min(_POLL, deadline - time.monotonic())))
            if ready:
                try:
                    return pickle.loads(self._read(HEADER.unpack(self._read(HEADER.size))[0]))
                except EOFError:
                    return None
            if time.monotonic() >= deadline or self.popen.poll() is not None:
                return None

    def rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.popen.pid}/statm") as f:
                return int(f.read().split()[1]) * _PAGE / 1048576
        except (OSError, ValueError, IndexError):
            return 0.0

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.kill()
        with contextlib.suppress(Exception):
            self.popen.wait(5)
        for pipe in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


class Sandbox:
    """`processes` sandbox processes, started on first use (or `prestart`); `call(job)` runs a job in one."""

    def __init__(self, processes: int, timeout: float, memory_mb: int,
                 names: tuple[str, str, str] = ("HELIXGATE_HTTP_PROCESSES", "HELIXGATE_HTTP_TIMEOUT_MS",
                                                "HELIXGATE_HTTP_MEMORY_MB")) -> None:
        self.processes, self.timeout, self.memory_mb = processes, timeout, memory_mb
        self.names = names  # the settings of the three, named in refusals
        self.config = {"validate": "optional", "timezone": None, "address_space": memory_mb * 2 << 20,
                       "path": list(sys.path),  # the server's import path: the formats it knows (plug-ins too)
                       # Below the server's CPU priority: with every core converting, the event loop still gets
                       # its turn at once (/healthz, cached answers, accepting connections).
                       "nice": 5}
        self._idle: queue.Queue[_Proc] = queue.Queue()
        self._live = 0  # started or starting
        self._starting = 0
        self._lock = threading.Lock()
        self._error: str | None = None  # why the last start failed
        # Started from one long-lived thread: a child asks Linux to kill it when the thread that started it ends
        # (PR_SET_PDEATHSIG), and the server's worker threads come and go.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="helixgate-sandbox")
        self.fingerprint: str | None = None
        self.stats = {"jobs": 0, "over_time": 0, "over_memory": 0, "crashed": 0, "cancelled": 0, "busy": 0}

    def prestart(self) -> None:
        """Start the processes in the background, so the first request does not wait for them."""
        with self._lock:
            missing = self.processes - self._live
            self._live += max(0, missing)
        for _ in range(missing):
            self._submit_start()

    def wait_ready(self, timeout: float = _START_TIMEOUT) -> bool:
        """Block until every process has started (after `prestart`); False past `timeout`."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if not self._starting:
                    return True
            time.sleep(0.05)
        return False

    def _submit_start(self) -> None:
        with self._lock:
            self._starting += 1
        self._spawner.submit(self._start)

    def _start(self) -> None:
        try:
            proc = _Proc(self.config)
        except (RuntimeError, OSError) as e:
            with self._lock:
                self._live -= 1
                self._starting -= 1
                self._error = str(e)
            log.error("a sandbox process could not start: %s", e)
            return
        self.fingerprint = proc.fingerprint
        self._error = None
        self._idle.put(proc)
        with self._lock:
            self._starting -= 1

    def _acquire(self, deadline: float) -> _Proc:
        """An idle process. Waiting for one to start does not count against `deadline` (the warm-up is the
        server's cost, not the request's); waiting for a busy one does."""
        start = False
        with self._lock:
            if self._idle.empty() and self._live < self.processes:
                self._live += 1
                start = True
        if start:
            self._submit_start()
        while True:
            try:
                return self._idle.get(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                if self._error and self._live == 0:
                    raise Refused(503, [Issue("error", "transient", "sandbox-failed",
                                              f"the conversion processes cannot start: {self._error}")]) from None
                if self._starting:
                    deadline = max(deadline, time.monotonic() + 1.0)
                elif time.monotonic() >= deadline:
                    self.stats["busy"] += 1
                    raise Refused(503, [Issue("error", "transient", "busy",
                                              f"all {self.processes} conversion processes stayed busy for "
                                              f"{self.timeout:g} s ({self.names[0]}); try again later")],
                                  {"Retry-After": str(max(1, round(self.timeout)))}) from None
                with self._lock:  # a process died while starting: start another
                    start = self._live < self.processes and self._idle.empty()
                    if start:
                        self._live += 1
                if start:
                    self._submit_start()

    def _discard(self, proc: _Proc) -> None:
        proc.kill()
        self._submit_start()  # its slot stays counted: replaced now, not on the next request

    def call(self, job: tuple[Any, ...], cancel: threading.Event | None = None) -> Any:
        """Run `job` (see gateway.jobs) in a sandbox process. Blocking: call it from a thread.

        Returns the job's result; raises Refused (the job's own refusal, or 422 over budget, 503 busy) or
        Cancelled when `cancel` is set meanwhile."""
        proc = self._acquire(time.monotonic() + self.timeout)
        self.stats["jobs"] += 1
        healthy = False
        why = "crashed"
        try:
            try:
                proc.send(job)
            except RecursionError:  # a resource nested deeper than pickle goes: refused before any work
                healthy = True
                raise Refused(422, [Issue("error", "too-costly", "input-too-deep",
                                          "the input is nested too deeply to process")]) from None
            deadline = time.monotonic() + self.timeout
            answer = None
            while True:
                # the resident set first (a process already past its budget is stopped before it works on), then
                # up to one poll interval for the answer
                if proc.rss_mb() > self.memory_mb:
                    why = "memory"
                    break
                answer = proc.receive(min(deadline, time.monotonic() + _POLL))
                if answer is not None or proc.popen.poll() is not None:
                    break
                if cancel is not None and cancel.is_set():
                    why = "cancelled"
                    break
                if time.monotonic() >= deadline:
                    why = "time"
                    break
            if answer is not None and answer[0] != "memory":
                healthy = True
                if answer[0] == "ok":
                    return answer[1]
                if answer[0] == "refused":
                    raise Refused(answer[1], answer[2])
                raise RuntimeError(f"the sandbox process failed: {answer[1]}")
            if answer is not None:
                why = "memory"
        except (BrokenPipeError, OSError) as e:
            log.warning("a sandbox process failed mid-job: %s", e)
        finally:
            if healthy:
                self._idle.put(proc)
            else:
                self._discard(proc)
        raise self._over(why)

    def _over(self, why: str) -> Exception:
        if why == "cancelled":
            self.stats["cancelled"] += 1
            return Cancelled()
        if why == "time":
            self.stats["over_time"] += 1
            text = f"the work took longer than its budget of {self.timeout:g} s ({self.names[1]}); it was stopped"
            return Refused(422, [Issue("error", "too-costly", "over-time-budget", text)])
        if why == "memory":
            self.stats["over_memory"] += 1
            text = f"the work needed more than its budget of {self.memory_mb} MB ({self.names[2]}); it was stopped"
            return Refused(422, [Issue("error", "too-costly", "over-memory-budget", text)])
        self.stats["crashed"] += 1
        return Refused(500, [Issue("error", "exception", "sandbox-crashed",
                                   "the conversion process died; the gateway log has details")])


_pools: dict[tuple[Any, ...], Sandbox] = {}
_pools_lock = threading.Lock()


WORKER = ("HELIXGATE_WORKER_PROCESSES", "HELIXGATE_WORKER_MESSAGE_TIMEOUT_MS", "HELIXGATE_WORKER_MESSAGE_MEMORY_MB")


def sandbox_for(processes: int, timeout_ms: int, memory_mb: int, names: tuple[str, str, str] | None = None) -> Sandbox:
    """The process-wide sandbox for these settings (apps in one process share it); `names`: the settings'
    names for refusals (default: the HTTP ones)."""
    key = (processes, timeout_ms, memory_mb, names, tuple(sys.path))  # a plug-in added to the path: new processes
    with _pools_lock:
        if key not in _pools:
            _pools[key] = (Sandbox(processes, timeout_ms / 1000, memory_mb, names) if names
                           else Sandbox(processes, timeout_ms / 1000, memory_mb))
        return _pools[key]


async def run_job(request: Any, job: tuple[Any, ...]) -> Any:
    """Run `job` for an HTTP request: in the app's sandbox, stopped if the client disconnects (Cancelled), or,
    with HELIXGATE_HTTP_PROCESSES=0, in a thread of the server with the app's validator."""
    import asyncio

    from starlette.concurrency import run_in_threadpool

    metrics.HTTP_JOBS.labels(job[0]).inc()
    settings = request.app.state.settings
    if settings.http_processes == 0:
        from gateway.jobs import run
        from gateway.validate import app_validator
        from profiles.packages import PackageError

        try:
            validator = await app_validator(request)
        except PackageError:
            validator = None
        return await run_in_threadpool(run, job, validator)
    sandbox = app_sandbox(request.app)
    cancel = threading.Event()

    async def watch() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(0.25)
        cancel.set()

    watcher = asyncio.ensure_future(watch())
    try:
        return await run_in_threadpool(sandbox.call, job, cancel)
    finally:
        watcher.cancel()


def app_sandbox(app: Any) -> Sandbox:
    s = app.state.settings
    return sandbox_for(s.http_processes, s.http_timeout_ms, s.http_memory_mb)


async def definitions_fingerprint(request: Any) -> str | None:
    """The fingerprint of the definitions the request's jobs validate against (part of cached verdicts' keys);
    None while no sandbox process has started yet, or when the packages are missing."""
    if request.app.state.settings.http_processes:
        return app_sandbox(request.app).fingerprint
    from gateway.validate import app_validator
    from profiles.packages import PackageError

    try:
        return (await app_validator(request)).defs.fingerprint
    except PackageError:
        return None
