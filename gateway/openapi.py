"""The OpenAPI 3.1 description of the gateway's own HTTP API, served at GET /openapi.json and committed as
docs/openapi.json (`python scripts/openapi.py` writes it; a test checks that the two are equal).

It covers every route but the FHIR-generic ones (`generic()`: the validating facade's REST interactions, which the
upstream server's CapabilityStatement and the FHIR specification describe — /fhir/metadata stays the FHIR
description of the whole). Each route is one `Operation` in `operations()`; a route added to the app needs an entry
there, else tests/gateway/test_openapi.py fails naming it. The format-dependent parts (media types,
?source=/?target= names, format options) are read from the format registry, so a new format package shows up here
by itself — and the committed file must then be written again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import __version__

OPENAPI_JSON = "application/json"
FHIR_JSON = "application/fhir+json"


def generic(path: str) -> bool:
    """Whether a route is a FHIR REST interaction (the facade's, forwarded to the upstream server: the base, a type,
    an instance, history, _search), described by FHIR itself and the upstream's CapabilityStatement rather than here.
    Operations ($…) are not: each is described."""
    path = template(path)
    return "$" not in path and (path in ("/fhir", "/fhir/") or path.startswith(("/fhir/{", "/fhir/_")))


# Headers that come with those answers (RFC 6750 §3 for 401, RFC 6585 §4 for 429): name → (what, always there).
ACCESS_HEADERS = {401: {"WWW-Authenticate": ("a challenge per accepted scheme (Bearer, ApiKey)", True)},
                  429: {"Retry-After": ("seconds until the client's bucket has a token again", True)}}
# Statuses every operation can answer with an OperationOutcome: the access checks' and the rate limiter's.
ACCESS_ERRORS = {401: "no or an invalid credential (when access control is on)",
                 403: "the credential does not grant this operation",
                 429: "the client's rate limit for this access class is reached"}


def template(path: str) -> str:
    """A Starlette path template in OpenAPI's form: `{type:str}` → `{type}`."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", r"{\1}", path)


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    id: str
    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None  # media type → schema
    body_required: bool = False
    responses: dict[int, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)  # status → (what, content)
    errors: dict[int, str] = field(default_factory=dict)  # status → when (an OperationOutcome body)
    public: bool = False  # no credential needed
    scope: str | None = None  # the operation scope that grants it
    headers: dict[int, dict[str, tuple[str, bool]]] = field(default_factory=dict)  # status → name → (what, always)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _outcome() -> dict[str, Any]:
    return {FHIR_JSON: {"schema": _ref("OperationOutcome")}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}, **extra}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}}


def _formats() -> tuple[list[str], list[str], dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """From the registry: readable and writable format names, request bodies by media type, the format options as
    query parameters, and the $convert 200 responses by media type."""
    from mappers.toolkit.registry import registry

    fmts = list(registry().values())
    reads = [f.name for f in fmts if f.to_fhir]
    writes = [f.name for f in fmts if f.from_fhir]
    bodies: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    options: dict[str, dict[str, Any]] = {}
    for f in fmts:
        for media in f.media_types if f.to_fhir else ():
            if media.endswith("json") or "json+" in media:
                bodies.setdefault(media, {"schema": {"type": "object", "description": f"{f.title}"}})
            else:
                bodies.setdefault(media, {"schema": {"type": "string", "description": f"{f.title}"}})
        if f.from_fhir:
            media = f.media_type.split(";")[0].strip()
            json = media.endswith("json")
            outputs.setdefault(media, {"schema": {"type": "object"} if json else {"type": "string"}})
        for o in f.options:
            known = options.setdefault(o.name, {"choices": set(o.choices), "formats": []})
            known["choices"] |= set(o.choices)
            known["formats"].append(f.name)
    for media in ("text/plain", "application/octet-stream"):
        bodies.setdefault(media, {"schema": {"type": "string", "description": "any format: name it with ?source= "
                                             "or let it be detected"}})
    bodies.setdefault("application/fhir+ndjson", {"schema": {"type": "string", "description": "one document per "
                                                  "line: a bulk job (202)"}})
    params = []
    for name, o in sorted(options.items()):
        schema: dict[str, Any] = {"type": "string"}
        if o["choices"]:
            schema["enum"] = sorted(o["choices"])
        params.append(_query(name, f"format option of {', '.join(o['formats'])}", schema))
    outputs.setdefault("application/fhir+ndjson", {"schema": {"type": "string"}})  # a batch file's outputs
    return reads, writes, bodies, params, outputs


def operations() -> list[Operation]:
    reads, writes, bodies, format_params, outputs = _formats()
    bodies = {**bodies, FHIR_JSON: {"schema": {"oneOf": [_ref("Parameters"), {"type": "object"}]}}}
    validate_body = {FHIR_JSON: {"schema": {"type": "object"}}, "application/fhir+xml": {"schema": {"type": "string"}}}
    translate_params = (
        _query("url", "the ConceptMap's canonical URL"), _query("system", "the code's system"),
        _query("code", "the code to translate"), _query("target", "the target value set (the map's targetUri)"),
        _query("targetsystem", "the target code system"),
        _query("reverse", "translate from target to source", {"type": "boolean"}),
    )
    translate_body = {FHIR_JSON: {"schema": _ref("Parameters")},
                      "application/x-www-form-urlencoded": {"schema": {"type": "object",
                                                                       "additionalProperties": {"type": "string"}}}}
    translate = dict(tags=("operations",), scope="system/$translate",
                     responses={200: ("Parameters: result, message, one match per translation",
                                      {FHIR_JSON: {"schema": _ref("Parameters")}})},
                     errors={400: "bad parameters", 404: "no such ConceptMap", 413: "the body is too large"})
    job = _path("job", "the job id from the kick-off's Content-Location")
    return [
        Operation("/healthz", "GET", "healthz", "Liveness and the cache's state", tags=("service",), public=True,
                  responses={200: ("up", {OPENAPI_JSON: {"schema": _ref("Health")}})}),
        Operation("/openapi.json", "GET", "openapi", "This document", tags=("service",), public=True,
                  responses={200: ("the OpenAPI 3.1 document", {OPENAPI_JSON: {"schema": {"type": "object"}}})}),
        Operation("/metrics", "GET", "metrics", "Prometheus metrics (text exposition format)", tags=("service",),
                  scope="system/$metrics", description="Requests, conversions, validation issues, cache, MLLP, "
                  "streams, upstream: README 'Operations'.",
                  responses={200: ("the metrics", {"text/plain": {"schema": {"type": "string"}}})}),
        Operation("/fhir/metadata", "GET", "capabilities", "The CapabilityStatement (the FHIR description)",
                  tags=("fhir",), public=True,
                  responses={200: ("CapabilityStatement", {FHIR_JSON: {"schema": _ref("Resource")}})}),
        *(Operation(p, "GET", f"smartConfiguration{i}", "SMART App Launch configuration (the authorization "
                    "server's endpoints and the scopes the gateway knows)", tags=("auth",), public=True,
                    responses={200: ("the configuration", {OPENAPI_JSON: {"schema": {"type": "object"}}})})
          for i, p in enumerate(("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"))),
        Operation("/fhir/$convert", "POST", "convert", "Convert a message or document (FHIR $convert)",
                  description="The body is the input: its Content-Type names the source format (or ?source=, or "
                  "detection for text/plain and application/octet-stream), ?target= the output (FHIR by "
                  "default). A Parameters body (input, source, target, bundleType, options) answers Parameters "
                  "(output, outcome). NDJSON, or Prefer: respond-async, starts a bulk job (202). The conversion "
                  "report is in X-Conversion-Report; output that fails validation is refused (422) unless "
                  "?allowInvalid=true.",
                  tags=("operations",), scope="system/$convert",
                  parameters=(_query("source", "the input's format (default: from Content-Type, else detected)",
                                     {"type": "string", "enum": reads}),
                              _query("target", "the output's format", {"type": "string", "enum": writes}),
                              _query("bundleType", "the FHIR Bundle's type",
                                     {"type": "string", "enum": ["collection", "transaction"]}),
                              _query("allowInvalid", "return output that fails validation, with its errors",
                                     {"type": "boolean"}),
                              *format_params,
                              {"name": "Prefer", "in": "header", "required": False,
                               "description": "respond-async: run as a bulk job",
                               "schema": {"type": "string", "enum": ["respond-async"]}}),
                  body=bodies, body_required=True,
                  responses={200: ("the converted output (X-Conversion-Report, X-Cache)", outputs),
                             202: ("a bulk job was started: poll Content-Location", None)},
                  headers={200: {"X-Conversion-Report": ("counts of the report's issues: warnings, information, "
                                                         "validation (one document)", False),
                                 "X-Cache": ("hit or miss (one document)", False),
                                 "X-Batch": ("documents, converted, failed (a batch file)", False)},
                           202: {"Content-Location": ("the job's status URL", True)}},
                  errors={400: "the input cannot be read, or a parameter is wrong",
                          404: "a ConceptMap or resource the input names is unknown",
                          406: "the Accept/_format asked for cannot be written",
                          413: "the body is over HELIXGATE_MAX_REQUEST_BYTES",
                          415: "the Content-Type names no format helixgate reads",
                          422: "the output fails validation, or the input is too costly or unsupported",
                          501: "a bulk job was asked for, and the gateway has no Redis (HELIXGATE_REDIS_URL)"}),
        *(Operation(p, "POST", oid, "Validate a FHIR resource (FHIR $validate)", tags=("operations",),
                    scope="system/$validate",
                    description="200 with the OperationOutcome whenever validation ran, whatever it found.",
                    parameters=(*extra, _query("profile", "a profile to validate against as well",
                                               {"type": "array", "items": {"type": "string"}},
                                               style="form", explode=True)),
                    body=validate_body, body_required=True,
                    responses={200: ("the validation outcome", _outcome())},
                    errors={400: "the body is not a resource", 406: "the Accept/_format asked for cannot be written",
                            413: "the body is too large", 422: "the resource is too costly to validate"})
          for p, oid, extra in (("/fhir/$validate", "validate", ()),
                                ("/fhir/{type}/$validate", "validateType", (_path("type", "a resource type"),)))),
        Operation("/fhir/{type}/{id}/$validate", "POST", "validateInstance",
                  "Validate a resource as it would be stored at this id (FHIR $validate on an instance)",
                  tags=("operations",), scope="system/$validate and {type}.r",
                  description="With HELIXGATE_UPSTREAM_URL (the validating facade): the posted resource (or "
                  "Parameters.resource), or with no body the resource stored upstream at this id, validated; 200 "
                  "with the OperationOutcome whenever validation ran.",
                  parameters=(_path("type", "a resource type"), _path("id", "the resource's id"),
                              _query("profile", "a profile to validate against as well",
                                     {"type": "array", "items": {"type": "string"}}, style="form", explode=True)),
                  body=validate_body,
                  responses={200: ("the validation outcome", _outcome())},
                  errors={400: "the body is not a resource", 404: "no such resource upstream",
                          413: "the body is too large", 422: "the resource is too costly to validate",
                          502: "the upstream server failed", 503: "the upstream server is unavailable (circuit "
                          "open)", 504: "the upstream server did not answer in time"}),
        *(Operation(p, m, f"translate{m.title()}{i}", "Translate a code through the shipped ConceptMaps "
                    "(FHIR ConceptMap/$translate)", parameters=(*extra, *translate_params),
                    body=translate_body if m == "POST" else None, **translate)  # type: ignore[arg-type]
          for i, (p, extra) in enumerate((("/fhir/ConceptMap/$translate", ()),
                                          ("/fhir/ConceptMap/{id}/$translate", (_path("id", "a ConceptMap id"),))))
          for m in ("GET", "POST")),
        Operation("/fhir/$exchange", "POST", "exchange", "A cross-border transfer under a configured route",
                  description="A Parameters body: route, purpose, content (the document), consent…, mechanism…, "
                  "legalBasis, filing, dryRun. Answers Parameters (decision, output, outcome, change…, provenance, "
                  "auditEvent); a refusal is a 403 OperationOutcome naming the rule and what would satisfy it. "
                  "README 'Cross-border exchange'.",
                  tags=("operations",), scope="system/$exchange",
                  body={FHIR_JSON: {"schema": _ref("Parameters")}}, body_required=True,
                  responses={200: ("the transfer's Parameters", {FHIR_JSON: {"schema": _ref("Parameters")}})},
                  errors={400: "the Parameters are incomplete, or the content cannot be read",
                          403: "a rule of the route refuses the transfer (or the credential does not grant it)",
                          406: "the Accept/_format asked for cannot be written",
                          413: "the body is too large", 415: "the content's format is not one helixgate reads",
                          422: "the content does not convert, or is invalid after the route's rules",
                          501: "no exchange routes are configured (HELIXGATE_EXCHANGE_ROUTES)"}),
        Operation("/fhir/bulk/{job}", "GET", "bulkStatus", "A bulk $convert job's status, then its manifest",
                  tags=("bulk",), scope="system/$convert", parameters=(job,),
                  responses={200: ("done: the manifest", {OPENAPI_JSON: {"schema": {"type": "object"}}}),
                             202: ("in progress (X-Progress)", None)},
                  headers={202: {"X-Progress": ("documents done of all, or the job's state", True),
                                 "Retry-After": ("seconds to wait before polling again", True)}},
                  errors={404: "no such job (or not the caller's)"}),
        Operation("/fhir/bulk/{job}", "DELETE", "bulkCancel", "Cancel a bulk job and delete its files",
                  tags=("bulk",), scope="system/$convert", parameters=(job,),
                  responses={202: ("cancelled", None)}, errors={404: "no such job (or not the caller's)"}),
        Operation("/fhir/bulk/{job}/{file}", "GET", "bulkFile", "One output or error file of a finished job",
                  tags=("bulk",), scope="system/$convert",
                  parameters=(job, _path("file", "the file name from the manifest")),
                  responses={200: ("NDJSON", {"application/fhir+ndjson": {"schema": {"type": "string"}}})},
                  errors={404: "no such job or file"}),
        Operation("/playground", "GET", "playgroundRedirect", "The web playground (redirects to /playground/)",
                  tags=("playground",), public=True, responses={308: ("to /playground/", None)}),
        Operation("/playground/", "GET", "playground", "The web playground: convert, validate, translate in a page",
                  tags=("playground",), public=True, description="A static page (no data) under a strict "
                  "Content-Security-Policy; the API calls it makes carry the caller's credential.",
                  responses={200: ("the page", {"text/html": {"schema": {"type": "string"}}})}),
        Operation("/playground/catalogue.json", "GET", "playgroundCatalogue", "What the playground offers: the "
                  "registered formats with their options, the shipped ConceptMaps, the installed profiles",
                  tags=("playground",), public=True,
                  responses={200: ("the catalogue", {OPENAPI_JSON: {"schema": {"type": "object"}}})}),
        Operation("/playground/{name}", "GET", "playgroundAsset", "A static file of the page (app.js, app.css)",
                  tags=("playground",), public=True, parameters=(_path("name", "app.js or app.css"),),
                  responses={200: ("the file", {"text/javascript": {"schema": {"type": "string"}},
                                                "text/css": {"schema": {"type": "string"}}})},
                  errors={404: "no such file"}),
    ]


COMPONENTS: dict[str, Any] = {
    "schemas": {
        "OperationOutcome": {
            "type": "object", "required": ["resourceType", "issue"],
            "description": "FHIR R4 OperationOutcome: every error body, and $validate's answer",
            "properties": {
                "resourceType": {"const": "OperationOutcome"},
                "issue": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["severity", "code"],
                    "properties": {
                        "severity": {"enum": ["fatal", "error", "warning", "information"]},
                        "code": {"type": "string"},
                        "details": {"type": "object"},
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                    }}},
            }},
        "Parameters": {
            "type": "object", "required": ["resourceType"],
            "properties": {"resourceType": {"const": "Parameters"},
                           "parameter": {"type": "array", "items": {
                               "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
        "Resource": {"type": "object", "required": ["resourceType"],
                     "properties": {"resourceType": {"type": "string"}}},
        "Health": {"type": "object", "required": ["status", "version", "cache"],
                   "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                                  "cache": {"type": "string"}, "cacheStatus": {"type": "string"}}},
    },
    "securitySchemes": {
        "apiKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                   "description": "'ApiKey <key>' (helixgate keys create)"},
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "an OAuth 2.0 access token (SMART scopes)"},
    },
}


FHIR_XML = "application/fhir+xml"
# `_format` (overriding Accept) on /fhir: a FHIR JSON answer is written as FHIR XML when asked (gateway.negotiation)
FORMAT_PARAM = _query("_format", "the response's FHIR format (overrides Accept): a FHIR JSON answer is written as "
                      "FHIR XML when asked", {"type": "string", "enum": ["json", "xml", FHIR_JSON, FHIR_XML]})


def _with_xml(content: dict[str, Any] | None) -> dict[str, Any] | None:
    """A /fhir response's content, with FHIR XML beside FHIR JSON (the same resource, negotiated)."""
    if not content or FHIR_JSON not in content or FHIR_XML in content:
        return content
    return {**content, FHIR_XML: {"schema": {"type": "string", "description": "the same resource in FHIR XML"}}}


def _operation_doc(op: Operation) -> dict[str, Any]:
    fhir = op.path.startswith("/fhir/") and ".well-known" not in op.path
    doc: dict[str, Any] = {"operationId": op.id, "summary": op.summary}
    if op.description:
        doc["description"] = op.description
    if op.tags:
        doc["tags"] = list(op.tags)
    parameters = [*op.parameters, FORMAT_PARAM] if fhir else list(op.parameters)
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {"required": op.body_required, "content": op.body}
    responses: dict[str, Any] = {}
    for status, (what, content) in op.responses.items():
        content = _with_xml(content) if fhir else content
        responses[str(status)] = {"description": what, **({"content": content} if content else {})}
    errors = {**op.errors, 405: "the method is not allowed on this path"}
    if fhir:
        errors.setdefault(406, "the format asked for (Accept, _format) is one helixgate does not write")
    if not op.public:
        errors = {**errors, **ACCESS_ERRORS}
        doc["security"] = [{}, {"apiKey": []}, {"bearer": []}]  # {}: open when access control is off
        doc["description"] = (doc.get("description", "") + f" Needs the scope {op.scope} when access control is "
                              "on.").strip()
    for status, when in sorted(errors.items()):
        responses[str(status)] = {"description": when, "content": _with_xml(_outcome()) if fhir else _outcome()}
    for status, named in [*op.headers.items(), *(ACCESS_HEADERS.items() if not op.public else ())]:
        if str(status) in responses:
            responses[str(status)]["headers"] = {
                name: {"description": what, "required": always, "schema": {"type": "string"}}
                for name, (what, always) in named.items()}
    doc["responses"] = dict(sorted(responses.items()))
    return doc


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations():
        paths.setdefault(op.path, {})[op.method.lower()] = _operation_doc(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "helixgate", "version": __version__,
                 "description": "The HTTP API of helixgate, the FHIR interoperability gateway: conversion, validation "
                                "and translation operations, bulk jobs, and the service routes. The FHIR REST "
                                "interactions the validating facade forwards to the upstream server "
                                "(HELIXGATE_UPSTREAM_URL) are described by /fhir/metadata, not here.",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "paths": paths,
        "components": COMPONENTS,
    }


def missing(routes: list[Any]) -> list[str]:
    """'METHOD path' of each route (and method) of the app that neither OPERATIONS nor GENERIC describes."""
    described = {(op.path, op.method) for op in operations()}
    out = []
    for route in routes:
        path = getattr(route, "path", None)
        for method in sorted((getattr(route, "methods", None) or {"GET"}) - {"HEAD"}):
            if path is None or ((template(path), method) not in described and not generic(path)):
                out.append(f"{method} {path}")
    return out


_rendered: bytes | None = None


def rendered() -> bytes:
    """The document as bytes, as written to docs/openapi.json (indented, keys in the table's order)."""
    global _rendered
    if _rendered is None:
        import orjson

        _rendered = orjson.dumps(document(), option=orjson.OPT_INDENT_2) + b"\n"
    return _rendered


async def openapi_route(request: Request) -> Response:
    return Response(rendered(), media_type=OPENAPI_JSON)


routes = [Route("/openapi.json", openapi_route, methods=["GET"])]
