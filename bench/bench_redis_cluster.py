"""The gateway on one Redis server and on a 3-master Redis Cluster on the same machine: `$convert` cached and cold
and MLLP ingest, the cluster's rate as a ratio of the single server's in the same run.

    python bench/bench_redis_cluster.py [--rounds 5] [--cached 400] [--cold 24] [--mllp 400] [--concurrency 16]

Both deployments are private redis-servers on loopback without persistence (the cluster: three masters, no
replicas, started as the tests start it). In each round every mode runs once, the order turning each round, so drift
on a shared machine hits both alike; the medians are reported.

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


async def rate(calls: list[Any], concurrency: int) -> float:
    """Calls per second, `concurrency` in flight; every call must answer 200/AA (True)."""
    queue = list(reversed(calls))

    async def lane() -> None:
        while queue:
            ok = await queue.pop()()
            assert ok, "a request failed"

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return len(calls) / (time.perf_counter() - start)


async def mllp_rate(port: int, messages: list[bytes], concurrency: int) -> float:
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

    start = time.perf_counter()
    await asyncio.gather(*(lane(r, w) for r, w in conns))
    elapsed = time.perf_counter() - start
    for _, w in conns:
        w.close()
    return len(messages) / elapsed


async def main(args: argparse.Namespace) -> None:
    single = start_redis()
    cluster = start_cluster()
    urls = {"single": single.url, "cluster": cluster.url}
    results: dict[str, dict[str, list[float]]] = {m: {"cached": [], "cold": [], "mllp": []} for m in urls}
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
                for mode in order[r % 2:] + order[:r % 2]:
                    app = apps[mode]
                    await convert(app, cached_body)
                    results[mode]["cached"].append(await rate(
                        [lambda app=app: _ok(convert(app, cached_body)) for _ in range(args.cached)],
                        args.concurrency))
                    cold = [unique_message(n + i, "C", original_mode=True) for i in range(args.cold)]
                    n += args.cold
                    results[mode]["cold"].append(await rate(
                        [lambda app=app, b=b: _ok(convert(app, b)) for b in cold], min(4, args.concurrency)))
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
    print(f"medians of {args.rounds} rounds; concurrency {args.concurrency} (cold: {min(4, args.concurrency)})")
    print("| path | single server /s | 3-master cluster /s | cluster ÷ single |")
    print("|---|---:|---:|---:|")
    for path, label in (("cached", "`$convert` cached"), ("cold", "`$convert` cold (distinct messages)"),
                        ("mllp", "MLLP ingest (ACK after XADD)")):
        a, b = statistics.median(results["single"][path]), statistics.median(results["cluster"][path])
        print(f"| {label} | {a:,.0f} | {b:,.0f} | {b / a:.2f} |")
    print("\nevery round (single; cluster):")
    for path in ("cached", "cold", "mllp"):
        each = [[round(x) for x in results[mode][path]] for mode in ("single", "cluster")]
        print(f"  {path}: {each[0]}; {each[1]}")


async def _ok(call: Any) -> bool:
    return await call == 200


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cached", type=int, default=400)
    parser.add_argument("--cold", type=int, default=24)
    parser.add_argument("--mllp", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(main(parser.parse_args()))
