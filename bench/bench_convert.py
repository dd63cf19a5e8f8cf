"""ORU^R01 → FHIR throughput: the library path and HTTP on loopback, beside a floor.

Floor: an orjson round trip (dumps + loads) of each output Bundle, i.e. the least any converter that hands
out these Bundles as JSON must spend. Ratios are measured in the same run, so they travel across machines.
The library rows are messages per CPU-second of this process (time.process_time: other load on the machine
does not count); the HTTP rows are per wall-clock second, as the server runs in another process.

    python bench/bench_convert.py [--seconds 3] [--http-requests 2000] [--concurrency 8] [--no-http]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mappers.hl7v2 import from_fhir, to_fhir  # noqa: E402

MESSAGES = [p.read_bytes() for p in sorted((ROOT / "tests/mappers/hl7v2/messages").glob("*.hl7"))]


def rate(fn, seconds: float, inputs: list[Any] = MESSAGES) -> float:  # type: ignore[no-untyped-def]
    """Inputs per CPU-second of fn() over `inputs` (one per message), run for about `seconds` of CPU."""
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for m in inputs:
            fn(m)
        n += len(inputs)
    return n / (time.process_time() - start)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def http_rate(url: str, bodies: list[bytes], concurrency: int) -> float:
    queue = list(bodies)
    async with httpx.AsyncClient(timeout=30) as client:
        async def worker() -> None:
            while queue:
                body = queue.pop()
                r = await client.post(url, content=body, headers={"Content-Type": "x-application/hl7-v2+er7"})
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - start)


def unique(i: int, msg: bytes) -> bytes:
    """The message with a distinct MSH-10, so the cache cannot answer it."""
    fields = msg.split(b"\r", 1)[0].split(b"|")
    fields[9] = fields[9] + b"-" + str(i).encode()
    return b"|".join(fields) + b"\r" + msg.split(b"\r", 1)[1]


def http_rates(requests: int, concurrency: int) -> tuple[float, float]:
    """Requests per wall-clock second to `helixgate serve` in a subprocess: cache misses, then cache hits."""
    port = free_port()
    env = {**os.environ, "HELIXGATE_PORT": str(port)}
    env.pop("HELIXGATE_REDIS_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--log-level", "warning"],
                              cwd=ROOT, env=env)
    try:
        url = f"http://127.0.0.1:{port}/fhir/$convert"
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        miss = asyncio.run(http_rate(url, [unique(i, MESSAGES[i % len(MESSAGES)]) for i in range(requests)],
                                     concurrency))
        hit = asyncio.run(http_rate(url, [MESSAGES[i % len(MESSAGES)] for i in range(requests)], concurrency))
    finally:
        server.terminate()
        server.wait(10)
    return miss, hit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--http-requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--no-http", action="store_true", help="the library rows only")
    args = ap.parse_args()

    bundles = [orjson.dumps(to_fhir(m).bundle) for m in MESSAGES]
    sizes = sum(len(b) for b in bundles) / len(bundles)
    lib = rate(lambda m: orjson.dumps(to_fhir(m).bundle), args.seconds)
    floor = rate(lambda b: orjson.loads(orjson.dumps(orjson.loads(b))), args.seconds, bundles)
    back = rate(lambda doc: from_fhir(doc).data, args.seconds, [to_fhir(m).bundle for m in MESSAGES])

    miss = hit = None
    if not args.no_http:
        miss, hit = http_rates(args.http_requests, args.concurrency)

    print(f"{len(MESSAGES)} authored ORU^R01 messages, mean output Bundle {sizes / 1024:.1f} KiB; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print()
    print("| path | messages/s | ratio to floor |")
    print("|---|---:|---:|")
    print(f"| floor: orjson round trip of the output Bundle | {floor:,.0f} | 1.00 |")
    print(f"| library: `to_fhir` + orjson dumps | {lib:,.0f} | {lib / floor:.3f} |")
    print(f"| library: `from_fhir` (Bundle → ORU^R01) | {back:,.0f} | {back / floor:.3f} |")
    c = args.concurrency
    if miss is not None and hit is not None:
        print(f"| HTTP loopback, cache miss (unique MSH-10), {c} clients (wall) | {miss:,.0f} | {miss / floor:.3f} |")
        print(f"| HTTP loopback, cache hit (in-process LRU), {c} clients (wall) | {hit:,.0f} | {hit / floor:.3f} |")


if __name__ == "__main__":
    main()
