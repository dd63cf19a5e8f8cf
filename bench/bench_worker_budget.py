"""The worker's per-message budget: what running conversions in a child process costs, and the worker on a poison
message.

    python bench/bench_worker_budget.py [--messages 200] [--poison-seconds 90] [--only cost,poison]

- cost: `Pipeline.bundle` (convert, validate, Provenance) of distinct sample ORU^R01 messages, in the worker's own
  process (HELIXGATE_WORKER_PROCESSES=0) and through a ConversionPool of one child (the default), validation off
  and on: wall ms per message, and CPU ms per message of the worker and its child together.
- poison: a 10 MB ORU^R01 of 1.7 M OBX segments put on the inbound stream (as the listener accepted it before its
  segment cap), one `helixgate worker` started on it (no validation, an upstream that is down: the message never
  gets that far), the RSS of the worker and of its conversion process sampled every 0.2 s until the message is
  dead-lettered or `--poison-seconds` pass; then SIGTERM, and how long the worker takes to exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.cache import MemoryCache  # noqa: E402
from gateway.workers.budget import Budget, ConversionPool  # noqa: E402
from gateway.workers.pipeline import Message, Pipeline  # noqa: E402
from gateway.workers.streams import DLQ  # noqa: E402
from tests.upstream.engine import unique_message  # noqa: E402


def _cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> int:
    try:
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0
    return int(line.split()[1]) // 1024


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def _cost(messages: int, validate: bool) -> dict[str, Any]:
    validator = None
    if validate:
        from profiles.context import default_validator

        validator = default_validator()
    msgs = [Message(unique_message(n, "B"), "hl7v2", datetime.now(UTC), "GENLAB-A", f"B{n}") for n in range(messages)]
    inline = Pipeline(None, MemoryCache(0), validator)  # type: ignore[arg-type]
    pool = ConversionPool(Budget(), validate=validate, timezone=None)
    await pool.start()
    out: dict[str, Any] = {"validate": validate, "messages": messages}
    try:
        for name, run in (("in the worker", inline.bundle), ("child process", pool.bundle)):
            await run(msgs[0])  # warm: profiles compiled, tables loaded
            children = _children(os.getpid())
            cpu0 = _cpu(os.getpid()) + sum(_cpu(c) for c in children)
            t0 = time.perf_counter()
            for m in msgs:
                await run(m)
            wall = time.perf_counter() - t0
            cpu = _cpu(os.getpid()) + sum(_cpu(c) for c in children) - cpu0
            out[name] = {"wall_ms": wall / messages * 1000, "cpu_ms": cpu / messages * 1000}
    finally:
        await pool.close()
    return out


def _poison(seconds: float) -> dict[str, Any]:
    import redis

    from tests.conftest import free_port
    from tests.upstream.engine import enqueue

    port, work = free_port(), tempfile.mkdtemp(prefix="helixgate-bench-redis-")
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no", "--dir", work], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    enqueue(client, unique_message(1, "X") + b"OBX|1\r" * 1_700_000, control="POISON-1")
    env = {**os.environ, "HELIXGATE_REDIS_URL": url, "HELIXGATE_UPSTREAM_URL": f"http://127.0.0.1:{free_port()}/fhir",
           "HELIXGATE_WORKER_VALIDATE": "0", "HELIXGATE_WORKER_CLAIM_IDLE_MS": "2000"}
    worker = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "worker", "--name", "bench"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    peak_worker = peak_child = 0
    dead_at = stop_at = exited = None
    try:
        while time.monotonic() - started < seconds + 30:
            now = time.monotonic() - started
            peak_worker = max(peak_worker, _rss_mb(worker.pid))
            peak_child = max([peak_child, *(_rss_mb(c) for c in _children(worker.pid))])
            if dead_at is None and client.xlen(DLQ):
                dead_at = now
            if stop_at is None and (now >= seconds or dead_at is not None):
                worker.send_signal(signal.SIGTERM)
                stop_at = now
            if stop_at is not None and worker.poll() is not None:
                exited = now - stop_at
                break
            time.sleep(0.2)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        dead = client.xrange(DLQ)
        server.terminate()
        server.wait()
    fields = dead[0][1] if dead else {}
    return {"peak_worker_rss_mb": peak_worker, "peak_conversion_process_rss_mb": peak_child,
            "dead_lettered_after_s": dead_at, "reason": fields.get(b"dlq.reason", b"").decode() or None,
            "attempts": fields.get(b"dlq.attempts", b"").decode() or None, "sigterm_at_s": stop_at,
            "exited_after_sigterm_s": exited}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--poison-seconds", type=float, default=90)
    p.add_argument("--only", default="cost,poison")
    args = p.parse_args()
    results: dict[str, Any] = {}
    if "cost" in args.only:
        results["cost"] = [asyncio.run(_cost(args.messages, v)) for v in (False, True)]
    if "poison" in args.only:
        results["poison"] = _poison(args.poison_seconds)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
