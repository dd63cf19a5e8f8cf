"""POST /fhir/$validate and /fhir/{type}/$validate: always 200 with the OperationOutcome when validation ran
(FHIR R4 Resource-validate); 4xx/5xx only when it could not run."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.fhir_input import parameters
from gateway.responses import FHIRResponse, outcome_response
from gateway.routes import read_body
from gateway.validate import app_validator, read_resource, validate
from mappers.exceptions import ParseError
from profiles.packages import PackageError


def _from_parameters(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The `resource` and `profile` parameters of Resource-validate (FHIR R4 OperationDefinition
    Resource-validate). Raises ParseError, naming the parameter, for content of the wrong type."""
    resource, profiles = None, []
    for i, p in enumerate(parameters(doc)):
        where = f"Parameters.parameter[{i}]"
        if p.get("name") == "resource":
            resource = p.get("resource")
            if resource is not None and not isinstance(resource, dict):
                raise ParseError(f"{where}.resource must be a resource (a JSON object)", details="bad-parameters",
                                 expression=f"{where}.resource")
            if resource is None and "valueString" in p:
                resource = read_resource(p["valueString"].encode("utf-8", "surrogatepass"))
            if resource is None and "valueBase64Binary" in p:
                try:
                    # white space is allowed in a base64Binary (its R4 regex), any other stray character is not
                    data = base64.b64decode("".join(p["valueBase64Binary"].split()), validate=True)
                except (binascii.Error, ValueError):
                    raise ParseError(f"{where}.valueBase64Binary is not base64", details="bad-parameters",
                                     expression=f"{where}.valueBase64Binary") from None
                resource = read_resource(data)
        elif p.get("name") == "profile":
            key = next((k for k in ("valueUri", "valueCanonical", "valueString") if k in p), None)
            url = p.get(key) if key else None
            if key and not isinstance(url, str):
                raise ParseError(f"{where}.{key} must be a string (a profile's canonical URL)",
                                 details="bad-parameters", expression=f"{where}.{key}")
            if url:
                profiles.append(url)
    if not isinstance(resource, dict):
        raise ParseError("Parameters has no 'resource' parameter holding the resource to validate",
                         details="missing-resource")
    return resource, profiles


async def validate_route(request: Request) -> Response:
    body = await read_body(request, request.app.state.settings.max_request_bytes)
    if not body.strip():
        raise ParseError("the request body is empty: send a resource or a Parameters with 'resource'",
                         details="empty-input")
    doc = read_resource(body, request.headers.get("content-type", ""))
    profiles = list(request.query_params.getlist("profile"))
    if doc.get("resourceType") == "Parameters" and any(p.get("name") == "resource" for p in parameters(doc)):
        doc, more = _from_parameters(doc)
        profiles += more
    try:
        validator = await app_validator(request)
    except PackageError as e:
        return outcome_response(503, "transient", "packages-missing", f"validation cannot run: {e}")
    result = await validate(doc, tuple(dict.fromkeys(profiles)), validator, request.app.state.cache)
    outcome = result.outcome
    rtype = request.path_params.get("type")
    if rtype and doc.get("resourceType") != rtype:
        mismatch = {"severity": "error", "code": "invalid", "details": {
            "text": f"The resource is a {doc.get('resourceType')}, but was posted to {rtype}/$validate"}}
        kept = [i for i in outcome["issue"] if i["details"].get("coding", [{}])[0].get("code") != "ok"]
        outcome = {**outcome, "issue": [mismatch, *kept]}
    return FHIRResponse(outcome, headers={"X-Cache": "hit" if result.cached else "miss"})


routes = [
    Route("/fhir/$validate", validate_route, methods=["POST"]),
    Route("/fhir/{type:str}/$validate", validate_route, methods=["POST"]),
]
