"""The validating facade in front of an upstream FHIR server (HELIXGATE_UPSTREAM_URL), and the lifespan
resources of the integration engine (Redis client, upstream client, audit log, MLLP listener).

- Reads (`GET /fhir/{type}…`) are proxied; responses with an ETag are kept in the cache and revalidated with
  If-None-Match (a 304 from the upstream serves the kept body). Entries are keyed by URL and the caller's
  Principal, so clients never share them.
- The upstream sees the gateway's own credentials (HELIXGATE_UPSTREAM_TOKEN_FILE or client credentials,
  gateway/upstream/credentials.py), never the caller's Authorization; who the caller was goes into the AuditEvent.
- Writes (`POST /fhir/{type}`, `PUT /fhir/{type}/{id}`, `POST /fhir` transactions) are validated first; with
  errors the answer is 422 with the OperationOutcome and nothing is forwarded. A national format posted to
  `/fhir` (HL7 v2, VCF, …) is converted to a transaction Bundle first and delivered idempotently.
- Upstream URLs never leak: the upstream base is replaced by the gateway's in bodies, Location and
  Content-Location. `/fhir/metadata` announces the upstream's resources beside the gateway's own operations.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.audit import AuditLog, delivery_provenance, with_provenance
from gateway.auth.enforce import authorize_body
from gateway.auth.principal import principal_of
from gateway.cache import cache_key
from gateway.convert import convert
from gateway.formats import GENERIC_MEDIA_TYPES, HUB, detect, media_source, resolve
from gateway.formats import Request as ConvertRequest
from gateway.responses import FHIRResponse, outcome_response
from gateway.routes import metadata as own_metadata
from gateway.routes import read_body
from gateway.sandbox import Cancelled, definitions_fingerprint, run_job
from gateway.settings import Settings, SettingsError
from gateway.upstream import (
    Upstream,
    UpstreamRejected,
    UpstreamUnauthorized,
    UpstreamUnavailable,
    deliver,
    make_upstream,
)
from gateway.validate import read_resource, validate
from mappers.toolkit.registry import ConvertOptions, get

log = logging.getLogger("helixgate.facade")
UPSTREAM_PREFIX = "helixgate:up:"
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}\Z")  # a resource type (FHIR's grammar is [A-Za-z]+; types start upper-case)
# FHIR REST path grammar (http.html#general): ids, operations, and the fixed words of the interactions.
_SEGMENT = {"type": re.compile(r"[A-Za-z]{1,64}\Z"), "id": re.compile(r"[A-Za-z0-9\-.]{1,64}\Z"),
            "operation": re.compile(r"\$[A-Za-z][A-Za-z0-9\-_]{0,63}\Z")}
# What may follow [base]/{type} on a read, by position: the interactions and operations of a GET.
_READ_SHAPES = (("id",), ("_history",), ("operation",), ("id", "_history"), ("id", "operation"), ("id", "type"),
                ("id", "*"), ("id", "_history", "id"), ("id", "_history", "id", "operation"))
_FORWARD = ("if-match", "if-none-exist", "if-modified-since", "prefer", "x-request-id",
            "x-correlation-id")
_PASS_BACK = ("etag", "last-modified", "location", "content-location", "x-request-id")
_CAP_TTL = 300.0


@contextlib.asynccontextmanager
async def integration_resources(app: Any, settings: Settings) -> AsyncIterator[None]:
    """Opens what the engine needs for the app's lifetime: `app.state.redis`, `.upstream`, `.audit` and, with
    HELIXGATE_MLLP_PORT, the MLLP listener (`.mllp`). Raises SettingsError for a listener without Redis."""
    from gateway.workers.streams import AUDIT, Enqueuer, redis_client

    if settings.mllp_port is not None and not settings.redis_url:
        raise SettingsError("the MLLP listener needs HELIXGATE_REDIS_URL: messages are stored in a Redis stream "
                            "before they are acknowledged")
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    upstream = make_upstream(settings)
    audit = AuditLog(redis, stream=AUDIT, upstream=upstream if settings.audit_upstream else None)
    app.state.redis, app.state.upstream, app.state.audit = redis, upstream, audit
    app.state.mllp = None
    enqueuer = None
    try:
        if settings.mllp_port is not None and redis is not None:
            from gateway.mllp.ack import AckPolicy
            from gateway.mllp.listen import adopted
            from gateway.mllp.partners import Partners
            from gateway.mllp.server import MllpServer
            from gateway.tls import TlsConfig

            enqueuer = Enqueuer(redis)
            app.state.mllp = MllpServer(enqueuer, host=settings.mllp_host or settings.host, port=settings.mllp_port,
                                        max_message_bytes=settings.mllp_max_message_bytes,
                                        max_buffered_bytes=settings.mllp_max_buffered_bytes,
                                        max_connections=settings.mllp_max_connections,
                                        max_connections_per_peer=settings.mllp_max_connections_per_peer,
                                        max_segments=settings.mllp_max_segments,
                                        idle_timeout=settings.mllp_idle_timeout_ms / 1000,
                                        read_timeout=settings.mllp_read_timeout_ms / 1000,
                                        policy=AckPolicy(settings.mllp_ack_codes), audit=audit,
                                        reuse_port=settings.mllp_reuse_port, sock=adopted(),
                                        tls=TlsConfig.from_env("HELIXGATE_MLLP_TLS"), partners=Partners.from_env())
            await app.state.mllp.start()
        # Everything loaded so far (tables, routes, definitions) lives as long as the process: moved out of the
        # collector's sight, gen-2 collections stop scanning it (p99 of cached $convert: ~100 ms → ~40 ms).
        gc.collect()
        gc.freeze()
        yield
    finally:
        if app.state.mllp is not None:
            await app.state.mllp.close()
        if enqueuer is not None:
            await enqueuer.close()
        await audit.close()
        if upstream is not None:
            await upstream.aclose()
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _rewrite(data: bytes, upstream: Upstream, base: str) -> bytes:
    return data.replace(upstream.base_url.encode(), base.encode()) if data else data


def _response(upstream_response: Any, upstream: Upstream, base: str, body: bytes | None = None,
              status: int | None = None, extra: dict[str, str] | None = None) -> Response:
    if upstream_response.status_code == 401:  # the gateway's credentials, not the caller's, were refused
        log.error("the upstream refused the gateway's credentials (401, after one retry with fresh ones)")
        return outcome_response(502, "exception", "upstream-unauthorized",
                                "the upstream FHIR server refused the gateway's own credentials")
    headers = {h: upstream_response.headers[h].replace(upstream.base_url, base)
               for h in _PASS_BACK if h in upstream_response.headers}
    headers.update({k.lower(): v for k, v in (extra or {}).items()})
    content = _rewrite(upstream_response.content if body is None else body, upstream, base)
    media = upstream_response.headers.get("content-type", "application/fhir+json; charset=utf-8")
    return Response(content, status_code=status or upstream_response.status_code, headers=headers, media_type=media)


def _unavailable(e: UpstreamUnavailable) -> Response:
    if isinstance(e, UpstreamUnauthorized):  # as _response: the gateway's credentials, not the caller's
        log.error("%s", e)
        return outcome_response(502, "exception", "upstream-unauthorized",
                                "the upstream FHIR server refused the gateway's own credentials")
    headers = {"Retry-After": str(max(1, int(e.retry_after or 1)))}
    return outcome_response(503, "transient", "upstream-unavailable", f"the upstream FHIR server is unavailable: {e}",
                            headers=headers)


def _forwarded_headers(request: Request) -> dict[str, str]:
    return {h: request.headers[h] for h in _FORWARD if h in request.headers}


def _fhir_path(request: Request, shapes: tuple[tuple[str, ...], ...]) -> str | Response:
    """The path after /fhir/ to forward, checked against FHIR's grammar before anything leaves the gateway: a
    type, then one of `shapes`. Dot segments, empty segments and percent-encoded characters (none of which a
    type, id or operation can hold: `%2e%2e%2f` is how a `../` sneaks past a decoding router) get a 400."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    text = raw.decode("latin-1").split("?", 1)[0]
    rest = text.split("/fhir/", 1)[1] if "/fhir/" in text else ""
    if rest.endswith("/") and len(rest) > 1:  # a trailing slash names the same resource
        rest = rest[:-1]
    segments = rest.split("/")
    problem = ""
    if "%" in rest:
        problem = "percent-encoded characters are not part of a FHIR type, id or operation"
    elif any(s in ("", ".", "..") for s in segments):
        problem = "empty and dot segments ('.', '..') are not part of a FHIR path"
    elif not _SEGMENT["type"].match(segments[0]):
        problem = f"{segments[0][:70]!r} is not a FHIR resource type ([A-Za-z]+)"
    elif not any(_matches(segments[1:], shape) for shape in shapes):
        wanted = ", ".join("/".join(("{type}", *(f"{{{p}}}" if p in _SEGMENT else p for p in shape)))
                           for shape in shapes)
        problem = (f"not a path this gateway forwards; ids are [A-Za-z0-9-.]{{1,64}}, operations $name, and a "
                   f"{request.method} takes {wanted}")
    if problem:
        return outcome_response(400, "invalid", "facade-bad-path", f"{request.method} /fhir/{rest[:200]}: {problem}",
                                headers={"X-Forwarded": "no"})
    if not _TYPE.match(segments[0]):
        return outcome_response(404, "not-found", "http-404", f"no route {request.url.path}")
    return rest


def _matches(segments: list[str], shape: tuple[str, ...]) -> bool:
    if len(segments) != len(shape):
        return False
    for segment, part in zip(segments, shape, strict=True):
        pattern = _SEGMENT.get(part)
        if not (pattern.match(segment) if pattern is not None else segment == part):
            return False
    return True


async def read_route(request: Request) -> Response:
    """GET [base]/{type}[/…]: proxied, with ETag revalidation through the cache."""
    path = _fhir_path(request, ((), *_READ_SHAPES))
    if isinstance(path, Response):
        return path
    upstream: Upstream = request.app.state.upstream
    url = upstream.url(path) + (f"?{request.url.query}" if request.url.query else "")
    cache = request.app.state.cache
    who = principal_of(request)
    key = cache_key(url.encode(), who.via, who.client, who.patient or "", prefix=UPSTREAM_PREFIX)
    kept = await cache.get(key)
    entry = orjson.loads(kept) if kept else None
    headers = _forwarded_headers(request)
    if entry:
        headers["If-None-Match"] = entry["etag"]
    try:
        resp = await upstream.send("GET", url, headers=headers)
    except UpstreamUnavailable as e:
        return _unavailable(e)
    base = _base(request)
    if resp.status_code == 304 and entry:
        etag, body, state = entry["etag"], entry["body"].encode(), "revalidated"
    elif resp.status_code == 200 and resp.headers.get("etag"):
        etag, body, state = resp.headers["etag"], resp.content, "miss"
        await cache.set(key, orjson.dumps({"etag": etag, "body": body.decode("utf-8", "replace")}))
    else:
        return _response(resp, upstream, base, extra={"X-Cache": "bypass"})
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "X-Cache": state})
    return _response(resp, upstream, base, body=body, status=200, extra={"X-Cache": state, "ETag": etag})


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match against an ETag, by weak comparison (RFC 9110 §13.1.2); '*' matches any."""
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == wanted for t in header.split(","))


async def _check(request: Request, resource: dict[str, Any]) -> Response | None:
    """422 with the OperationOutcome when `resource` has validation errors; 503 when validation cannot run (raised
    as a Refused, like a validation past its budget); 499 when the client went away meanwhile."""
    try:
        result = await validate(resource, (), None, request.app.state.cache,
                                runner=lambda job: run_job(request, job),
                                fingerprint=await definitions_fingerprint(request))
    except Cancelled:
        return Response(status_code=499)
    if result.errors:
        return FHIRResponse(result.outcome, status_code=422, headers={"X-Forwarded": "no"})
    return None


async def write_route(request: Request) -> Response:
    """POST/PUT of a FHIR resource (or POST /fhir of a Bundle or a national format): validate, then forward."""
    rtype = request.path_params.get("type")
    path = _fhir_path(request, (("id",),) if request.method == "PUT" else ((),)) if rtype is not None else ""
    if isinstance(path, Response):
        return path
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.max_request_bytes)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    source = request.query_params.get("source") or media_source(media)
    if source is None and media in GENERIC_MEDIA_TYPES:
        source = detect(body)
    if source != HUB:
        if rtype is not None:
            return outcome_response(415, "not-supported", "facade-national-format",
                                    f"POST a {source or media} document to [base] (/fhir), not to /fhir/{rtype}")
        return await _national(request, body, source)
    resource = read_resource(body, media)
    if rtype and request.method == "POST" and resource.get("resourceType") != rtype:
        return outcome_response(400, "invalid", "facade-type-mismatch",
                                f"the body is a {resource.get('resourceType')}, but was posted to /fhir/{rtype}")
    denied, narrowed = await authorize_body(request, resource)  # the scopes of each entry; patient compartment
    if denied is not None:
        return denied
    if narrowed:  # searches and conditions of entries narrowed to what the client may see
        body = orjson.dumps(resource)
    refused = await _check(request, resource)
    if refused is not None:
        return refused
    upstream: Upstream = request.app.state.upstream
    url = upstream.url(path) + (f"?{request.url.query}" if request.url.query else "")
    headers = {**_forwarded_headers(request), "Content-Type": "application/fhir+json"}
    idempotent = request.method == "PUT" or "if-none-exist" in request.headers
    try:
        resp = await upstream.send(request.method, url, content=body, headers=headers, idempotent=idempotent)
    except UpstreamUnavailable as e:
        return _unavailable(e)
    return _response(resp, upstream, _base(request))


async def _national(request: Request, body: bytes, source: str | None) -> Response:
    """A national-format document posted to [base]: converted to a transaction Bundle, validated, delivered."""
    settings: Settings = request.app.state.settings
    src, _ = resolve(body, source, HUB)
    req = ConvertRequest(src, HUB, ConvertOptions("transaction", settings.v2_timezone))
    try:
        result, _ = await convert(body, req, request.app.state.cache, runner=lambda job: run_job(request, job))
    except Cancelled:
        return Response(status_code=499)
    bundle = orjson.loads(result.body)
    message_id = request.headers.get("x-request-id") or bundle.get("id", "")
    prov = delivery_provenance(bundle, source_format=src, message_id=message_id, mapper_version=get(src).version,
                               recorded=datetime.now(UTC).isoformat(timespec="milliseconds"))
    bundle = with_provenance(bundle, prov)
    denied, _ = await authorize_body(request, bundle, converted=True)  # $convert, then each entry's write scope
    if denied is not None:
        return denied
    refused = await _check(request, bundle)
    if refused is not None:
        return refused
    upstream: Upstream = request.app.state.upstream
    try:
        delivered = await deliver(upstream, bundle)
    except UpstreamUnavailable as e:
        return _unavailable(e)
    except UpstreamRejected as e:
        status = e.status if 400 <= e.status < 500 else 502
        return FHIRResponse(e.outcome, status_code=status) if e.outcome else outcome_response(
            502, "exception", "upstream-rejected", str(e))
    base = _base(request)
    entries = [{"response": {"status": "201 Created", "location": f"{base}/{ref}"}} for ref in delivered.created]
    entries += [{"response": {"status": "200 OK", "location": f"{base}/{ref}"}} for ref in delivered.matched]
    return FHIRResponse({"resourceType": "Bundle", "type": "transaction-response", "entry": entries},
                        headers={"X-Conversion-Source": src})


GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
# What the gateway enforces on writes (it validates every claimed profile), announced per resource type.
GENOMIC_PROFILES = {
    "Observation": ["variant", "diagnostic-implication", "therapeutic-implication", "molecular-consequence",
                    "genotype", "haplotype", "sequence-phase-relationship", "molecular-biomarker"],
    "DiagnosticReport": ["genomic-report"],
    "Procedure": ["genomic-study", "genomic-study-analysis"],
    "DocumentReference": ["genomic-data-file"],
    "Task": ["medication-recommendation", "followup-recommendation"],
}
_SP = "http://hl7.org/fhir/SearchParameter/"
# R4 search parameters of the genomic resource types, announced when the upstream declares none of its own (the
# conformance kit's server suite exercises each one, so the claim is checked, not assumed).
STANDARD_SEARCH = {
    "Observation": [("subject", "Observation-subject", "reference"), ("patient", "clinical-patient", "reference"),
                    ("code", "clinical-code", "token"), ("category", "Observation-category", "token"),
                    ("status", "Observation-status", "token"), ("date", "clinical-date", "date"),
                    ("component-code", "Observation-component-code", "token"),
                    ("combo-code", "Observation-combo-code", "token"),
                    ("derived-from", "Observation-derived-from", "reference")],
    "DiagnosticReport": [("subject", "DiagnosticReport-subject", "reference"),
                         ("patient", "clinical-patient", "reference"), ("code", "clinical-code", "token"),
                         ("category", "DiagnosticReport-category", "token"),
                         ("status", "DiagnosticReport-status", "token"), ("date", "clinical-date", "date"),
                         ("result", "DiagnosticReport-result", "reference")],
}


def _announce_genomics(resources: list[dict]) -> list[dict]:
    """The upstream's resource entries with the IG profiles the gateway enforces and, where the upstream lists
    none, the standard search parameters."""
    out = []
    for res in resources:
        res = dict(res)
        rtype = res.get("type", "")
        if rtype in GENOMIC_PROFILES:
            have = list(res.get("supportedProfile") or [])
            res["supportedProfile"] = have + [GR + p for p in GENOMIC_PROFILES[rtype] if GR + p not in have]
        if rtype in STANDARD_SEARCH and not res.get("searchParam"):
            res["searchParam"] = [{"name": n, "definition": _SP + d, "type": t} for n, d, t in STANDARD_SEARCH[rtype]]
        out.append(res)
    return out


async def metadata_route(request: Request) -> Response:
    """The gateway's CapabilityStatement, announcing the upstream's resources and interactions as its own."""
    own = orjson.loads((await own_metadata(request)).body)
    state = request.app.state
    cap, fetched = getattr(state, "upstream_cap", (None, 0.0))
    if cap is None or time.monotonic() - fetched > _CAP_TTL:
        try:
            cap = await state.upstream.capabilities()
            state.upstream_cap = (cap, time.monotonic())
        except (UpstreamUnavailable, UpstreamRejected) as e:
            log.warning("upstream CapabilityStatement unavailable (%s); announcing the gateway's own", e)
    rest = own["rest"][0]
    if cap:
        up = next((r for r in cap.get("rest", []) if r.get("mode") == "server"), {})
        rest["resource"] = _announce_genomics(up.get("resource", []))
        rest["interaction"] = up.get("interaction", [])
        names = {o["name"] for o in rest.get("operation", [])}
        rest["operation"] = [*rest.get("operation", []), *(o for o in up.get("operation", [])
                                                             if o.get("name") not in names)]
        rest["documentation"] += (" Reads and writes of these resources are passed to an upstream FHIR server; "
                                  "writes are validated against the IG profiles first (422 on errors).")
    body = orjson.dumps(own).replace(state.upstream.base_url.encode(), _base(request).encode())
    return FHIRResponse(body)


def routes(settings: Settings) -> tuple[list[Route], list[Route]]:
    """(routes to place before the gateway's own, routes to place after them); none without an upstream."""
    if not settings.upstream_url:
        return [], []
    first = [Route("/fhir/metadata", metadata_route, methods=["GET"])]
    last = [
        Route("/fhir", write_route, methods=["POST"]),
        Route("/fhir/{type:str}", read_route, methods=["GET"]),
        Route("/fhir/{type:str}", write_route, methods=["POST"]),
        Route("/fhir/{type:str}/{rest:path}", read_route, methods=["GET"]),
        Route("/fhir/{type:str}/{id:path}", write_route, methods=["PUT"]),  # any depth: bad paths get 400, not 405
    ]
    return first, last
