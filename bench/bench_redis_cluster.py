"""The gateway on one Redis server and on a 3-master Redis Cluster on the same machine: `$convert` cached and cold
and MLLP ingest, the cluster's rate as a ratio of the single server's in the same run.

    python bench/bench_redis_cluster.py [--rounds 15] [--cached 200] [--cold 12] [--mllp 200] [--concurrency 16]

Both deployments are private redis-servers on loopback without persistence (the cluster: three masters, no
replicas, started as the tests start it). In each round both modes run each path back to back, the order turning
each round, so drift on a shared machine hits both alike; the ratio reported is the median of the rounds' ratios.

- cached: the same HL7 v2 body to POST /fhir/$convert, `--concurrency` at a time, the app called in process (ASGI, no
  sockets): one cache GET per request, on the single server or on the node that holds the key.
- cold: distinct messages (each a miss: GET, conversion and validation in the sandbox process, SET).
- MLLP: `--concurrency` connections to an in-process listener, each sending its next message when the ACK of the
  last arrives; each ACK waits for the XADD (group commit) to the inbound stream (one slot on the cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.app import create_app  # noqa: E402
from gateway.mllp.framing import Frame, Framer, frame  # noqa: E402
from gateway.mllp.server import MllpServer  # noqa: E402
from gateway.redis_client import redis_client  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.workers.streams import INBOUND, Enqueuer  # noqa: E402
from tests.conftest import start_redis  # noqa: E402
from tests.redis_topologies import start_cluster  # noqa: E402
from tests.upstream.engine import unique_message  # noqa: E402

HEADERS = [(b"host", b"127.0.0.1"), (b"content-type", b"x-application/hl7-v2+er7")]


async def convert(app: Any, body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # the client stays: a disconnect would stop the sandbox's work
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/fhir/$convert", "raw_path": b"/fhir/$convert", "query_string": b"", "root_path": "",
             "headers": [*HEADERS, (b"content-length", str(len(body)).encode())], "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8080)}
    await app(scope, receive, send)
    return status


async def rate(calls: list[Any], concurrency: int) -> tuple[float, float]:
    """(calls per second, this process's CPU µs per call), `concurrency` in flight; every call must answer 200."""
    queue = list(reversed(calls))

    async def lane() -> None:
        while queue:
            ok = await queue.pop()()
            assert ok, "a request failed"

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return len(calls) / (time.perf_counter() - start), (time.process_time() - cpu) / len(calls) * 1e6


async def mllp_rate(port: int, messages: list[bytes], concurrency: int) -> tuple[float, float]:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]
    queue = list(reversed(messages))

    async def lane(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        while queue:
            writer.write(frame(queue.pop()))
            acks: list[bytes] = []
            while not acks:
                chunk = await reader.read(65536)
                assert chunk, "the listener closed the connection"
                acks = [e.data for e in framer.feed(chunk) if isinstance(e, Frame)]
            assert b"MSA|AA|" in acks[0], acks[0][:200]

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(lane(r, w) for r, w in conns))
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    for _, w in conns:
        w.close()
    return len(messages) / elapsed, used / len(messages) * 1e6


async def main(args: argparse.Namespace) -> None:
    single = start_redis()
    cluster = start_cluster()
    urls = {"single": single.url, "cluster": cluster.url}
    results: dict[str, dict[str, list[tuple[float, float]]]] = {m: {"cached": [], "cold": [], "mllp": []}
                                                                 for m in urls}
    try:
        async with contextlib.AsyncExitStack() as stack:
            apps, listeners, clients = {}, {}, {}
            for mode, url in urls.items():
                app = create_app(Settings(redis_url=url, http_processes=1))
                await stack.enter_async_context(app.router.lifespan_context(app))
                assert await convert(app, unique_message(0, "W", original_mode=True)) == 200  # warm: validator
                apps[mode] = app
                client = redis_client(url)
                enqueuer = Enqueuer(client)
                server = MllpServer(enqueuer, port=0)
                await server.start()
                listeners[mode] = server
                clients[mode] = (client, enqueuer)
            cached_body = unique_message(1, "H", original_mode=True)
            order = list(urls)
            n = 0
            for r in range(args.rounds):
                modes = order[r % 2:] + order[:r % 2]
                for mode in modes:
                    app = apps[mode]
                    await convert(app, cached_body)
                    results[mode]["cached"].append(await rate(
                        [lambda app=app: _ok(convert(app, cached_body)) for _ in range(args.cached)],
                        args.concurrency))
                for mode in modes:
                    app = apps[mode]
                    cold = [unique_message(n + i, "C", original_mode=True) for i in range(args.cold)]
                    n += args.cold
                    results[mode]["cold"].append(await rate(
                        [lambda app=app, b=b: _ok(convert(app, b)) for b in cold], min(4, args.concurrency)))
                for mode in modes:
                    msgs = [unique_message(n + i, "M", original_mode=True) for i in range(args.mllp)]
                    n += args.mllp
                    results[mode]["mllp"].append(await mllp_rate(listeners[mode].port, msgs, args.concurrency))
            for mode, (client, enqueuer) in clients.items():
                assert await client.xlen(INBOUND) == args.rounds * args.mllp, "an ACKed message is missing"
                await listeners[mode].close()
                await enqueuer.close()
                await client.aclose()
    finally:
        single.stop()
        cluster.stop()
    print(f"medians of {args.rounds} rounds; concurrency {args.concurrency} (cold: {min(4, args.concurrency)}); "
          "ratios: the median of each round's cluster ÷ single (the two ran back to back), with their range; CPU: "
          "this process's (server and load generator, the generator's share the same in both modes)")
    print("| path | single /s | cluster /s | cluster ÷ single (rate) | range | CPU µs/op single | cluster | "
          "cluster ÷ single (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path, label in (("cached", "`$convert` cached"), ("cold", "`$convert` cold (distinct messages)"),
                        ("mllp", "MLLP ingest (ACK after XADD)")):
        one, many = results["single"][path], results["cluster"][path]
        ratios = sorted(c[0] / s[0] for s, c in zip(one, many, strict=True))
        cpu = statistics.median(c[1] / s[1] for s, c in zip(one, many, strict=True))
        a, b = statistics.median(x[0] for x in one), statistics.median(x[0] for x in many)
        ca, cb = statistics.median(x[1] for x in one), statistics.median(x[1] for x in many)
        print(f"| {label} | {a:,.0f} | {b:,.0f} | {statistics.median(ratios):.2f} | {ratios[0]:.2f}–{ratios[-1]:.2f} "
              f"| {ca:,.0f} | {cb:,.0f} | {cpu:.2f} |")
    print("\nrates of every round (single; cluster):")
    for path in ("cached", "cold", "mllp"):
        each = [[round(x[0]) for x in results[mode][path]] for mode in ("single", "cluster")]
        print(f"  {path}: {each[0]}; {each[1]}")


async def _ok(call: Any) -> bool:
    return await call == 200


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cached", type=int, default=200)
    parser.add_argument("--cold", type=int, default=12)
    parser.add_argument("--mllp", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(main(parser.parse_args()))
