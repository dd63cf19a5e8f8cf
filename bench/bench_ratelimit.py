"""The cost of rate limits on the cheapest route: a cached `$convert` (the same HL7 v2 body again → cache hit)
through `helixgate serve` on loopback with an API key, without limits and with a limit high enough never to refuse,
once with the embedded cache and in-process buckets, once with Redis (cache and buckets, one EVALSHA per request).
Also timed: `RateLimiter.take` alone, in process and against Redis, beside a plain Redis GET and a no-op EVALSHA.

The four servers run side by side (conversions in the server: HELIXGATE_HTTP_PROCESSES=0) and are measured in
interleaved rounds, so drift on the shared VM hits every mode alike; the median round is reported.

    python bench/bench_ratelimit.py [--rounds 5] [--requests 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.auth.keys import KeyStore  # noqa: E402
from gateway.auth.ratelimit import _TAKE, RateLimiter, parse_limits  # noqa: E402
from gateway.workers.streams import redis_client  # noqa: E402
from tests.conftest import free_port, start_redis  # noqa: E402

MESSAGE = (ROOT / "tests/mappers/hl7v2/messages/01-egfr-snv-somatic.hl7").read_bytes()
NEVER = '{"convert": "1000000/s burst 1000000"}'  # limited, never refused: the cost of the check alone


class Server:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith("HELIXGATE_")}
        full.update(env, HELIXGATE_PORT=str(self.port), HELIXGATE_HTTP_PROCESSES="0")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--log-level", "warning"],
                                     cwd=ROOT, env=full)

    def wait(self) -> None:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} server did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used (Linux /proc): less noisy than req/s on a shared VM."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def load(port: int, headers: dict[str, str], requests: int, concurrency: int) -> float:
    """Requests per second of cached $convert at `concurrency` keep-alive connections."""
    url = f"http://127.0.0.1:{port}/fhir/$convert"
    headers = {**headers, "Content-Type": "x-application/hl7-v2+er7"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=60) as client:
        first = await client.post(url, content=MESSAGE, headers=headers)  # fills the cache
        assert first.status_code == 200, first.text[:300]
        left = requests

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                r = await client.post(url, content=MESSAGE, headers=headers)
                assert r.status_code == 200, r.status_code

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


async def micro(redis_url: str, n_local: int = 100_000, n_redis: int = 3000) -> dict[str, float]:
    """µs per call: RateLimiter.take in process and against Redis; a plain GET and a no-op EVALSHA for scale."""
    limiter = RateLimiter(parse_limits(NEVER))
    out: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(n_local):
        await limiter.take("convert", f"api-key:c{i % 50}")
    out["take, in process"] = (time.perf_counter() - started) / n_local * 1e6
    client = redis_client(redis_url)
    noop = await client.script_load("return 1")
    await client.script_load(_TAKE)
    for name, call in (("Redis GET", lambda i: client.get("x")),
                       ("no-op EVALSHA", lambda i: client.evalsha(noop, 0)),
                       ("take, Redis", lambda i: limiter.take("convert", f"api-key:c{i % 50}", client))):
        started = time.perf_counter()
        for i in range(n_redis):
            await call(i)
        out[name] = (time.perf_counter() - started) / n_redis * 1e6
    await client.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="helixgate-bench-rl-"))
    store = KeyStore(folder / "keys.json")
    key, _ = store.create("bench", ["system/$convert"], datetime.now(UTC) + timedelta(hours=2))
    headers = {"Authorization": f"ApiKey {key}"}
    redis = start_redis()
    keys = {"HELIXGATE_API_KEYS_FILE": str(store.path)}
    servers = [Server("embedded, no limits", keys),
               Server("embedded, in-process limits", {**keys, "HELIXGATE_RATE_LIMITS": NEVER}),
               Server("Redis, no limits", {**keys, "HELIXGATE_REDIS_URL": redis.url}),
               Server("Redis, Redis limits", {**keys, "HELIXGATE_REDIS_URL": redis.url,
                                              "HELIXGATE_RATE_LIMITS": NEVER})]
    try:
        for s in servers:
            s.wait()
        rates: dict[str, list[float]] = {s.name: [] for s in servers}
        cpu: dict[str, list[float]] = {s.name: [] for s in servers}
        for n in range(args.rounds):
            for s in servers if n % 2 == 0 else reversed(servers):
                before = s.cpu_seconds()
                rates[s.name].append(asyncio.run(load(s.port, headers, args.requests, args.concurrency)))
                cpu[s.name].append((s.cpu_seconds() - before) / (args.requests + 1) * 1e6)
        print(f"cached $convert, {args.requests} requests × {args.rounds} rounds, concurrency {args.concurrency}")
        medians = {name: statistics.median(r) for name, r in rates.items()}
        cpu_medians = {name: statistics.median(c) for name, c in cpu.items()}
        for name, r in rates.items():
            print(f"  {name:30} {medians[name]:7.0f} req/s   server CPU {cpu_medians[name]:6.0f} µs/request   "
                  f"rounds {[round(x) for x in r]}")
        for base, limited in (("embedded, no limits", "embedded, in-process limits"),
                              ("Redis, no limits", "Redis, Redis limits")):
            print(f"  {limited}: {100 * (medians[limited] / medians[base] - 1):+.1f} % req/s, "
                  f"{100 * (cpu_medians[limited] / cpu_medians[base] - 1):+.1f} % server CPU vs {base}")
    finally:
        for s in servers:
            s.stop()
    try:
        for name, us in asyncio.run(micro(redis.url)).items():
            print(f"  {name:20} {us:8.1f} µs per call")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
