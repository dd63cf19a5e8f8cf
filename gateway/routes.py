"""HTTP routes: POST /fhir/$convert, GET /fhir/metadata, GET /healthz."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import __version__, bulk, stream
from gateway.auth.discovery import security
from gateway.convert import ONE_DOCUMENT, cached, conversion_key, convert
from gateway.fhir_input import parameters
from gateway.formats import (
    FHIR_NDJSON,
    GENERIC_MEDIA_TYPES,
    Converted,
    UnsupportedFormat,
    conversions,
    format_params,
    media_source,
    resolve,
)
from gateway.formats import (
    Request as ConvertRequest,
)
from gateway.responses import FHIRResponse, outcome_response
from gateway.sandbox import Cancelled, run_job
from gateway.terminology_routes import routes as terminology_routes
from mappers.exceptions import ParseError
from mappers.toolkit.registry import HUB, ConvertOptions, get, registry

log = logging.getLogger("helixgate.http")


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds the limit of {limit} bytes (HELIXGATE_MAX_REQUEST_BYTES)")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with TooLarge as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _parameters_input(doc: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A FHIR Parameters invocation: `input` (valueString, valueBase64Binary or a resource) plus codes."""
    data: bytes | None = None
    params: dict[str, str] = {}
    for p in parameters(doc):
        name = p.get("name")
        if name == "input":
            if "valueString" in p:
                data = p["valueString"].encode("utf-8")
            elif "valueBase64Binary" in p:
                try:
                    data = base64.b64decode(p["valueBase64Binary"], validate=True)
                except (binascii.Error, ValueError):
                    raise ParseError("Parameters.input valueBase64Binary is not valid base64",
                                     details="bad-base64") from None
            elif "resource" in p:
                try:
                    data = orjson.dumps(p["resource"])
                except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels)
                    raise ParseError("Parameters.input resource is nested too deeply to convert",
                                     details="input-too-deep", expression="Parameters.parameter.resource") from None
        elif isinstance(name, str):  # source, target, bundleType, allowInvalid and format options
            value = next((p[k] for k in ("valueCode", "valueString", "valueBoolean") if k in p), "")
            params[name] = str(value).lower() if isinstance(value, bool) else str(value)
    if data is None:
        raise ParseError("Parameters has no 'input' parameter (valueString, valueBase64Binary or resource)",
                         details="missing-input")
    return data, params


async def convert_route(request: Request) -> Response:
    settings = request.app.state.settings
    body = await read_body(request, settings.max_request_bytes)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if bulk.wants_async(request, body, media):  # Prefer: respond-async, NDJSON or many documents: a bulk job
        return await bulk.kickoff(request, body, media)
    q = request.query_params
    given = dict(q.items())
    as_parameters = False
    if media_source(media) == HUB and body.lstrip()[:1] == b"{":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ParseError(f"request body is not valid JSON: {e}", details="bad-json") from None
        if isinstance(doc, dict) and doc.get("resourceType") == "Parameters":
            as_parameters = True
            body, params = _parameters_input(doc)
            given.update(params)
            media = ""
    if media not in GENERIC_MEDIA_TYPES and media_source(media, body) is None:
        raise UnsupportedFormat(f"Content-Type {media!r} is not a format helixgate converts; name the format with "
                                "?source= or use a media type listed at /fhir/metadata")
    source = given.get("source") or media_source(media, body)
    bundle_type = given.get("bundleType", "collection")
    if bundle_type not in ("collection", "transaction"):
        return outcome_response(400, "value", "bad-bundle-type",
                                f"bundleType {bundle_type!r} must be 'collection' or 'transaction'")
    if not body.strip():
        raise ParseError("the request body is empty", details="empty-input")
    src, tgt = resolve(body, source, given.get("target"))
    options = ConvertOptions(bundle_type, settings.v2_timezone, None, format_params(src, tgt, given.items()))
    req = ConvertRequest(src, tgt, options, given.get("allowInvalid", "").lower() in ("1", "true", "yes"))
    if stream.wants(request, src, tgt):
        return await stream.response(body, req, request)
    started = time.perf_counter()
    cache = request.app.state.cache
    key: str | None = None
    result: Converted | None = None
    if get(src).split:
        # A format with batch files (several documents: NDJSON, a line each). Splitting reads the whole input, so
        # it runs in the sandbox; the cache is asked first, under a key only single documents are cached under,
        # so a cached answer costs no sandbox round trip.
        key = await conversion_key(body, req, ONE_DOCUMENT)
        result = await cached(key, req, cache)
        if result is None:
            batch = await _job(request, ("batch", body, req, settings.max_batch_documents))
            if isinstance(batch, Response):
                return batch
            if batch is not None:
                headers = {"X-Batch": f"documents={batch.documents}; converted={batch.documents - batch.failed}; "
                                      f"failed={batch.failed}", "X-Source-Format": src}
                return Response(batch.body, media_type=FHIR_NDJSON, headers=headers)
    was_cached = result is not None
    if result is None:
        try:
            result, was_cached = await convert(body, req, cache, runner=lambda job: run_job(request, job), key=key)
        except Cancelled:
            return _abandoned(src, tgt)
    log.info("convert %s->%s bytes=%d cached=%s ms=%.1f", src, tgt, len(body), was_cached,
             (time.perf_counter() - started) * 1000)
    issues = result.outcome.get("issue", [])
    validation = sum(1 for i in issues if i["details"]["coding"][0]["code"] in ("output-warning", "invalid-output"))
    counts = {s: sum(1 for i in issues if i["severity"] == s) for s in ("warning", "information")}
    report = (f"warnings={counts['warning'] - validation}; information={counts['information']}; "
              f"validation={validation}")  # the mapper's own findings, then the validator's on the output
    headers = {"X-Conversion-Report": report, "X-Source-Format": src,  # what was detected, when not named
               "X-Cache": "hit" if was_cached else "miss"}
    if as_parameters:
        output: dict[str, Any] = ({"name": "output", "resource": orjson.loads(result.body)} if tgt == HUB
                                  else {"name": "output", "valueString": result.body.decode()})
        doc = {"resourceType": "Parameters", "parameter": [output, {"name": "outcome", "resource": result.outcome}]}
        return FHIRResponse(doc, headers=headers)
    return Response(result.body, media_type=result.media_type, headers=headers)


async def _job(request: Request, job: tuple[Any, ...]) -> Any:
    """run_job, with a client that went away answered 499 (nobody reads it; the work was stopped)."""
    try:
        return await run_job(request, job)
    except Cancelled:
        return _abandoned(job[2].source, job[2].target)


def _abandoned(source: str, target: str) -> Response:
    log.info("convert %s->%s abandoned by the client; its work was stopped", source, target)
    return Response(status_code=499)


async def metadata(request: Request) -> Response:
    base = str(request.base_url).rstrip("/") + "/fhir"
    doc = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "kind": "instance",
        "software": {"name": "helixgate", "version": __version__},
        "implementation": {"description": "helixgate FHIR interoperability gateway", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json", "application/fhir+xml", "xml"],
        "rest": [{
            "mode": "server",
            "documentation": "Converts national and exchange formats to and from FHIR R4 Bundles of the "
                             "Genomics Reporting IG 3.0.0, and validates FHIR resources. Conversions: "
                             + conversions(),
            "operation": [{
                "name": "convert",
                "definition": "http://hl7.org/fhir/OperationDefinition/Resource-convert",
                "documentation": "POST a document (its Content-Type, or ?source=) to get it converted; ?target= "
                                 "picks the output (default FHIR; name it for FHIR input); "
                                 "?bundleType=collection|transaction; ?allowInvalid=true returns output that "
                                 "fails validation with its errors (default: 422). A Parameters body (input, "
                                 "source, target, bundleType, format options) returns Parameters with output and "
                                 "outcome (the conversion report). Formats: " + _formats_doc(),
            }, {
                "name": "validate",
                "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                "documentation": "POST /fhir/$validate or /fhir/{type}/$validate (a resource, or Parameters with "
                                 "resource and profile): 200 with the OperationOutcome whenever validation ran.",
            }, {
                "name": "translate",
                "definition": "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
                "documentation": "GET/POST /fhir/ConceptMap/$translate over the shipped ConceptMaps.",
            }],
        }],
    }
    doc["rest"][0]["security"] = await security(request)  # who may call what: gateway.auth.table
    from gateway.exchange.http import capability

    doc["rest"][0]["operation"] += capability(request)  # $exchange, when exchange routes are configured
    return FHIRResponse(doc)


def _formats_doc() -> str:
    parts = []
    for f in registry().values():
        opts = "".join(f"; ?{o.name}=" + ("|".join(o.choices) if o.choices else "") for o in f.options)
        media = f"; {', '.join(f.media_types)}" if f.media_types else ""  # a writer only (fhir-xml, ips) reads none
        parts.append(f"{f.name} ({f.title}{media}{opts})")
    return ", ".join(parts)


async def healthz(request: Request) -> Response:
    cache = request.app.state.cache
    return FHIRResponse({"status": "ok", "version": __version__, "cache": cache.kind, "cacheStatus": cache.status()},
                        media_type="application/json")


routes = [
    Route("/fhir/$convert", convert_route, methods=["POST"]),
    Route("/fhir/metadata", metadata, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    *terminology_routes,
]
