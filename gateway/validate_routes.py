"""POST /fhir/$validate and /fhir/{type}/$validate: always 200 with the OperationOutcome when validation ran
(FHIR R4 Resource-validate); 4xx/5xx only when it could not run.

The body is read and validated in a sandbox process (gateway.sandbox) under the request's time and memory budget;
verdicts are cached by the body, its media type, the profiles asked for and the definitions' fingerprint."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import metrics
from gateway.cache import cache_key
from gateway.responses import FHIRResponse
from gateway.routes import read_body
from gateway.sandbox import Cancelled, definitions_fingerprint, run_job
from gateway.validate import VALIDATION_PREFIX
from mappers.exceptions import ParseError


async def validate_route(request: Request) -> Response:
    body = await read_body(request, request.app.state.settings.max_request_bytes)
    if not body.strip():
        raise ParseError("the request body is empty: send a resource or a Parameters with 'resource'",
                         details="empty-input")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    profiles = tuple(dict.fromkeys(request.query_params.getlist("profile")))
    rtype = request.path_params.get("type")
    cache = request.app.state.cache

    def key(fingerprint: str | None) -> str | None:
        return cache_key(body, media, rtype or "", fingerprint, *profiles,
                         prefix=VALIDATION_PREFIX) if fingerprint else None

    before = key(await definitions_fingerprint(request))  # None until the first sandbox process has started
    hit = await cache.get(before) if before else None
    if hit is not None:
        outcome = orjson.loads(hit)
        metrics.issues("validate", outcome)
        return FHIRResponse(outcome, headers={"X-Cache": "hit"})
    try:
        outcome = await run_job(request, ("validate", body, media, profiles, rtype))
    except Cancelled:
        return Response(status_code=499)
    metrics.issues("validate", outcome)
    after = before or key(await definitions_fingerprint(request))
    if after:
        await cache.set(after, orjson.dumps(outcome))
    return FHIRResponse(outcome, headers={"X-Cache": "miss"})


routes = [
    Route("/fhir/$validate", validate_route, methods=["POST"]),
    Route("/fhir/{type:str}/$validate", validate_route, methods=["POST"]),
]
