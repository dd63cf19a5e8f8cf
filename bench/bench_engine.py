"""The integration engine under load: MLLP messages ACKed with durable enqueue, delivered end to end, and
$convert over HTTP at 100 concurrent connections (cold and cached) beside a trivial Starlette endpoint.

    python bench/bench_engine.py [--seconds 10] [--connections 100] [--mllp-connections 32] [--deliver 300]
                                 [--deliver-medplum 40] [--only mllp,deliver,http] [--json FILE]

Everything runs on this machine on loopback: a private redis-server (AOF on, appendfsync everysec), the gateway
(`helixgate serve`, 1 and 2 processes), worker processes, Medplum's FHIR router as the upstream
(tests/upstream/server.mjs) and the load generators: wrk (C; `apt-get install wrk`, POST bodies from a Lua script)
for HTTP, an asyncio MLLP client in its own process for MLLP. The load generators share the 2 cores with the
server, so the figures are lower bounds; the CPU seconds each side used are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.mllp.framing import Frame, Framer, frame  # noqa: E402
from gateway.workers.streams import AUDIT, DLQ, GROUP, INBOUND  # noqa: E402

SAMPLE = ROOT / "tests/mappers/hl7v2/messages/01-egfr-snv-somatic.hl7"
CONTROL = b"HGT-20250301-0001"


def bench_app() -> Any:
    """The gateway as served, plus the floor: POST /bench/floor reads the body and answers a small JSON."""
    from gateway.app import create_app

    async def floor(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    app = create_app()
    app.router.routes.insert(0, Route("/bench/floor", floor, methods=["POST"]))
    return app


def null_upstream() -> Any:
    """A FHIR server that stores nothing: each transaction entry is answered 201 with a fresh location. It measures
    the engine, not an upstream."""
    import uuid

    import orjson as json

    async def transaction(request: Request) -> Response:
        bundle = json.loads(await request.body())
        entries = [{"response": {"status": "201 Created", "location": f"{e['resource']['resourceType']}/"
                                 f"{uuid.uuid4()}/_history/1"}} for e in bundle.get("entry", [])]
        return Response(json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}),
                        media_type="application/fhir+json")

    from starlette.applications import Starlette

    return Starlette(routes=[Route("/fhir", transaction, methods=["POST"])])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in stat[11:15]) / tick
        for child in _children(pid):
            total += cpu_seconds([child])
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def unique(n: int, tag: str = "E", identifiers: bool = True) -> bytes:
    data = SAMPLE.read_bytes().replace(CONTROL, f"HGT-{tag}{n:07d}".encode())
    if identifiers:
        for old in (b"PAT10001", b"ORD-0001", b"NGS-25-0001", b"SP-0001", b"GA-25-0001"):
            data = data.replace(old, old + f"-{tag}{n}".encode())
    return data.replace(b"|P|2.5.1|||AL|NE", b"|P|2.5.1")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Procs:
    """Child processes started by the bench, stopped (by pid) at the end."""

    def __init__(self) -> None:
        self.items: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=kw.pop("stdout",
                                subprocess.DEVNULL), stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)
        self.items.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop_all(self) -> None:
        for proc in reversed(self.items):
            self.stop(proc)


# -- MLLP load generator (runs in its own process: `bench_engine.py --mllp-client PORT CONNS SECONDS`) ---------

async def mllp_load(port: int, connections: int, seconds: float, start_at: int) -> dict[str, Any]:
    pool = [frame(unique(start_at + i, "M", identifiers=False)) for i in range(2000)]
    latencies: list[float] = []
    counts = {"AA": 0, "other": 0}
    deadline = time.monotonic() + seconds

    async def one(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        framer = Framer()
        i = k
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            writer.write(pool[i % len(pool)])
            i += connections
            got: list[Any] = []
            while not got:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                got = [e for e in framer.feed(chunk) if isinstance(e, Frame)]
            latencies.append(time.perf_counter() - sent)
            counts["AA" if b"MSA|AA|" in got[0].data else "other"] += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(connections)))
    elapsed = time.perf_counter() - started
    return {"acked": counts["AA"], "refused": counts["other"], "seconds": elapsed,
            "rate": counts["AA"] / elapsed, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000}


def run_mllp(procs: Procs, redis_url: str, args: argparse.Namespace, servers: int) -> dict[str, Any]:
    r = redis.Redis.from_url(redis_url)
    r.delete(INBOUND)
    port, mllp = free_port(), free_port()
    server = procs.start([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--mllp-port",
                          str(mllp), "--workers", str(servers), "--log-level", "warning"],
                         {"HELIXGATE_REDIS_URL": redis_url})
    wait_port(mllp)
    time.sleep(1.5 if servers > 1 else 0.3)  # every process has bound the shared port
    runs = []
    for _ in range(args.repeat):  # the median run: a shared VM is noisy
        r.delete(INBOUND)
        before = cpu_seconds([server.pid])
        client = subprocess.run([sys.executable, __file__, "--mllp-client", str(mllp), str(args.mllp_connections),
                                 str(args.seconds)], capture_output=True, cwd=ROOT, timeout=args.seconds + 60)
        used = cpu_seconds([server.pid]) - before
        result = orjson.loads(client.stdout)
        stored = r.xlen(INBOUND)
        result.update(servers=servers, stored=stored, server_cpu=used / result["seconds"],
                      durable_ok=stored >= result["acked"])
        runs.append(result)
    procs.stop(server)
    result = sorted(runs, key=lambda x: x["rate"])[len(runs) // 2]
    result["runs"] = [round(x["rate"]) for x in runs]
    return result


# -- end to end: MLLP → Redis → workers → Medplum -------------------------------------------------------------

def run_deliver(procs: Procs, redis_url: str, args: argparse.Namespace, validate: bool,
                upstream_kind: str) -> dict[str, Any]:
    from tests.upstream.fixtures import UpstreamProcess

    r = redis.Redis.from_url(redis_url)
    r.delete(INBOUND, AUDIT, DLQ)
    count = args.deliver if upstream_kind == "null" else args.deliver_medplum
    if upstream_kind == "medplum":
        medplum = UpstreamProcess()
        base, stop_upstream = medplum.base, medplum.stop
    else:
        null_port = free_port()
        null = procs.start([sys.executable, "-m", "uvicorn", "--factory", "bench_engine:null_upstream", "--app-dir",
                            str(ROOT / "bench"), "--port", str(null_port), "--log-level", "warning"])
        wait_port(null_port)
        base = f"http://127.0.0.1:{null_port}/fhir"

        def stop_upstream() -> None:
            procs.stop(null)

    port, mllp = free_port(), free_port()
    env = {"HELIXGATE_REDIS_URL": redis_url, "HELIXGATE_UPSTREAM_URL": base,
           "HELIXGATE_UPSTREAM_TRANSACTION_MAX_ENTRIES": "8", "HELIXGATE_WORKER_VALIDATE": "1" if validate else "0",
           "HELIXGATE_WORKER_CONCURRENCY": "8"}
    server = procs.start([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--mllp-port",
                          str(mllp), "--log-level", "warning"], env)
    workers = [procs.start([sys.executable, "-m", "gateway.cli.main", "worker", "--name", f"bench-{i}",
                            "--log-level", "warning"], env) for i in range(args.workers)]
    wait_port(mllp)
    time.sleep(6 if validate else 2)  # workers up (the validator takes a few seconds to load)
    tag = f"{upstream_kind[0].upper()}{'V' if validate else 'N'}"
    messages = [unique(n, tag) for n in range(count)]
    acked: dict[str, float] = {}

    async def send() -> None:
        async def one(part: list[bytes]) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", mllp)
            framer = Framer()
            for m in part:
                writer.write(frame(m))
                got: list[Any] = []
                while not got:
                    got = [e for e in framer.feed(await reader.read(65536)) if isinstance(e, Frame)]
                control_id = got[0].data.split(b"\rMSA|")[1].split(b"\r")[0].split(b"|")[1].decode()
                acked[control_id] = time.time()
            writer.close()

        await asyncio.gather(*(one(messages[k::8]) for k in range(8)))

    started = time.time()
    asyncio.run(send())
    sent = time.time()
    while r.xlen(INBOUND) or (r.exists(INBOUND) and r.xpending(INBOUND, GROUP)["pending"]):
        if time.time() - started > 600:
            raise RuntimeError("delivery did not finish in 10 minutes")
        time.sleep(0.1)
    drained = time.time()
    time.sleep(0.5)  # audit flush
    delivered_at: dict[str, float] = {}
    for _, fields in r.xrange("helixgate:audit"):
        event = orjson.loads(fields[b"event"])
        if event["type"]["code"] == "110106" and event["outcome"] == "0":
            control_id = event["entity"][0]["what"]["identifier"]["value"].split("|")[-1]
            recorded = event["recorded"].replace("Z", "+00:00")
            delivered_at[control_id] = _epoch(recorded)
    latencies = [delivered_at[c] - acked[c] for c in acked if c in delivered_at]
    for w in workers:
        procs.stop(w)
    procs.stop(server)
    stop_upstream()
    return {"validate": validate, "upstream": upstream_kind, "messages": count, "delivered": len(delivered_at),
            "dead": r.xlen(DLQ), "acked_rate": len(acked) / (sent - started),
            "rate": len(delivered_at) / (drained - started), "p50_s": percentile(latencies, 50),
            "p99_s": percentile(latencies, 99), "workers": args.workers}


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


# -- HTTP: wrk against $convert (cold, cached) and the floor --------------------------------------------------

LUA_COLD = """
local counter = 0
local nonce = ""
local f = io.open("{prefix}", "rb"); local prefix = f:read("*a"); f:close()
f = io.open("{suffix}", "rb"); local suffix = f:read("*a"); f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "x-application/hl7-v2+er7"
init = function(args) nonce = args[1] or "" end
request = function()
  counter = counter + 1
  return wrk.format(nil, "/fhir/$convert", nil, prefix .. nonce .. "-" .. counter .. suffix)
end
"""
LUA_STATIC = """
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "x-application/hl7-v2+er7"
"""


_runs_started = 0


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, Any]:
    global _runs_started
    _runs_started += 1
    nonce = f"{os.getpid()}R{_runs_started}"  # cold bodies never repeat across runs (MSH-10 stays ≤ 20 chars)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
                          url, "--", nonce], capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rate": rate, "p50_ms": pct("50"), "p99_ms": pct("99"), "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else ""}


def run_http(procs: Procs, redis_url: str, args: argparse.Namespace, servers: int) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="helixgate-bench-"))
    body = unique(0, "H", identifiers=False)
    head, tail = body.split(b"HGT-H0000000", 1)
    (work / "prefix").write_bytes(head + b"HGT-")
    (work / "suffix").write_bytes(tail)
    (work / "body").write_bytes(body)
    scripts = {"cold": work / "cold.lua", "static": work / "static.lua"}
    scripts["cold"].write_text(LUA_COLD.format(prefix=work / "prefix", suffix=work / "suffix"))
    scripts["static"].write_text(LUA_STATIC.format(body=work / "body"))
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    server = procs.start([sys.executable, "-m", "uvicorn", "--factory", "bench_engine:bench_app", "--app-dir",
                         str(ROOT / "bench"), "--port", str(port), "--workers", str(servers), "--log-level",
                         "warning", "--no-access-log"], {"HELIXGATE_REDIS_URL": redis_url})
    wait_port(port)
    time.sleep(1.5 if servers > 1 else 0.3)
    base = f"http://127.0.0.1:{port}"
    rows = []
    for name, path, script in (("floor: trivial Starlette POST", "/bench/floor", "static"),
                               ("$convert cold (unique MSH-10, cache miss)", "/fhir/$convert", "cold"),
                               ("$convert cached (same body, Redis cache hit)", "/fhir/$convert", "static")):
        wrk(base + path, scripts[script], 10, 1)  # warm-up (and fills the cache for the cached run)
        runs = []
        for _ in range(args.repeat):  # the median run: a shared VM is noisy
            before = cpu_seconds([server.pid])
            result = wrk(base + path, scripts[script], args.connections, args.seconds)
            result.update(server_cpu=(cpu_seconds([server.pid]) - before) / args.seconds)
            runs.append(result)
        result = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
        result.update(name=name, servers=servers, runs=[round(r["rate"]) for r in runs])
        rows.append(result)
    procs.stop(server)
    shutil.rmtree(work, ignore_errors=True)
    return rows


def start_redis(procs: Procs) -> str:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="helixgate-bench-redis-")
    procs.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                 "--appendfsync", "everysec", "--dir", workdir])
    wait_port(port)
    return f"redis://127.0.0.1:{port}/0"


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"python {sys.version.split()[0]}, {os.cpu_count()} cores; load generators on the same cores", ""]
    if "mllp" in results:
        lines += ["| MLLP listener (ACK after XADD, AOF everysec) | processes | msgs/s ACKed | p50 ms | p99 ms | "
                  "server CPU (cores) | all ACKed in stream | runs (msgs/s) |",
                  "|---|---:|---:|---:|---:|---:|---|---|"]
        for r in results["mllp"]:
            lines.append(f"| {args.mllp_connections} connections, one message in flight each | {r['servers']} | "
                         f"{r['rate']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['server_cpu']:.2f} | "
                         f"{'yes' if r['durable_ok'] else 'NO'} ({r['stored']:,}) | {_runs(r)} |")
        lines.append("")
    if "deliver" in results:
        lines += ["| end to end: MLLP → Redis → workers → upstream | upstream | workers | messages | delivered/s | "
                  "ACK → delivered p50 s | p99 s | dead letters |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in results["deliver"]:
            what = "convert + validate + deliver" if r["validate"] else "convert + deliver (no validation)"
            upstream = "Medplum FhirRouter (memory)" if r["upstream"] == "medplum" else "null (stores nothing)"
            lines.append(f"| {what} | {upstream} | {r['workers']} | {r['messages']} | {r['rate']:,.1f} | "
                         f"{r['p50_s']:.2f} | {r['p99_s']:.2f} | {r['dead']} |")
        lines.append("")
    if "http" in results:
        lines += [f"| HTTP, wrk -c{args.connections} | server processes | requests/s | p50 ms | p99 ms | "
                  "server CPU (cores) | non-2xx | runs (req/s) |", "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in results["http"]:
            lines.append(f"| {r['name']} | {r['servers']} | {r['rate']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
                         f"| {r['server_cpu']:.2f} | {r['non2xx']} | {_runs(r)} |")
    return "\n".join(lines)


def _runs(r: dict[str, Any]) -> str:
    return ", ".join(f"{x:,}" for x in r.get("runs", []))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--connections", type=int, default=100, help="HTTP connections (wrk)")
    p.add_argument("--mllp-connections", type=int, default=32)
    p.add_argument("--deliver", type=int, default=300, help="messages for the end-to-end run (null upstream)")
    p.add_argument("--deliver-medplum", type=int, default=40,
                   help="messages for the end-to-end run into Medplum (its in-memory search is linear: keep it small)")
    p.add_argument("--workers", type=int, default=2, help="worker processes for the end-to-end run")
    p.add_argument("--repeat", type=int, default=3, help="runs per MLLP/HTTP figure; the median is reported")
    p.add_argument("--only", default="mllp,deliver,http")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--mllp-client", nargs=3, metavar=("PORT", "CONNS", "SECONDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mllp_client:
        port, conns, seconds = args.mllp_client
        result = asyncio.run(mllp_load(int(port), int(conns), float(seconds), os.getpid() * 10_000))
        sys.stdout.buffer.write(orjson.dumps(result))
        return
    only = set(args.only.split(","))
    procs = Procs()
    results: dict[str, Any] = {}
    try:
        redis_url = start_redis(procs)
        if "mllp" in only:
            results["mllp"] = [run_mllp(procs, redis_url, args, n) for n in (1, 2)]
        if "deliver" in only:
            results["deliver"] = [run_deliver(procs, redis_url, args, v, kind)
                                  for kind in ("null", "medplum") for v in (False, True)]
        if "http" in only:
            if shutil.which("wrk") is None:
                print("wrk is not installed (apt-get install wrk); skipping HTTP", file=sys.stderr)
            else:
                results["http"] = [row for n in (1, 2) for row in run_http(procs, redis_url, args, n)]
    finally:
        procs.stop_all()
    print(report(results, args))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
