"""The real gateway for the HTTP harnesses (bench/fuzz/fuzz_http_*.py): create_app() on its embedded defaults
(in-process cache, no Redis, no upstream, no MLLP), reached by one of three transports (`--transport`):

- `asgi` (default): httpx's ASGITransport, the app and its lifespan on an event loop in the harness's own thread
  (no socket, no thread hop). Exceptions the app does not handle reach the harness as they are
  (raise_app_exceptions), so each crash keeps its own site.
- `testclient`: starlette's TestClient, the app in the client's portal thread (eight thread hops a request:
  ~1 ms of CPU per request more than `asgi`); exceptions reach the harness likewise.
- `loopback`: `uvicorn` serving the app on 127.0.0.1 in a thread and httpx over TCP: the HTTP/1.1 parsing and
  framing of a real server too. An exception the app does not handle is a 500 to the client (a finding without
  the traceback's site).

The conversions and validations run in the harness's process (`http_processes=0`), so that the runner's CPU time
per input and its per-input limit see them and an exception keeps its traceback; `--sandbox` sends them to the
budgeted sandbox processes as a deployed gateway does (their CPU is then not the runner's: slow inputs are those
the sandbox's own budget answers 422 too-costly, and a crash in a sandbox process is a 500 without its site).

A request travels through the runner as bytes (so a crash input can be saved and replayed): a first line
`#helixgate-request {"method", "path", "query", "headers"}` then the body.

The invariant checked on every answer: no 5xx (501 from a bulk request without Redis is configuration, not a crash),
every error body an OperationOutcome (FHIR XML when the request's `Accept` asked for it), no empty 2xx body.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import warnings
from typing import Any
from xml.etree import ElementTree

import httpx
import orjson

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient; httpx is what the project has
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings

PREFIX = b"#helixgate-request "
FHIR = "{http://hl7.org/fhir}"


class HttpFinding(Exception):
    """An answer that breaks the invariant; subclasses are made per status and route so each is its own site."""


_findings: dict[str, type[HttpFinding]] = {}


def finding(kind: str, status: int, route: str) -> type[HttpFinding]:
    name = f"{kind}{status}On{''.join(c for c in route.title() if c.isalnum()) or 'Root'}"
    return _findings.setdefault(name, type(name, (HttpFinding,), {}))


class AsgiClient:
    """The app on an event loop of this thread, driven by httpx's ASGITransport; its lifespan entered once.

    Requests run inside one long-lived task (`_serve`): anyio ties its worker threads (the app's synchronous work)
    to the task the loop was started with, so a loop run per request would start a new thread for each."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=True),
                                      base_url="http://testserver", timeout=None)
        self._lifespan = app.router.lifespan_context(app)
        self._queue: asyncio.Queue[tuple[str, str, dict[str, Any], asyncio.Future[httpx.Response]] | None] = \
            asyncio.Queue()
        self._server = self.loop.create_task(self._serve())
        self._call(self._lifespan.__aenter__())

    async def _serve(self) -> None:
        while (job := await self._queue.get()) is not None:
            method, path, kw, answer = job
            try:
                answer.set_result(await self.http.request(method, path, **kw) if method else await kw["coro"])
            except BaseException as e:  # the app's exception (or the runner's timeout) goes to the caller
                answer.set_exception(e)

    def _call(self, coro: Any) -> Any:
        return self._run("", "", {"coro": coro})

    def _run(self, method: str, path: str, kw: dict[str, Any]) -> Any:
        answer: asyncio.Future[Any] = self.loop.create_future()
        self._queue.put_nowait((method, path, kw, answer))
        return self.loop.run_until_complete(answer)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self._run(method, path, kw)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._call(self.http.aclose())
        self._call(self._lifespan.__aexit__(None, None, None))
        self._queue.put_nowait(None)
        self.loop.run_until_complete(self._server)
        self.loop.close()


class LoopbackClient:
    """uvicorn serving the app on a free 127.0.0.1 port in a thread; httpx over TCP (keep-alive)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 300  # the lifespan loads the packages first
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.05)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, **kw)

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(30)


def client(transport: str = "asgi", sandbox: bool = False) -> Any:
    """A client of a fresh app, its lifespan started (the caller keeps it for the whole run): `transport` is asgi,
    testclient or loopback (module docstring); `sandbox` runs the work in the sandbox processes."""
    logging.getLogger("helixgate").setLevel(logging.CRITICAL)  # the crash tracebacks are saved with the inputs
    app = create_app(Settings() if sandbox else Settings(http_processes=0))
    if transport == "asgi":
        return AsgiClient(app)
    if transport == "loopback":
        return LoopbackClient(app)
    c = TestClient(app, raise_server_exceptions=True)
    c.__enter__()
    return c


def close(c: Any) -> None:
    """End a client of `client()` and its app's lifespan (and with it the app's worker threads)."""
    if isinstance(c, TestClient):
        c.__exit__(None, None, None)
    else:
        c.close()


def _text(s: str) -> str:
    return s.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be sent (nor saved as JSON)


def pack(method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes) -> bytes:
    """One request as bytes. The path's id segments are percent-encoded by the caller; header values are made
    printable ASCII (HTTP/1.1 servers refuse the rest before any route runs)."""
    headers = {k: "".join(c if " " <= c <= "~" else "?" for c in v) for k, v in headers.items()}
    # values cut to 4 KiB: servers refuse longer request lines (414) before any route runs
    meta = {"method": method, "path": _text(path), "query": [(_text(k), _text(v)[:4096]) for k, v in query],
            "headers": headers}
    return PREFIX + orjson.dumps(meta) + b"\n" + body


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    head, _, body = data.partition(b"\n")
    return orjson.loads(head[len(PREFIX):]), body


def is_outcome(media: str, content: bytes) -> bool:
    """An OperationOutcome with an issue, as JSON or, when the client asked for it (`Accept`, `_format`), FHIR XML."""
    if "xml" in media:
        try:
            root = ElementTree.fromstring(content)  # the gateway's own answer: no entities to defuse
        except ElementTree.ParseError:
            return False
        return root.tag == FHIR + "OperationOutcome" and root.find(FHIR + "issue") is not None
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome" and bool(doc.get("issue"))


def send(c: Any, data: bytes, route: str) -> int:
    """Send one packed request; raise an HttpFinding subclass when the answer breaks the invariant. The status."""
    meta, body = unpack(data)
    r = c.request(meta["method"], meta["path"], params=meta["query"], headers=meta["headers"], content=body)
    status = r.status_code
    if status >= 400:
        if not is_outcome(r.headers.get("content-type", ""), r.content):
            raise finding("NotAnOutcome", status, route)(f"{status}: {r.content[:300]!r}")
        if status >= 500 and not (status == 501 and "bulk-needs-redis" in r.text):
            raise finding("Status", status, route)(f"{status}: {r.text[:500]}")
    elif status >= 200 and not r.content:
        raise finding("EmptyBody", status, route)(str(dict(r.headers)))
    return status
