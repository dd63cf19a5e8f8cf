"""The facade's reads: read, vread, history (instance, type, system), search (type, compartment, system with
`_type`, and POST `_search`), and the GET operations the upstream runs. Reads of one resource are revalidated with
If-None-Match through the cache (entries keyed by URL and the caller's Principal, so clients never share them)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.enforce import Denied, choose
from gateway.auth.principal import principal_of
from gateway.auth.table import rest_need
from gateway.cache import cache_key
from gateway.facade.common import (
    forwarded_headers,
    query_suffix,
    relay,
    upstream_capabilities,
    upstream_of,
)
from gateway.facade.paths import READ_SHAPES, fhir_path
from gateway.facade.respond import outcome, unavailable
from gateway.routes import read_body
from gateway.upstream import UpstreamUnavailable

UPSTREAM_PREFIX = "helixgate:up:"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_PARAMS = 200


SUMMARY = ("true", "text", "data", "count", "false")  # search.html#summary


def _bad_summary(request: Request) -> Response | None:
    """400 for a `_summary` FHIR does not define: the gateway would otherwise pass on what it cannot apply."""
    value = request.query_params.get("_summary")
    if value is None or value in SUMMARY:
        return None
    return outcome(request, 400, "invalid", "facade-summary",
                   f"_summary={value[:40]!r} is not one of {', '.join(SUMMARY)}")


async def read_route(request: Request) -> Response:
    """GET [base]/{type}[/…]: proxied, with ETag revalidation through the cache for reads of one resource."""
    path = fhir_path(request, READ_SHAPES)
    if isinstance(path, Response):
        return path
    refused = _bad_summary(request)
    if refused is not None:
        return refused
    await upstream_capabilities(request)  # learns what the upstream calls itself before its answer is rewritten
    upstream = upstream_of(request)
    url = upstream.url(path) + query_suffix(request)
    segments = path.split("/")
    if len(segments) == 1 or segments[-1] == "_history" or (len(segments) == 3 and segments[1] != "_history"
                                                              and segments[2] != "_history"):
        return await _listing(request, url, path)  # search, history, compartment search: a Bundle, never cached
    cache = request.app.state.cache
    who = principal_of(request)
    key = cache_key(url.encode(), who.via, who.client, who.patient or "", prefix=UPSTREAM_PREFIX)
    kept = await cache.get(key)
    entry = orjson.loads(kept) if kept else None
    headers = forwarded_headers(request)
    if entry:
        headers["If-None-Match"] = entry["etag"]
    try:
        resp = await upstream.send("GET", url, headers=headers)
    except UpstreamUnavailable as e:
        return unavailable(request, e)
    if resp.status_code == 304 and entry:
        etag, body, state = entry["etag"], entry["body"].encode(), "revalidated"
    elif resp.status_code == 200 and resp.headers.get("etag"):
        etag, body, state = resp.headers["etag"], resp.content, "miss"
        await cache.set(key, orjson.dumps({"etag": etag, "body": body.decode("utf-8", "replace")}))
    else:
        return relay(request, resp, extra={"X-Cache": "bypass"})
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "X-Cache": state})
    return relay(request, resp, body=body, status=200, extra={"X-Cache": state, "ETag": etag})


async def _listing(request: Request, url: str, self_path: str) -> Response:
    try:
        resp = await upstream_of(request).send("GET", url, headers=forwarded_headers(request))
    except UpstreamUnavailable as e:
        return unavailable(request, e)
    return relay(request, resp, self_path=self_path + query_suffix(request), extra={"X-Cache": "bypass"})


async def system_route(request: Request) -> Response:
    """GET [base] (search-system, e.g. `?_type=Patient,Observation`) and GET [base]/_history (history-system)."""
    refused = _bad_summary(request)
    if refused is not None:
        return refused
    await upstream_capabilities(request)
    history = request.url.path.rstrip("/").endswith("/_history")
    upstream = upstream_of(request)
    return await _listing(request, upstream.url("_history" if history else "") + query_suffix(request),
                          "_history" if history else "")


async def search_post_route(request: Request) -> Response:
    """POST [base]/{type}/_search (or [base]/_search): the form's parameters joined to the query's (both apply,
    search.html#search), checked against the caller's scopes like a GET, and sent to the upstream as a POST so they
    stay out of URLs and logs."""
    rtype = request.path_params.get("type")
    if rtype is not None:
        path = fhir_path(request, (("_search",),))
        if isinstance(path, Response):
            return path
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request, request.app.state.settings.max_request_bytes)
    if body.strip() and media != FORM:
        return outcome(request, 415, "not-supported", "facade-search-form",
                       f"POST _search takes {FORM} (search.html#search), not {media or 'an untyped body'}")
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                         max_num_fields=MAX_FORM_PARAMS)
    except (UnicodeDecodeError, ValueError) as e:
        return outcome(request, 400, "invalid", "facade-search-form", f"the search form cannot be read: {e}")
    query = parse_qsl(request.url.query, keep_blank_values=True)
    auth = getattr(request.app.state, "auth", None)
    if auth is not None and auth.enabled and form:  # the middleware saw the query only: _include in the form too
        try:
            choose(principal_of(request), rest_need("GET", [rtype] if rtype else [], [*query, *form], "read"),
                   [*query, *form])
        except Denied as e:
            return e.response()
    await upstream_capabilities(request)
    upstream = upstream_of(request)
    target = f"{rtype}/_search" if rtype else "_search"
    headers = forwarded_headers(request, **{"Content-Type": FORM})
    try:
        resp = await upstream.send("POST", upstream.url(target) + query_suffix(request),
                                   content=urlencode(form).encode(), headers=headers)
    except UpstreamUnavailable as e:
        return unavailable(request, e)
    self_query = urlencode([*query, *form])
    return relay(request, resp, self_path=(rtype or "") + (f"?{self_query}" if self_query else ""),
                 extra={"X-Cache": "bypass"})


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match against an ETag, by weak comparison (RFC 9110 §13.1.2); '*' matches any."""
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == wanted for t in header.split(","))
