"""The real gateway in process for the HTTP harnesses (bench/fuzz/fuzz_http_*.py): create_app() on its embedded
defaults (in-process cache, no Redis, no upstream, no MLLP), driven by starlette's TestClient (no socket; the app
and its lifespan run in the client's portal thread). Exceptions the app does not handle reach the harness as they
are (raise_server_exceptions), so each crash keeps its own site.

A request travels through the runner as bytes (so a crash input can be saved and replayed): a first line
`#helixgate-request {"method", "path", "query", "headers"}` then the body.

The invariant checked on every answer: no 5xx (501 from a bulk request without Redis is configuration, not a crash),
every error body an OperationOutcome, no empty 2xx body.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import orjson

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient; httpx is what the project has
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings

PREFIX = b"#helixgate-request "


class HttpFinding(Exception):
    """An answer that breaks the invariant; subclasses are made per status and route so each is its own site."""


_findings: dict[str, type[HttpFinding]] = {}


def finding(kind: str, status: int, route: str) -> type[HttpFinding]:
    name = f"{kind}{status}On{''.join(c for c in route.title() if c.isalnum()) or 'Root'}"
    return _findings.setdefault(name, type(name, (HttpFinding,), {}))


def client() -> TestClient:
    """A client of a fresh app, its lifespan started (the caller keeps it for the whole run)."""
    logging.getLogger("helixgate").setLevel(logging.CRITICAL)  # the crash tracebacks are saved with the inputs
    c = TestClient(create_app(Settings()), raise_server_exceptions=True)
    c.__enter__()
    return c


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


def send(c: TestClient, data: bytes, route: str) -> int:
    """Send one packed request; raise an HttpFinding subclass when the answer breaks the invariant. The status."""
    meta, body = unpack(data)
    r = c.request(meta["method"], meta["path"], params=meta["query"], headers=meta["headers"], content=body)
    status = r.status_code
    if status >= 400:
        try:
            doc = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict) or doc.get("resourceType") != "OperationOutcome" or not doc.get("issue"):
            raise finding("NotAnOutcome", status, route)(f"{status}: {r.content[:300]!r}")
        if status >= 500 and not (status == 501 and "bulk-needs-redis" in r.text):
            raise finding("Status", status, route)(f"{status}: {r.text[:500]}")
    elif status >= 200 and not r.content:
        raise finding("EmptyBody", status, route)(str(dict(r.headers)))
    return status
