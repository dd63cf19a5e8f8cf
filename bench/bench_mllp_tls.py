"""MLLP throughput over plain TCP, TLS and mutual TLS (with a partner allow-list), side by side.

    python bench/bench_mllp_tls.py [--slice 3] [--rounds 4] [--connections 32] [--fresh-slice 2]

Three `helixgate serve` run at once on one redis-server (AOF, appendfsync everysec): plain MLLP; MLLP over TLS;
MLLP over mutual TLS with HELIXGATE_MLLP_PARTNERS binding the sending facility to the client certificate. A
throw-away CA is made for the run (tests/pki.py). The load generator (an asyncio client in its own process) takes
turns between them in short slices, in rotating order, so whatever else loads the machine hits all alike:

- persistent: `--connections` connections, each with one message in flight (as MLLP senders work), distinct
  ORU^R01 messages: the steady-state cost of TLS (encryption) per message;
- fresh: one message per connection, 8 at a time: the cost of the handshake, paid by senders that reconnect for
  every message.

Prints, per side, the median ACKed msgs/s and the servers' CPU per message. Bounded: about
3 × rounds × (slice + fresh-slice) seconds of load plus start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.bench_engine import cpu_seconds, free_port, unique, wait_port  # noqa: E402
from gateway.mllp.framing import Frame, Framer, frame  # noqa: E402

SIDES = ("plain", "tls", "mtls")


async def load(port: int, connections: int, seconds: float, fresh: bool, start_at: int,
               tls: dict[str, str] | None) -> dict[str, Any]:
    ctx = None
    if tls is not None:
        ctx = ssl.create_default_context(cafile=tls["ca"])
        if tls.get("cert"):
            ctx.load_cert_chain(tls["cert"], tls["key"])
    pool = [frame(unique(start_at + i, "T", identifiers=False)) for i in range(2000)]
    counts = {"AA": 0, "other": 0, "failed": 0}
    deadline = time.monotonic() + seconds

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framer: Framer, i: int) -> bool:
        writer.write(pool[i % len(pool)])
        got: list[Any] = []
        while not got:
            chunk = await reader.read(65536)
            if not chunk:
                return False
            got = [e for e in framer.feed(chunk) if isinstance(e, Frame)]
        counts["AA" if b"MSA|AA|" in got[0].data else "other"] += 1
        return True

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                             server_hostname="localhost" if ctx else None)

    async def persistent(k: int) -> None:
        reader, writer = await connect()
        framer, i = Framer(), k
        while time.monotonic() < deadline and await exchange(reader, writer, framer, i):
            i += connections
        writer.close()

    async def one_each(k: int) -> None:
        i = k
        while time.monotonic() < deadline:
            try:
                reader, writer = await connect()
                await exchange(reader, writer, Framer(), i)
                writer.close()
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                counts["failed"] += 1
            i += connections

    started = time.perf_counter()
    await asyncio.gather(*((one_each if fresh else persistent)(k) for k in range(connections)))
    elapsed = time.perf_counter() - started
    return {"acked": counts["AA"], "refused": counts["other"], "failed": counts["failed"],
            "rate": counts["AA"] / elapsed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slice", type=float, default=3.0, help="seconds per persistent-connection slice")
    p.add_argument("--fresh-slice", type=float, default=2.0, help="seconds per connection-per-message slice")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--client", help=argparse.SUPPRESS)  # JSON: run the load generator (own process)
    args = p.parse_args()
    if args.client:
        c = json.loads(args.client)
        print(json.dumps(asyncio.run(load(c["port"], c["connections"], c["seconds"], c["fresh"], c["start_at"],
                                          c["tls"]))))
        return
    from tests.pki import make_pki

    work = Path(tempfile.mkdtemp(prefix="helixgate-bench-tls-"))
    pki = make_pki(work / "pki")
    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                              "yes", "--appendfsync", "everysec", "--dir", str(work)], stdout=subprocess.DEVNULL)
    wait_port(rport)
    base = {**os.environ, "HELIXGATE_REDIS_URL": f"redis://127.0.0.1:{rport}/0"}
    server_tls = ["--mllp-tls-cert", pki.server.cert, "--mllp-tls-key", pki.server.key]
    setups = {
        "plain": ([], {}, None),
        "tls": (server_tls, {}, {"ca": pki.ca}),
        "mtls": ([*server_tls, "--mllp-tls-client-ca", pki.ca],
                 {"HELIXGATE_MLLP_PARTNERS": json.dumps({"GENLAB-A": pki.lab_a.subject})},
                 {"ca": pki.ca, "cert": pki.lab_a.cert, "key": pki.lab_a.key}),
    }
    servers: dict[str, tuple[subprocess.Popen[bytes], int, dict[str, str] | None]] = {}
    rows: dict[tuple[str, bool], list[tuple[float, float, int]]] = {(s, f): [] for s in SIDES for f in (False, True)}
    n = 0
    try:
        for side, (flags, env, client_tls) in setups.items():
            http, mllp = free_port(), free_port()
            proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(http),
                                     "--mllp-port", str(mllp), "--log-level", "warning", *flags],
                                    cwd=HERE.parent, env={**base, **env}, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            servers[side] = (proc, mllp, client_tls)
        for _, mllp, _ in servers.values():
            wait_port(mllp)
        time.sleep(2)
        for r in range(args.rounds):
            order = SIDES[r % 3:] + SIDES[:r % 3]
            for fresh in (False, True):
                for side in order:
                    proc, mllp, client_tls = servers[side]
                    seconds = args.fresh_slice if fresh else args.slice
                    spec = {"port": mllp, "connections": 8 if fresh else args.connections, "seconds": seconds,
                            "fresh": fresh, "start_at": n, "tls": client_tls}
                    n += 100_000
                    cpu = cpu_seconds([proc.pid])
                    out = subprocess.run([sys.executable, __file__, "--client", json.dumps(spec)],
                                         capture_output=True, timeout=seconds + 60, cwd=HERE.parent)
                    used = cpu_seconds([proc.pid]) - cpu
                    result = json.loads(out.stdout)
                    rows[(side, fresh)].append((result["rate"], used / max(1, result["acked"]) * 1e6,
                                                result["refused"] + result["failed"]))
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(20)
        redis.terminate()
        redis.wait(10)
    for fresh in (False, True):
        print("one message per connection (8 at a time)" if fresh else
              f"persistent connections ({args.connections}, one message in flight each)")
        for side in SIDES:
            got = rows[(side, fresh)]
            print(f"  {side:5}: median {statistics.median(r[0] for r in got):,.0f} msgs/s ACKed (slices "
                  f"{', '.join(f'{r[0]:,.0f}' for r in got)}), server CPU {statistics.median(r[1] for r in got):.0f} "
                  f"µs/message, not AA: {sum(r[2] for r in got)}")


if __name__ == "__main__":
    main()
