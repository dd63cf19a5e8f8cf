"""Content negotiation on /fhir: `_format` (which overrides Accept) and Accept name the response format.

helixgate renders FHIR JSON only. JSON asked for in any of its spellings (json, application/json,
application/fhir+json, application/json+fhir) passes. A request that can only be answered in a FHIR format
the gateway does not render (XML, Turtle, HTML) gets 406 Not Acceptable with an OperationOutcome, rather
than JSON it did not ask for (FHIR R4 http.html#mime-type). Media types that are not FHIR representations
(an HL7 v2 message, NDJSON, VCF) are left to the routes, which choose their own output.
"""

from __future__ import annotations

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.responses import outcome_response

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})
# FHIR representations helixgate does not render, by _format value or media type.
UNRENDERED = {
    "xml": "FHIR XML", "text/xml": "FHIR XML", "application/xml": "FHIR XML", "application/fhir+xml": "FHIR XML",
    "application/xml+fhir": "FHIR XML", "ttl": "Turtle", "text/turtle": "Turtle", "application/x-turtle": "Turtle",
    "html": "HTML", "text/html": "HTML",
}
SUPPORTED = "json, application/json or application/fhir+json"


def refusal(format_param: str | None, accept: str | None) -> str | None:
    """Why the request cannot be answered in a format it accepts, or None when it can (or the route decides)."""
    if format_param is not None:
        value = format_param.strip().lower().replace(" ", "+")  # an unescaped '+' in a query string reads as ' '
        if value in JSON_FORMATS:
            return None
        if value in UNRENDERED:
            return f"_format={format_param}: helixgate renders FHIR JSON only, not {UNRENDERED[value]}; use {SUPPORTED}"
        if "/" in value:
            return None  # a non-FHIR media type (e.g. NDJSON): the route decides
        return f"_format={format_param} is not a format helixgate knows; use {SUPPORTED}"
    if not accept:
        return None
    refused = []
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        media = media.lower()
        if not media or _quality(params) <= 0:
            continue
        if media not in UNRENDERED:
            return None  # JSON, a wildcard, or a type some route produces
        refused.append(UNRENDERED[media])
    if refused:
        return (f"Accept: {accept} names only {' and '.join(dict.fromkeys(refused))}, which helixgate does not "
                f"render; it serves FHIR JSON (Accept {SUPPORTED}, or _format=json)")
    return None


def _quality(params: list[str]) -> float:
    for p in params:
        name, _, value = p.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


class NegotiationMiddleware:
    """ASGI middleware (not BaseHTTPMiddleware, so streamed responses stay streamed) for paths under `prefix`."""

    def __init__(self, app: ASGIApp, prefix: str = "/fhir") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"] == self.prefix or scope["path"].startswith(self.prefix + "/")):
            query = QueryParams(scope.get("query_string", b""))
            why = refusal(query.get("_format"), Headers(scope=scope).get("accept"))
            if why is not None:
                response = outcome_response(406, "not-supported", "format-not-supported", why)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
