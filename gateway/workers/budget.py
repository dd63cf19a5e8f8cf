"""A time and memory budget per message: `Pipeline.bundle` (convert, validate) runs in conversion processes
(`gateway.workers.child`) that the worker watches and kills when a message overruns.

- Time: wall-clock from handing the message over to the answer; past `timeout` the process is killed.
- Memory: the process's resident set (its baseline included: interpreter, mappers, validator ≈ 350 MB) is read
  every `poll` seconds; past `memory_mb` it is killed. An address-space limit inside the process backstops
  bursts faster than the polling.
- A killed (or crashed) process is replaced; the message fails with `OverBudget`, a Transient failure the worker
  retries up to HELIXGATE_WORKER_BUDGET_ATTEMPTS deliveries before dead-lettering it with the reason. A poison
  message therefore costs at most attempts × budget, never the worker.

The worker's event loop only does I/O meanwhile, so it stays responsive to Redis, to SIGTERM and to its other
messages. Costs are measured in bench/README.md ("Worker budget").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.cache import Cache
from gateway.upstream import Upstream
from gateway.workers.frames import HEADER
from gateway.workers.pipeline import Message, Permanent, Pipeline, Transient

log = logging.getLogger("helixgate.worker")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_ROOT = str(Path(__file__).resolve().parents[2])  # the child runs this very copy of the code, whatever its cwd


class OverBudget(Transient):
    """Raised when a message's conversion ran past its time or memory budget (or its process died)."""


class StartFailed(RuntimeError):
    """Raised when a conversion process cannot start (e.g. the FHIR packages for validation are missing)."""


@dataclass(frozen=True, slots=True)
class Budget:
    timeout: float = 60.0  # seconds per message
    memory_mb: int = 1024  # resident set of the conversion process, baseline included
    processes: int = 1
    poll: float = 0.05  # seconds between RSS readings


class _Child:
    """One conversion process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin, self.stdout = proc.stdin, proc.stdout

    async def send(self, value: Any) -> None:
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.stdin.write(HEADER.pack(len(body)) + body)
        await self.stdin.drain()

    async def receive(self) -> Any:
        size = HEADER.unpack(await self.stdout.readexactly(HEADER.size))[0]
        return pickle.loads(await self.stdout.readexactly(size))

    def rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/statm") as f:
                return int(f.read().split()[1]) * _PAGE / 1048576
        except (OSError, ValueError, IndexError):
            return 0.0

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 5)


class ConversionPool:
    """`processes` conversion processes; `bundle(msg)` runs Pipeline.bundle in a free one, under the budget."""

    def __init__(self, budget: Budget, *, validate: bool, timezone: str | None) -> None:
        self.budget = budget
        self.config = {"validate": validate, "timezone": timezone, "address_space": budget.memory_mb * 2 << 20}
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._all: set[_Child] = set()
        self._closed = False
        self._restarts: set[asyncio.Task[None]] = set()
        self.stats = {"over_time": 0, "over_memory": 0, "crashed": 0, "max_rss_mb": 0.0}

    async def start(self) -> None:
        """Start every process; raises StartFailed with the first one's error."""
        children = await asyncio.gather(*(self._spawn() for _ in range(self.budget.processes)))
        for child in children:
            self._idle.put_nowait(child)

    async def _spawn(self) -> _Child:
        path = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.workers.child",
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    env={**os.environ, "PYTHONPATH": path}, limit=1 << 20)
        child = _Child(proc)
        self._all.add(child)
        try:
            await child.send(self.config)
            first = await child.receive()
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            await self._drop(child)
            raise StartFailed(f"the conversion process exited on start (code {proc.returncode})") from e
        if first[0] != "ready":
            await self._drop(child)
            raise StartFailed(first[1])
        return child

    async def _drop(self, child: _Child) -> None:
        self._all.discard(child)
        await child.kill()

    async def _replace(self, child: _Child) -> None:
        await self._drop(child)
        try:
            while not self._closed:
                try:
                    fresh = await self._spawn()
                    if self._closed:
                        await self._drop(fresh)
                    else:
                        self._idle.put_nowait(fresh)
                    return
                except (StartFailed, OSError) as e:
                    log.error("cannot restart a conversion process (%s); trying again in 5 s", e)
                    await asyncio.sleep(5)
        finally:
            self._restarts.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def bundle(self, msg: Message) -> dict[str, Any]:
        """The Bundle of `msg`, as Pipeline.bundle makes it. Raises Permanent, or OverBudget."""
        child = await self._idle.get()
        healthy = False
        verdict: list[str] = []  # set by the watch before it kills: "time" or "memory"
        watch = reply = None
        try:
            await child.send(msg)
            watch = asyncio.ensure_future(self._watch(child, verdict))
            reply = asyncio.ensure_future(child.receive())
            await asyncio.wait({reply, watch}, return_when=asyncio.FIRST_COMPLETED)
            if verdict or not reply.done() or reply.exception() is not None:
                raise self._over(verdict[0] if verdict else "crashed", child)
            answer = reply.result()
            kind = answer[0]
            if kind == "memory":
                raise self._over("memory", child)
            healthy = True
            if kind == "ok":
                return orjson.loads(answer[1])
            if kind == "permanent":
                raise Permanent(answer[1], answer[2])
            # An unexpected error (a bug, or the environment): retried like a transient failure, then dead-lettered.
            raise Transient("conversion-error", answer[1])
        finally:
            for task in (watch, reply):
                if task is None:
                    continue
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # seen: a read cut short by the kill is expected, not worth a warning
            if healthy and not self._closed:
                self._idle.put_nowait(child)
            else:  # killed, crashed, or cancelled mid-message (its answer would go to the next one): replace it
                await child.kill()
                if not self._closed:
                    self._restarts.add(asyncio.get_running_loop().create_task(self._replace(child)))

    async def _watch(self, child: _Child, verdict: list[str]) -> None:
        """Kill `child` when it overruns the budget, saying why in `verdict`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.budget.timeout
        while True:
            await asyncio.sleep(self.budget.poll)
            rss = child.rss_mb()
            self.stats["max_rss_mb"] = max(self.stats["max_rss_mb"], rss)
            why = "memory" if rss > self.budget.memory_mb else "time" if loop.time() > deadline else ""
            if why:
                verdict.append(why)
                await child.kill()
                return

    def _over(self, why: str, child: _Child) -> OverBudget:
        b = self.budget
        if why == "time":
            self.stats["over_time"] += 1
            return OverBudget("over-time-budget", f"the conversion took longer than {b.timeout:g} s "
                              "(HELIXGATE_WORKER_MESSAGE_TIMEOUT_MS); its process was stopped")
        if why == "memory":
            self.stats["over_memory"] += 1
            return OverBudget("over-memory-budget", f"the conversion process grew past {b.memory_mb} MB "
                              "(HELIXGATE_WORKER_MESSAGE_MEMORY_MB); it was stopped")
        self.stats["crashed"] += 1
        return OverBudget("conversion-crashed", f"the conversion process died (exit code {child.proc.returncode})")

    async def close(self) -> None:
        self._closed = True
        for task in list(self._restarts):
            task.cancel()
        await asyncio.gather(*(child.kill() for child in list(self._all)))
        self._all.clear()


class BudgetedPipeline(Pipeline):
    """The worker's pipeline with `bundle` (convert, validate) in the conversion processes; delivery stays here."""

    def __init__(self, upstream: Upstream, cache: Cache, pool: ConversionPool) -> None:
        super().__init__(upstream, cache)
        self.pool = pool

    async def bundle(self, msg: Message) -> dict[str, Any]:
        return await self.pool.bundle(msg)
