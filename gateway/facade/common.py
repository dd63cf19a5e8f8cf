"""What the facade's interactions share: the upstream and what it calls itself, forwarded headers, validation of
what is about to be written, and turning an upstream answer into the facade's."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.facade.addresses import Addresses
from gateway.facade.respond import fhir_response, passed_headers, refused_credentials
from gateway.facade.semantics import shape_searchset, subset, subset_query, version_headers
from gateway.formats import FHIR_JSON
from gateway.responses import FHIRResponse
from gateway.sandbox import Cancelled, definitions_fingerprint, run_job
from gateway.upstream import Upstream, UpstreamRejected, UpstreamUnavailable
from gateway.validate import validate

log = logging.getLogger("helixgate.facade")
FORWARD = ("if-match", "if-none-exist", "if-modified-since", "prefer", "x-request-id", "x-correlation-id")
CAP_TTL = 300.0
_CAP_RETRY = 30.0


def upstream_of(request: Request) -> Upstream:
    return request.app.state.upstream


def addresses_of(request: Request) -> Addresses:
    return request.app.state.addresses


def forwarded_headers(request: Request, **extra: str) -> dict[str, str]:
    headers = {h: request.headers[h] for h in FORWARD if h in request.headers}
    headers.update(extra)
    return headers


def query_suffix(request: Request) -> str:
    query = request.url.query
    if "_format" in query:  # the gateway renders the format asked for (gateway.negotiation); the upstream answers JSON
        query = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "_format"])
    return f"?{query}" if query else ""


async def upstream_capabilities(request: Request) -> dict[str, Any] | None:
    """The upstream's CapabilityStatement (kept CAP_TTL seconds; after a failure, asked again after 30 s). Its
    implementation.url is learned as one of the upstream's bases."""
    state = request.app.state
    cap, fetched = getattr(state, "upstream_cap", (None, 0.0))
    now = time.monotonic()
    if cap is not None and now - fetched <= CAP_TTL:
        return cap
    if now < getattr(state, "upstream_cap_retry", 0.0):
        return cap
    try:
        cap = await upstream_of(request).capabilities()
    except (UpstreamUnavailable, UpstreamRejected) as e:
        log.warning("upstream CapabilityStatement unavailable (%s)", addresses_of(request).scrub(str(e)))
        state.upstream_cap_retry = now + _CAP_RETRY
        return cap
    state.upstream_cap = (cap, now)
    url = (cap.get("implementation") or {}).get("url") if isinstance(cap, dict) else None
    if isinstance(url, str):
        addresses_of(request).learn(url, "CapabilityStatement.implementation.url")
    return cap


async def check(request: Request, resource: dict[str, Any]) -> Response | None:
    """422 with the OperationOutcome when `resource` has validation errors; 499 when the client went away."""
    try:
        result = await validate(resource, (), None, request.app.state.cache,
                                runner=lambda job: run_job(request, job),
                                fingerprint=await definitions_fingerprint(request))
    except Cancelled:
        return Response(status_code=499)
    if result.errors:
        return FHIRResponse(result.outcome, status_code=422, headers={"X-Forwarded": "no"})
    return None


def parse(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


def learn_from(addresses: Addresses, doc: Any, location: str | None, path: str | None = None) -> None:
    """The upstream's bases as its Location, fullUrls and Bundle links show them (a URL ending in the resource it
    names; a link ending in the `path` searched)."""
    if location:
        parts = location.split("?", 1)[0].rstrip("/").split("/")
        if "_history" in parts[-2:-1]:
            addresses.learn_suffixed(location, "/".join(parts[-4:]), "Location")
        else:
            addresses.learn_suffixed(location, "/".join(parts[-2:]), "Location")
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for link in doc.get("link") or []:
            url = link.get("url") if isinstance(link, dict) else None
            if isinstance(url, str) and path:
                addresses.learn_suffixed(url, path, "Bundle.link")
        for entry in doc.get("entry") or []:
            res = entry.get("resource") if isinstance(entry, dict) else None
            full = entry.get("fullUrl") if isinstance(entry, dict) else None
            if isinstance(res, dict) and isinstance(full, str):
                addresses.learn_suffixed(full, f"{res.get('resourceType')}/{res.get('id')}", "Bundle.entry.fullUrl")
            loc = (entry.get("response") or {}).get("location") if isinstance(entry, dict) else None
            if isinstance(loc, str):
                learn_from(addresses, None, loc)


def relay(request: Request, resp: httpx.Response, *, self_path: str | None = None,
          extra: dict[str, str] | None = None, status: int | None = None, body: bytes | None = None) -> Response:
    """The facade's answer from an upstream response: headers passed back, versions stated, searchsets and history
    given their self link (`self_path`: the request's path after /fhir/, with its query) and paging outcome, and
    `_summary`/`_elements` applied."""
    if resp.status_code == 401:  # the gateway's credentials, not the caller's, were refused
        return refused_credentials(request)
    content = resp.content if body is None else body
    headers = passed_headers(resp)
    headers.update({k.lower(): v for k, v in (extra or {}).items()})
    media = resp.headers.get("content-type", "application/fhir+json; charset=utf-8")
    code = status or resp.status_code
    json_body = "json" in media.lower()
    if json_body:
        media = FHIR_JSON  # FHIR's own media type, with its charset (http.html#mime), whatever the upstream said
    summary, elements = subset_query(request.query_params)
    needs_parse = json_body and content and (
        self_path is not None or summary or elements or (200 <= code < 300 and "etag" not in headers))
    doc = parse(content) if needs_parse else None
    searched = (self_path or "").split("?", 1)[0]
    learn_from(request.app.state.addresses, doc, resp.headers.get("location"), searched or None)
    if isinstance(doc, dict):
        changed = False
        if doc.get("resourceType") == "Bundle" and doc.get("type") in ("searchset", "history") and code == 200:
            public = request.app.state.addresses.public_base(request)
            count = request.query_params.get("_count")
            doc = shape_searchset(doc, f"{public}/{self_path or ''}".rstrip("/"), summary, elements,
                                  int(count) if count and count.isdigit() else None)
            changed = True
        elif (summary or elements) and 200 <= code < 300:
            doc = subset(doc, summary, elements)
            changed = True
        if 200 <= code < 300:
            version_headers(doc, headers)
        if changed:
            content = orjson.dumps(doc)
    return fhir_response(request, content or None, code, headers, media if content else None)
