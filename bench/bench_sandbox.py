"""What the HTTP sandbox costs: uncached `$convert` of distinct genetic ORU^R01 messages through a real
`helixgate serve` on loopback, conversions in the server's threads (HELIXGATE_HTTP_PROCESSES=0, the old path)
against the sandbox processes (the default, 2), one client and `--clients` concurrent ones. Reports messages/s,
median and p95 latency, and the CPU of the server and its sandbox processes per message (the figure a loaded
machine does not distort).

    python bench/bench_sandbox.py [--messages 300] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_hostile import _children, free_port, settle  # noqa: E402
from tests.upstream.engine import unique_message  # noqa: E402

V2 = {"Content-Type": "x-application/hl7-v2+er7"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its descendants (sandbox processes), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(c) for c in _children(pid))


def run(processes: int, messages: int, clients: int, tag: str) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "HELIXGATE_PORT": str(port), "HELIXGATE_HTTP_PROCESSES": str(processes)}
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--log-level", "warning"],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        settle(base, server.pid)  # both sandbox processes started (their warm-up is not the figures')
        with httpx.Client(timeout=120) as c:  # warm: validator loaded (threads) / first jobs done (sandbox)
            for n in range(3):
                assert c.post(f"{base}/fhir/$convert", content=unique_message(900_000 + n, tag),
                              headers=V2).status_code == 200
        bodies = [unique_message(n, tag) for n in range(messages)]
        latencies: list[float] = []
        lock = threading.Lock()
        todo = iter(bodies)

        def client() -> None:
            with httpx.Client(timeout=120) as c:
                while True:
                    with lock:
                        body = next(todo, None)
                    if body is None:
                        return
                    t = time.perf_counter()
                    r = c.post(f"{base}/fhir/$convert", content=body, headers=V2)
                    assert r.status_code == 200 and r.headers["x-cache"] == "miss", r.text[:200]
                    with lock:
                        latencies.append(time.perf_counter() - t)

        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - t0, cpu_seconds(server.pid) - cpu0
        latencies.sort()
        return {"per_s": messages / wall, "p50_ms": statistics.median(latencies) * 1000,
                "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000, "cpu_ms": cpu / messages * 1000}
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    print("| path | clients | messages/s | p50 ms | p95 ms | CPU ms per message (server + sandbox) |")
    print("|---|---:|---:|---:|---:|---:|")
    for clients in (1, args.clients):
        for processes, name in ((0, "server threads (HELIXGATE_HTTP_PROCESSES=0)"), (2, "sandbox, 2 processes")):
            r = run(processes, args.messages, clients, f"S{processes}{clients}")
            print(f"| {name} | {clients} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                  f"{r['cpu_ms']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
