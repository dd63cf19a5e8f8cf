"""The cost of the access log + metrics middleware (gateway/accesslog.py) on the cheapest route: a cached `$convert`
(the same HL7 v2 body again → cache hit), the ASGI app called in process (no sockets: the server's own CPU only).

Modes, side by side in one run, alternating every `--batch` requests so drift on a shared machine hits each alike:
  without      the app with the middleware taken out (the floor)
  metrics      the middleware, access log below its level (counters and histogram only)
  log-text     the middleware, an access line a request written as text (to /dev/null) by the gateway's own
               handler, as `helixgate serve` sets it up (the line handed to it directly)
  log-json     the same as JSON (HELIXGATE_LOG_FORMAT=json)
  log-records  the text line through logging's records (a plain StreamHandler: what any other handler gets, and
               how every line was written before)
  without (2nd app)  another app without it: how far two equal apps differ (the noise)
CPU time per request (time.process_time), median over the rounds; the ratio to `without` is the overhead. Then the
middleware alone, timed around an app that answers at once (the least noisy figure). Then over real HTTP: one
uvicorn server process per mode on loopback (the middleware taken out for `without`; logs to /dev/null), requests in
interleaved rounds from a bare keep-alive client, the server process's CPU per request read from /proc.

With --before REV, instead: cached `$convert` requests per CPU-second (the server's and its sandbox processes'
CPU, from /proc) of the code at REV (`git archive` into a temporary directory) and of this tree, one uvicorn server
each, in interleaved rounds (access log off).

    python bench/bench_metrics.py [--rounds 15] [--batch 200] [--source ws445|hl7v2] [--http-rounds 9]
                                  [--http-requests 2000] [--before REV]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.accesslog import AccessLogMiddleware  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.logconfig import TEXT, GatewayHandler  # noqa: E402
from gateway.settings import Settings  # noqa: E402

# An HL7 v2 body is a format with batch files: its cache key names the single document (a miss asks the sandbox
# whether it is a batch file); a WS 445 document has no batch files.
INPUTS = {"hl7v2": (ROOT / "tests/mappers/hl7v2/messages/01-egfr-snv-somatic.hl7", b"x-application/hl7-v2+er7"),
          "ws445": (ROOT / "examples/cn-ws445-lab.json", b"application/x-ws445+json")}
MESSAGE = b""
SCOPE: dict[str, Any] = {}


def choose(source: str) -> None:
    global MESSAGE, SCOPE
    path, media = INPUTS[source]
    MESSAGE = path.read_bytes()
    SCOPE = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/fhir/$convert", "raw_path": b"/fhir/$convert", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", media),
                    (b"content-length", str(len(MESSAGE)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
    }


async def call(app: Any) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # the client stays: a disconnect would stop the sandbox's work (499)
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": MESSAGE, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(SCOPE, headers=list(SCOPE["headers"])), receive, send)
    return status


DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
HANDLERS: dict[str, logging.Handler] = {"log-text": GatewayHandler(DEVNULL, "text"),
                                        "log-json": GatewayHandler(DEVNULL, "json"),
                                        "log-records": logging.StreamHandler(DEVNULL)}
HANDLERS["log-records"].setFormatter(logging.Formatter(TEXT))
# as gateway.logconfig.configure() sets logging up for serve
logging._srcfile = None  # type: ignore[attr-defined]
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def configure(mode: str) -> None:
    access = logging.getLogger("helixgate.access")
    access.handlers[:] = [HANDLERS[mode]] if mode in HANDLERS else []
    access.propagate = False
    access.setLevel(logging.INFO if mode in HANDLERS else logging.WARNING)


async def main(rounds: int, batch: int, source: str) -> None:
    choose(source)
    settings = Settings(http_processes=1)  # as deployed: conversions in a sandbox process, the cache in the server
    with_mw = create_app(settings)
    without = create_app(settings)
    without.user_middleware = [m for m in without.user_middleware if m.cls is not AccessLogMiddleware]
    control = create_app(settings)  # a second app without it: the spread between two equal apps (noise)
    control.user_middleware = list(without.user_middleware)
    logging.getLogger("helixgate.http").setLevel(logging.WARNING)  # the route's own info line: the same in each mode
    modes = {"without": without, "metrics": with_mw, "log-text": with_mw, "log-json": with_mw,
             "log-records": with_mw, "without (2nd app)": control}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    async with contextlib.AsyncExitStack() as stack:
        for app in (with_mw, without, control):
            await stack.enter_async_context(app.router.lifespan_context(app))
            for _ in range(20):  # the first converts (loads the validator); the rest are cache hits
                assert await call(app) == 200
        order = list(modes.items())
        for r in range(rounds):
            for mode, app in order[r % len(order):] + order[:r % len(order)]:  # each mode first in turn
                configure(mode)
                start = time.process_time()
                for _ in range(batch):
                    await call(app)
                if mode in HANDLERS:
                    HANDLERS[mode].flush()  # lines still waiting to be written are this mode's cost too
                cpu[mode].append((time.process_time() - start) / batch * 1e6)
    alone = await middleware_alone(with_mw, rounds)
    floor = statistics.median(cpu["without"])
    print(f"cached $convert of {source} in process, CPU µs/request (median of {rounds} rounds of {batch}):")
    print("| mode | CPU µs/request | ratio to without | overhead |")
    print("|---|---:|---:|---:|")
    for mode in modes:
        med = statistics.median(cpu[mode])
        print(f"| {mode} | {med:,.0f} | {med / floor:.3f} | {(med / floor - 1) * 100:+.1f} % |")
    print("\nthe middleware alone around an app that answers at once (CPU µs/request, median), and that as a share of "
          "the cached path without it:")
    print("| mode | middleware µs/request | share of the cached path |")
    print("|---|---:|---:|")
    for mode, us in alone.items():
        print(f"| {mode} | {us:.1f} | {us / floor * 100:.1f} % |")


async def middleware_alone(app: Any, rounds: int, n: int = 5000) -> dict[str, float]:
    """CPU per request of AccessLogMiddleware wrapped around a bare ASGI app (a 200 with a 10 kB body), less the
    bare app's own: the middleware's cost without the noise of a whole request."""
    body = b"x" * 10_000

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = route
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    route = next(r for r in app.routes if getattr(r, "path", "") == "/fhir/$convert")
    wrapped = AccessLogMiddleware(bare, routes=app.routes)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    async def per_request(target: Any, handler: logging.Handler | None = None) -> float:
        start = time.process_time()
        for _ in range(n):
            await target(dict(SCOPE), receive, send)
        if handler is not None:
            handler.flush()
        return (time.process_time() - start) / n * 1e6

    out: dict[str, list[float]] = {"metrics": [], "log-text": [], "log-json": [], "log-records": []}
    for _ in range(rounds):
        for mode in out:
            configure(mode)
            out[mode].append(await per_request(wrapped, HANDLERS.get(mode)) - await per_request(bare))
    return {mode: statistics.median(v) for mode, v in out.items()}


LAUNCH = """
import logging, os, sys
root = sys.argv[3]
sys.path.insert(0, root)
import uvicorn
import gateway
assert gateway.__file__.startswith(root), gateway.__file__
from gateway import logconfig
from gateway.accesslog import AccessLogMiddleware
from gateway.app import create_app
from gateway.settings import Settings
mode = sys.argv[1]
os.environ["HELIXGATE_LOG_FORMAT"] = "json" if mode == "log-json" else "text"
logconfig.configure("info" if mode.startswith("log") else "warning")
if mode == "log-records":  # a plain handler in place of the gateway's: every line a LogRecord through logging
    plain = logging.StreamHandler(sys.stderr)
    plain.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [plain]
logging.getLogger("helixgate.http").setLevel(logging.WARNING)  # the route's own line: the same in every mode
app = create_app(Settings(http_processes=1))
if mode == "without":
    app.user_middleware = [m for m in app.user_middleware if m.cls is not AccessLogMiddleware]
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_config=None, log_level="warning", access_log=False)
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu(stat: str) -> tuple[int, float]:
    """(parent pid, CPU seconds) from a /proc/PID/stat text."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, mode: str, root: Path = ROOT) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELIXGATE_")}
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCH, mode, str(self.port), str(root)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cpu(self) -> float:
        return _cpu(Path(f"/proc/{self.proc.pid}/stat").read_text())[1]

    def cpu_with_children(self) -> float:
        """The server's CPU and its live child processes' (the sandbox processes)."""
        total = self.cpu()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                parent, seconds = _cpu(stat.read_text())
                if parent == self.proc.pid:
                    total += seconds
        return total


async def requests_on_one_connection(port: int, count: int) -> None:
    media = dict(SCOPE["headers"])[b"content-type"].decode()
    head = (f"POST /fhir/$convert HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {media}"
            f"\r\nContent-Length: {len(MESSAGE)}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            writer.write(head + MESSAGE)
            status = await reader.readline()
            assert b" 200 " in status, status
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
    finally:
        writer.close()


async def warmed(server: Server) -> None:
    """Wait (up to a minute) for `server` to answer, which also converts the body once: every later request is a
    cache hit."""
    for _ in range(600):
        try:
            await requests_on_one_connection(server.port, 1)
            return
        except (OSError, AssertionError):
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server on port {server.port} did not answer within a minute")


async def over_http(rounds: int, requests: int, connections: int = 4) -> None:
    modes = ("without", "metrics", "log-text", "log-json", "log-records", "without (2nd server)")
    servers = {m: Server(m.split(" ")[0]) for m in modes}  # the 2nd server without it: the noise
    try:
        for server in servers.values():
            await warmed(server)
        cpu: dict[str, list[float]] = {m: [] for m in modes}
        for r in range(rounds):
            for mode in modes[r % len(modes):] + modes[:r % len(modes)]:
                server = servers[mode]
                before = server.cpu()
                await asyncio.gather(*(requests_on_one_connection(server.port, requests // connections)
                                       for _ in range(connections)))
                cpu[mode].append((server.cpu() - before) / (requests // connections * connections) * 1e6)
    finally:
        for server in servers.values():
            server.proc.terminate()
            server.proc.wait(10)
    floor = statistics.median(cpu["without"])
    print(f"\nover HTTP (uvicorn, loopback), server CPU µs/request (median of {rounds} rounds of {requests}):")
    print("| mode | server CPU µs/request | ratio to without | overhead |")
    print("|---|---:|---:|---:|")
    for mode in modes:
        med = statistics.median(cpu[mode])
        print(f"| {mode} | {med:,.0f} | {med / floor:.3f} | {(med / floor - 1) * 100:+.1f} % |")


async def before_after(before: str, rounds: int, requests: int, connections: int = 4) -> None:
    """Cached $convert requests per CPU-second (server and sandbox processes) of the code at `before` and of this
    tree, access log off in both."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="helixgate-before-") as folder:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", before], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        servers = {f"before ({before})": Server("metrics", Path(folder)), "after (this tree)": Server("metrics")}
        try:
            for server in servers.values():
                await warmed(server)
            rate: dict[str, list[float]] = {m: [] for m in servers}
            sandbox: dict[str, list[float]] = {m: [] for m in servers}  # its processes' share of the CPU
            names = list(servers)
            for r in range(rounds):
                for name in names[r % 2:] + names[:r % 2]:
                    server = servers[name]
                    cpu, own = server.cpu_with_children(), server.cpu()
                    await asyncio.gather(*(requests_on_one_connection(server.port, requests // connections)
                                           for _ in range(connections)))
                    total = server.cpu_with_children() - cpu
                    rate[name].append(requests // connections * connections / total)
                    sandbox[name].append(1 - (server.cpu() - own) / total)
        finally:
            for server in servers.values():
                server.proc.terminate()
                server.proc.wait(10)
    first = statistics.median(rate[names[0]])
    print(f"\ncached $convert over HTTP, requests per CPU-second of the server and its sandbox processes (median of "
          f"{rounds} rounds of {requests}):")
    print("| code | requests per CPU-second | CPU µs/request | of it in the sandbox processes | ratio to before |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        med = statistics.median(rate[name])
        print(f"| {name} | {med:,.0f} | {1e6 / med:,.0f} | {statistics.median(sandbox[name]) * 100:.0f} % "
              f"| {med / first:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--source", choices=sorted(INPUTS), default="ws445")
    parser.add_argument("--http-rounds", type=int, default=9)
    parser.add_argument("--http-requests", type=int, default=2000)
    parser.add_argument("--before", help="a git revision: compare its cached $convert with this tree's instead")
    args = parser.parse_args()
    if args.before:
        choose(args.source)
        asyncio.run(before_after(args.before, args.http_rounds, args.http_requests))
        sys.exit(0)
    asyncio.run(main(args.rounds, args.batch, args.source))
    if args.http_rounds:
        asyncio.run(over_http(args.http_rounds, args.http_requests))
