"""HTTP routes: POST /fhir/$convert, GET /fhir/metadata, GET /healthz."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway import __version__, bulk
from gateway.convert import convert
from gateway.fhir_input import parameters
from gateway.formats import (
    CONVERTERS,
    DEFAULT_TARGET,
    FHIR_NDJSON,
    GENERIC_MEDIA_TYPES,
    MEDIA_TYPES,
    VCF_PARAMS,
    UnsupportedFormat,
    resolve,
    vcf_options,
)
from gateway.formats import (
    Request as ConvertRequest,
)
from gateway.responses import FHIRResponse, outcome_response
from gateway.terminology_routes import routes as terminology_routes
from mappers import vcf
from mappers.exceptions import ParseError

log = logging.getLogger("helixgate.http")
_THREAD_THRESHOLD = 64 * 1024  # convert larger bodies off the event loop


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
                data = orjson.dumps(p["resource"])
        elif name in ("source", "target", "bundleType"):
            params[name] = p.get("valueCode") or p.get("valueString") or ""
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
    source, target, bundle_type = q.get("source"), q.get("target"), q.get("bundleType", "collection")
    as_parameters = False
    if media in MEDIA_TYPES and MEDIA_TYPES[media] == "fhir" and body.lstrip()[:1] == b"{":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ParseError(f"request body is not valid JSON: {e}", details="bad-json") from None
        if isinstance(doc, dict) and doc.get("resourceType") == "Parameters":
            as_parameters = True
            body, params = _parameters_input(doc)
            source = params.get("source") or source
            target = params.get("target") or target
            bundle_type = params.get("bundleType") or bundle_type
            media = ""
    if media not in GENERIC_MEDIA_TYPES and media not in MEDIA_TYPES:
        raise UnsupportedFormat(f"Content-Type {media!r} is not a format helixgate converts; use one of "
                                f"{', '.join(sorted(MEDIA_TYPES))} or name it with ?source=")
    if source is None and media in MEDIA_TYPES:
        source = MEDIA_TYPES[media]
    if bundle_type not in ("collection", "transaction"):
        return outcome_response(400, "value", "bad-bundle-type",
                                f"bundleType {bundle_type!r} must be 'collection' or 'transaction'")
    if not body.strip():
        raise ParseError("the request body is empty", details="empty-input")
    src, tgt = resolve(body, source, target)
    params = tuple(sorted((k, v) for k, v in q.items() if k in VCF_PARAMS)) if src == "vcf" else ()
    req = ConvertRequest(src, tgt, bundle_type, settings.v2_timezone, datetime.now(UTC), params)
    if src == "vcf" and tgt == "fhir":
        vcf_options(req)  # a bad option is a 400 before any work
        if FHIR_NDJSON in request.headers.get("accept", ""):
            return await _vcf_ndjson(body, req)
    started = time.perf_counter()
    result, cached = await convert(body, req, request.app.state.cache, offload=len(body) > _THREAD_THRESHOLD)
    log.info("convert %s->%s bytes=%d cached=%s ms=%.1f", src, tgt, len(body), cached,
             (time.perf_counter() - started) * 1000)
    issues = result.outcome.get("issue", [])
    counts = {s: sum(1 for i in issues if i["severity"] == s) for s in ("warning", "information")}
    headers = {"X-Conversion-Report": f"warnings={counts['warning']}; information={counts['information']}",
               "X-Cache": "hit" if cached else "miss"}
    if as_parameters:
        output: dict[str, Any] = ({"name": "output", "resource": orjson.loads(result.body)} if tgt == "fhir"
                                  else {"name": "output", "valueString": result.body.decode()})
        doc = {"resourceType": "Parameters", "parameter": [output, {"name": "outcome", "resource": result.outcome}]}
        return FHIRResponse(doc, headers=headers)
    return Response(result.body, media_type=result.media_type, headers=headers)


async def _vcf_ndjson(body: bytes, req: ConvertRequest) -> Response:
    """VCF → NDJSON, streamed and never cached. The whole body is checked first (off the event loop), so bad
    input is a 400 OperationOutcome rather than a stream cut short."""
    options = vcf_options(req)

    def check() -> None:
        vcf.Converter(vcf.iter_lines([body]), options).validate()

    await run_in_threadpool(check)
    conv = vcf.Converter(vcf.iter_lines([body]), options, relative_refs=True)

    def chunks() -> Iterator[bytes]:
        buf: list[bytes] = []
        size = 0
        for piece in vcf.ndjson(conv):  # one thread hop per ~64 KiB, not per resource
            buf.append(piece)
            size += len(piece)
            if size >= 1 << 16:
                yield b"".join(buf)
                buf, size = [], 0
        if buf:
            yield b"".join(buf)
        log.info("convert vcf->fhir ndjson bytes=%d %s", len(body), conv.summary.text())

    return StreamingResponse(chunks(), media_type=FHIR_NDJSON, headers={"X-Cache": "bypass"})


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
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Converts national and exchange formats to and from FHIR R4 Bundles of the "
                             "Genomics Reporting IG 3.0.0, and validates FHIR resources. Conversions: "
                             + ", ".join(f"{s}->{t}" for s, t in CONVERTERS),
            "operation": [{
                "name": "convert",
                "definition": "http://hl7.org/fhir/OperationDefinition/Resource-convert",
                "documentation": "POST a message (Content-Type x-application/hl7-v2+er7 or application/fhir+json, "
                                 "or ?source=) to get it converted; ?target= picks the output "
                                 f"(defaults: {DEFAULT_TARGET}); ?bundleType=collection|transaction. A Parameters "
                                 "body (input, source, target, bundleType) returns Parameters with output and "
                                 "outcome (the conversion report).",
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
    return FHIRResponse(doc)


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
