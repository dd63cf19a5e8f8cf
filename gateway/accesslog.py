"""The access log and the request metrics: one pure-ASGI middleware, outermost, so every answer is seen — 401, 403,
413, 429 and 404 included.

One line per request on the `helixgate.access` logger: method, route template (`/fhir/{type:str}/$validate`, never
the path: ids, and never the query string or the body, which may carry patient data), status, duration, response
bytes, and the client id (the authenticated Principal's client, `anonymous` when auth is off, `-` when the request
was refused before anyone was identified). As text, or as JSON with HELIXGATE_LOG_FORMAT=json (gateway.logconfig).

Where the gateway's own handler is the only one the line would reach (`helixgate serve`), the middleware hands it
the line directly: a LogRecord and its trip through logging cost more than the rest of a cached request's
middleware. Any other handler or filter on the way (an embedding program's logging, pytest's caplog) gets records.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import metrics
from gateway.auth.principal import SCOPE_KEY
from gateway.logconfig import sole_handler

log = logging.getLogger("helixgate.access")
UNMATCHED = "unmatched"  # requests no route takes share one label: unknown paths cannot grow the label set
# a token's client id or subject is the issuer's text: no control characters into a text log line (no forged lines)
_UNSAFE = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The path template of the route that took the request; for a request refused before routing (401, 403, 429),
    the route that would have taken it."""
    route = scope.get("route")
    if route is None:
        for candidate in routes:
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                route = candidate
                break
    return getattr(route, "path", None) or UNMATCHED


def _flushing(send: Send) -> Send:
    """The lifespan's `send`, writing the access lines still waiting when the app has shut down (a server process
    of `serve --workers` ends without logging's own flush at exit)."""

    async def flushing(message: Message) -> None:
        if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            handler = sole_handler(log)
            if handler is not None:
                handler.flush()
        await send(message)

    return flushing


def _message(method: str, route: str, status: int, seconds: float, size: int, client: str) -> str:
    return f"{method} {route} {status} {seconds * 1000:.1f}ms {size}B client={client}"


def _fields(method: str, route: str, status: int, seconds: float, size: int, client: str) -> dict[str, Any]:
    """The line's fields as JSON writes them (a record's `http` extra)."""
    return {"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 3),
            "bytes": size, "client": client}


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _flushing(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, size = 500, 0

        async def counting(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:  # an exception becomes the 500 that Starlette's outer error middleware sends
            seconds = time.perf_counter() - started
            route = route_template(scope, self.routes)
            method = scope["method"]
            metrics.observe_request(route, method, status, seconds)
            if log.isEnabledFor(logging.INFO):
                principal: Any = scope.get(SCOPE_KEY)
                client = (_UNSAFE.sub("?", principal.client[:128]) if principal is not None
                          else "-" if status in (401, 503) else "anonymous")
                handler = sole_handler(log)
                line = (method, route, status, seconds, size, client)
                if handler is not None:  # `helixgate serve`'s own handler alone: the line without a LogRecord
                    handler.later(log.name, line, _message, _fields)
                else:
                    log.info("%s", _message(*line), extra={"http": _fields(*line)})
