"""Every facade response with a FHIR body leaves through `fhir_response`: the one place where its final FHIR JSON
body is produced, with the upstream's addresses rewritten to the public base (body and headers) and anything still
naming the upstream logged as an error. Error texts are scrubbed of upstream addresses too."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.formats import FHIR_JSON
from gateway.upstream import UpstreamUnauthorized, UpstreamUnavailable
from mappers.exceptions import Issue, operation_outcome

log = logging.getLogger("helixgate.facade")
# Upstream response headers a client gets (rewritten); hop-by-hop and server-specific ones stay behind.
PASS_BACK = ("etag", "last-modified", "location", "content-location", "x-request-id", "retry-after")


def fhir_response(request: Request, content: bytes | dict[str, Any] | None, status: int = 200,
                  headers: dict[str, str] | None = None, media_type: str | None = FHIR_JSON) -> Response:
    """The facade's response: `content` (FHIR JSON bytes or a resource; None: no body) with every upstream base URL
    in it and in `headers` replaced by the gateway's public base."""
    addresses = request.app.state.addresses
    public = addresses.public_base(request)
    body = b"" if content is None else content if isinstance(content, bytes) else orjson.dumps(content)
    body = addresses.rewrite(body, public)
    out = {k.lower(): addresses.rewrite_text(v, public) for k, v in (headers or {}).items()}
    leaked = addresses.leaks(body + "\n".join(out.values()).encode("utf-8", "replace"), public)
    if leaked:
        log.error("a response to %s %s still names the upstream (%s) after rewriting", request.method,
                  request.url.path[:200], ", ".join(leaked))
    return Response(body, status_code=status, headers=out, media_type=media_type if content is not None else None)


def outcome(request: Request, status: int, code: str, details: str, message: str,
            headers: dict[str, str] | None = None) -> Response:
    """An error as an OperationOutcome with one issue (its text without upstream addresses)."""
    text = request.app.state.addresses.scrub(message)
    doc = operation_outcome([Issue("fatal" if status >= 500 else "error", code, details, text)])
    return fhir_response(request, doc, status, {"X-Forwarded": "no", **(headers or {})})


def unavailable(request: Request, e: UpstreamUnavailable) -> Response:
    if isinstance(e, UpstreamUnauthorized):  # the gateway's credentials, not the caller's
        log.error("%s", e)
        return refused_credentials(request)
    retry = {"Retry-After": str(max(1, int(e.retry_after or 1)))}
    return outcome(request, 503, "transient", "upstream-unavailable",
                   f"the upstream FHIR server is unavailable: {e}", retry)


def refused_credentials(request: Request) -> Response:
    log.error("the upstream refused the gateway's credentials (401, after one retry with fresh ones)")
    return outcome(request, 502, "exception", "upstream-unauthorized",
                   "the upstream FHIR server refused the gateway's own credentials")


def passed_headers(upstream_response: Any) -> dict[str, str]:
    return {h: upstream_response.headers[h] for h in PASS_BACK if h in upstream_response.headers}
