"""The cost of access control on the cheapest route: a cached `$convert` (the same HL7 v2 body again → cache hit)
through `helixgate serve` on loopback, with auth off, an API key, a JWT bearer token (JWKS cached) and an opaque
token (introspection answer cached). The token comes from the real test authorization server (npm oidc-provider,
tests/auth). Target: auth costs less than 10 % of the cached path's rate.

The four servers run side by side (embedded cache, conversions in the server: HELIXGATE_HTTP_PROCESSES=0) and are
measured in interleaved rounds, so drift on the shared VM hits every mode alike; the median round is reported. The
client is a minimal HTTP/1.1 keep-alive client on asyncio streams, lighter than httpx, so more of the CPU goes to
the server under test. Also timed: `BearerVerifier.verify` alone, with and without its verified-token cache.

    python bench/bench_auth.py [--rounds 5] [--requests 3000] [--concurrency 8]
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
from gateway.auth.oauth import BearerVerifier, OAuthConfig  # noqa: E402
from tests.auth.oidc import DEFAULT_AUDIENCE, INTROSPECTOR_SECRET, OidcServer  # noqa: E402
from tests.conftest import free_port  # noqa: E402

MESSAGE = (ROOT / "tests/mappers/hl7v2/messages/01-egfr-snv-somatic.hl7").read_bytes()


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
        """User + system CPU the server process has used (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def request_bytes(port: int, authorization: str | None) -> bytes:
    head = ["POST /fhir/$convert HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: x-application/hl7-v2+er7",
            f"Content-Length: {len(MESSAGE)}"]
    if authorization:
        head.append(f"Authorization: {authorization}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + MESSAGE


RESETS = 0  # connections the server closed under load (reopened; the request is sent again)


async def one_connection(port: int, request: bytes, count: int) -> None:
    global RESETS
    done = 0
    while done < count:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while done < count:
                writer.write(request)
                status = await reader.readline()
                if not status:
                    raise ConnectionResetError("closed")
                if b" 200 " not in status:
                    raise RuntimeError(f"answer {status!r}")
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                done += 1
        except (ConnectionResetError, asyncio.IncompleteReadError):
            RESETS += 1
        finally:
            writer.close()


async def rate(port: int, authorization: str | None, requests: int, concurrency: int) -> float:
    request = request_bytes(port, authorization)
    start = time.perf_counter()
    await asyncio.gather(*(one_connection(port, request, requests // concurrency) for _ in range(concurrency)))
    return (requests // concurrency * concurrency) / (time.perf_counter() - start)


class InProcess:
    """The ASGI app called directly in this process (no sockets, no HTTP parsing): only the app's own CPU per request
    is timed, the modes alternating every `batch` requests, so the shared VM's load changes hit them alike."""

    def __init__(self, env: dict[str, str]) -> None:
        saved = {k: v for k, v in os.environ.items() if k.startswith("HELIXGATE_")}
        for k in saved:
            del os.environ[k]
        os.environ.update(env, HELIXGATE_HTTP_PROCESSES="0")
        try:
            from gateway.app import create_app

            self.app = create_app()
        finally:
            for k in [k for k in os.environ if k.startswith("HELIXGATE_")]:
                del os.environ[k]
            os.environ.update(saved)

    async def start(self) -> None:
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        await queue.put({"type": "lifespan.startup"})
        started = asyncio.Event()

        async def send(message: dict[str, str]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        self._lifespan = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                      queue.get, send))
        await started.wait()

    async def call(self, authorization: str | None) -> int:
        headers = [(b"host", b"127.0.0.1:8080"), (b"content-type", b"x-application/hl7-v2+er7"),
                   (b"content-length", str(len(MESSAGE)).encode())]
        if authorization:
            headers.append((b"authorization", authorization.encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/fhir/$convert", "raw_path": b"/fhir/$convert", "query_string": b"",
                 "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8080), "state": {}}
        body = [{"type": "http.request", "body": MESSAGE, "more_body": False}]
        status: list[int] = []

        async def receive() -> dict[str, object]:
            if body:
                return body.pop()
            await asyncio.Event().wait()  # no disconnect while the app answers
            return {}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))  # type: ignore[call-overload]

        await self.app(scope, receive, send)
        return status[0]


async def in_process(apps: dict[str, tuple[InProcess, str | None]], rounds: int, batch: int) -> dict[str, list[float]]:
    for app, authorization in apps.values():
        await app.start()
        if await app.call(authorization) != 200:
            raise RuntimeError("in-process warm-up request failed")
    out: dict[str, list[float]] = {mode: [] for mode in apps}
    for _ in range(rounds):
        for mode, (app, authorization) in apps.items():
            start = time.process_time()
            for _ in range(batch):
                await app.call(authorization)
            out[mode].append((time.process_time() - start) / batch * 1e6)
    return out


def verify_cost(oidc: OidcServer, seconds: float = 2.0) -> tuple[float, float]:
    """µs per BearerVerifier.verify of one JWT: answered from the verified-token cache, and fully verified."""
    verifier = BearerVerifier(OAuthConfig(issuer=oidc.issuer, audience=(DEFAULT_AUDIENCE,)))
    token = oidc.token("system", "system/$convert")

    async def timed(clear: bool) -> float:
        await verifier.verify(token)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            if clear:
                verifier._verified.clear()
            await verifier.verify(token)
            n += 1
        return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(timed(False)), asyncio.run(timed(True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--inproc-rounds", type=int, default=100)
    ap.add_argument("--inproc-batch", type=int, default=50)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="helixgate-bench-auth-"))
    keys_file = work / "keys.json"
    api_key, _ = KeyStore(keys_file).create("bench", ["system/$convert"], datetime.now(UTC) + timedelta(days=1))

    with OidcServer.start() as oidc:
        oauth_env = {"HELIXGATE_OAUTH_ISSUER": oidc.issuer, "HELIXGATE_OAUTH_AUDIENCE": DEFAULT_AUDIENCE,
                     "HELIXGATE_OAUTH_INTROSPECTION_CLIENT_ID": "introspector",
                     "HELIXGATE_OAUTH_INTROSPECTION_CLIENT_SECRET": INTROSPECTOR_SECRET}
        servers = {"off": Server("off", {}), "api-key": Server("api-key", {"HELIXGATE_API_KEYS_FILE": str(keys_file)}),
                   "oauth": Server("oauth", oauth_env)}
        try:
            for s in servers.values():
                s.wait()
            cached_us, full_us = verify_cost(oidc)
            results: dict[str, list[float]] = {m: [] for m in ("off", "api-key", "jwt", "opaque")}
            cpu: dict[str, list[float]] = {m: [] for m in results}  # server CPU µs per request
            for _ in range(args.rounds):
                # tokens live 300 s: new ones each round; one warm-up request per mode fills the caches
                modes = {"off": ("off", None), "api-key": ("api-key", f"ApiKey {api_key}"),
                         "jwt": ("oauth", f"Bearer {oidc.token('system', 'system/$convert')}"),
                         "opaque": ("oauth", f"Bearer {oidc.token('opaque', 'system/$convert')}")}
                for mode, (server, authorization) in modes.items():
                    port = servers[server].port
                    asyncio.run(rate(port, authorization, args.concurrency, args.concurrency))
                    before = servers[server].cpu_seconds()
                    results[mode].append(asyncio.run(rate(port, authorization, args.requests, args.concurrency)))
                    done = args.requests // args.concurrency * args.concurrency
                    cpu[mode].append((servers[server].cpu_seconds() - before) / done * 1e6)
        finally:
            for s in servers.values():
                s.stop()
        oauth_app = InProcess(oauth_env)
        apps = {"off": (InProcess({}), None),
                "api-key": (InProcess({"HELIXGATE_API_KEYS_FILE": str(keys_file)}), f"ApiKey {api_key}"),
                "jwt": (oauth_app, f"Bearer {oidc.token('system', 'system/$convert')}"),
                "opaque": (oauth_app, f"Bearer {oidc.token('opaque', 'system/$convert')}")}
        local = asyncio.run(in_process(apps, args.inproc_rounds, args.inproc_batch))
        introspections = oidc.stats().get("/token/introspection", 0)

    base = statistics.median(results["off"])
    base_cpu = statistics.median(cpu["off"])
    print(f"cached $convert (HL7 v2 ORU^R01 01, {len(MESSAGE):,} B in), {args.concurrency} keep-alive connections, "
          f"{args.requests:,} requests a round, {args.rounds} rounds interleaved; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores")
    print()
    print("| auth | requests/s (median) | rounds | ratio to auth off | server CPU µs/request (median) | "
          "CPU overhead |")
    print("|---|---:|---|---:|---:|---:|")
    labels = {"off": "off", "api-key": "API key (`Authorization: ApiKey`)", "jwt": "JWT bearer, JWKS cached",
              "opaque": "opaque bearer, introspection cached"}
    for mode, rates in results.items():
        med = statistics.median(rates)
        med_cpu = statistics.median(cpu[mode])
        print(f"| {labels[mode]} | {med:,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} | {med / base:.3f} | "
              f"{med_cpu:,.0f} | {(med_cpu / base_cpu - 1) * 100:+.1f} % |")
    print()
    print(f"In process (ASGI app called directly, CPU per request), {args.inproc_rounds} rounds of "
          f"{args.inproc_batch} requests per mode, alternating:")
    print()
    print("| auth | CPU µs/request (median) | p25-p75 | overhead |")
    print("|---|---:|---:|---:|")
    base_local = statistics.median(local["off"])
    for mode, costs in local.items():
        q = statistics.quantiles(costs, n=4)
        med = statistics.median(costs)
        print(f"| {labels[mode]} | {med:,.0f} | {q[0]:,.0f}-{q[2]:,.0f} | {(med / base_local - 1) * 100:+.1f} % |")
    print()
    print(f"load average during the run: {os.getloadavg()[0]:.1f}; connections reset by the server and reopened: "
          f"{RESETS}")
    print(f"BearerVerifier.verify of an RS256 JWT: {cached_us:.1f} µs from its verified-token cache, "
          f"{full_us:.1f} µs verified in full; introspection requests made for the opaque runs: {introspections}")


if __name__ == "__main__":
    main()
