"""The facade's overhead on reads and searches: the same requests sent straight to the test upstream (Medplum's
FHIR router behind tests/upstream/server.mjs) and through `helixgate serve` in front of it, in the same run.

    read, cached    GET Patient/{id} of a few resources again and again: the gateway revalidates its kept copy
                    with If-None-Match (the upstream answers 304, the gateway serves what it kept)
    read, uncached  GET Patient/{id} of resources not read before (cache miss: full body from the upstream)
    search          GET Patient?family=…&_count=10 (never cached: paged, self link and outcome checks applied)

Direct and gateway runs are interleaved round by round (drift on the shared VM hits both alike); the median round
is reported: p50/p99 latency per request and throughput at a fixed concurrency, and the gateway/direct ratios.

    python bench/bench_facade.py [--rounds 3] [--requests 100] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tests.upstream.fixtures import UpstreamProcess  # noqa: E402

FAMILY = "Benchfacade"


def start_gateway(upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIXGATE_")}
    env.update(HELIXGATE_PORT=str(port), HELIXGATE_UPSTREAM_URL=upstream, HELIXGATE_HTTP_PROCESSES="0",
               HELIXGATE_CACHE_MAX_ENTRIES="100000")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--log-level", "warning"], cwd=ROOT,
                            env=env)
    base = f"http://127.0.0.1:{port}/fhir"
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the gateway did not start")


def seed(base: str, n: int) -> list[str]:
    ids = []
    with httpx.Client(timeout=30) as c:
        for i in range(n):
            r = c.post(f"{base}/Patient", json={"resourceType": "Patient", "name": [{"family": FAMILY}],
                                               "identifier": [{"system": "urn:bench", "value": str(i)}],
                                               "gender": "female", "birthDate": "1970-01-01"},
                       headers={"Content-Type": "application/fhir+json"})
            r.raise_for_status()
            ids.append(r.json()["id"])
    return ids


async def run(base: str, paths: list[str], concurrency: int) -> tuple[list[float], float]:
    """Latencies (s) of GET base/path for each path, `concurrency` at a time; and the wall time."""
    latencies: list[float] = []
    queue = list(reversed(paths))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def worker() -> None:
            while queue:
                path = queue.pop()
                t = time.perf_counter()
                r = await client.get(path)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {path}: {r.status_code}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    upstream = UpstreamProcess()
    proc, gateway = start_gateway(upstream.base)
    try:
        hot = seed(upstream.base, 5)
        cold = seed(upstream.base, args.requests * args.rounds)
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for rnd in range(args.rounds):
            fresh = cold[rnd * args.requests:(rnd + 1) * args.requests]
            kinds = {"read, cached": [f"Patient/{hot[i % len(hot)]}" for i in range(args.requests)],
                     "read, uncached": [f"Patient/{i}" for i in fresh],
                     "search": [f"Patient?family={FAMILY}&_count=10"] * args.requests}
            for kind, paths in kinds.items():
                if kind == "read, cached" and rnd == 0:  # keep the hot copies in the gateway first
                    asyncio.run(run(gateway, paths[: len(hot)], 1))
                for where, base in (("direct", upstream.base), ("gateway", gateway)):
                    lat, wall = asyncio.run(run(base, paths, args.concurrency))
                    results.setdefault((kind, where), []).append((pct(lat, 0.5), pct(lat, 0.99), len(lat) / wall))
        print(f"{args.rounds} rounds × {args.requests} requests, concurrency {args.concurrency} (median round)")
        print(f"{'':16} {'where':8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        for kind in ("read, cached", "read, uncached", "search"):
            rows = {}
            for where in ("direct", "gateway"):
                runs = results[(kind, where)]
                rows[where] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
                p50, p99, rate = rows[where]
                print(f"{kind:16} {where:8} {p50 * 1000:8.2f} {p99 * 1000:8.2f} {rate:8.0f}")
            d, g = rows["direct"], rows["gateway"]
            print(f"{kind:16} {'ratio':8} {g[0] / d[0]:7.2f}x {g[1] / d[1]:7.2f}x {g[2] / d[2]:7.2f}x")
    finally:
        proc.terminate()
        proc.wait(10)
        upstream.stop()


if __name__ == "__main__":
    main()
