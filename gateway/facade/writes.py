"""The facade's writes: create, update (also as create, and conditional), patch, delete (instance and
conditional), batch/transaction and national formats posted to [base], and instance `$validate`.

Everything written is validated first (422 with the OperationOutcome; nothing forwarded). A patch is applied by the
gateway — read, apply, validate the whole result, then a PUT with If-Match on the version read — so the resource the
upstream stores is the one that was validated, whatever patch formats the upstream knows (a concurrent change in
between is a 409, never a lost update). FHIR XML is accepted wherever FHIR JSON is, and forwarded as JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.audit import delivery_provenance, with_provenance
from gateway.auth.enforce import authorize_body
from gateway.convert import convert
from gateway.facade.common import (
    check,
    forwarded_headers,
    parse,
    query_suffix,
    relay,
    upstream_capabilities,
    upstream_of,
)
from gateway.facade.patch import PatchError, fhirpath_patch, json_patch
from gateway.facade.paths import INSTANCE, TYPE_LEVEL, fhir_path
from gateway.facade.respond import fhir_response, outcome, unavailable
from gateway.facade.semantics import information, prefer_return
from gateway.formats import GENERIC_MEDIA_TYPES, HUB, detect, media_source, resolve
from gateway.formats import Request as ConvertRequest
from gateway.routes import read_body
from gateway.sandbox import Cancelled, run_job
from gateway.upstream import UpstreamRejected, UpstreamUnavailable, deliver
from gateway.validate import read_resource
from mappers.toolkit.registry import ConvertOptions, get

JSON_PATCH = "application/json-patch+json"
FHIR_TYPES = ("application/fhir+json", "application/json", "application/fhir+xml", "application/xml", "text/xml",
              "application/json+fhir", "application/xml+fhir")


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _fhir_xml(body: bytes, media: str) -> bool:
    """FHIR XML by its namespace (http://hl7.org/fhir), whatever XML media type names it."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:2048]
    return head.startswith(b"<") and b"http://hl7.org/fhir" in head and ("xml" in media or media in
                                                                          GENERIC_MEDIA_TYPES)


async def _resource_body(request: Request, rtype: str | None) -> tuple[dict[str, Any], bytes] | Response:
    """The posted resource (FHIR JSON or XML) and the JSON to forward; a refusal for anything else."""
    body = await read_body(request, request.app.state.settings.max_request_bytes)
    media = _media(request)
    if not _fhir_xml(body, media) and media not in FHIR_TYPES and media not in GENERIC_MEDIA_TYPES:
        source = media_source(media, body)
        return outcome(request, 415, "not-supported", "facade-national-format",
                       f"{media} is not FHIR: a {source or 'national-format'} document is converted when posted to "
                       "[base] (/fhir)" if source else f"{media} is not a FHIR format (application/fhir+json or "
                       "application/fhir+xml)")
    resource = read_resource(body, "xml" if _fhir_xml(body, media) else media)
    if rtype and resource.get("resourceType") != rtype:
        return outcome(request, 400, "invalid", "facade-type-mismatch",
                       f"the body is a {str(resource.get('resourceType'))[:64]}, but was sent to /fhir/{rtype}")
    return resource, orjson.dumps(resource) if body.lstrip()[:1] != b"{" else body


async def create_route(request: Request) -> Response:
    """POST [base]/{type}: validate, then forward (conditional with If-None-Exist)."""
    rtype = request.path_params["type"]
    path = fhir_path(request, TYPE_LEVEL)
    if isinstance(path, Response):
        return path
    got = await _resource_body(request, rtype)
    if isinstance(got, Response):
        return got
    resource, body = got
    return await _write(request, "POST", path, resource, body, created=None)


async def update_route(request: Request) -> Response:
    """PUT [base]/{type}/{id} (update, or create with that id) and PUT [base]/{type}?search (conditional update)."""
    rtype = request.path_params["type"]
    conditional = "id" not in request.path_params
    path = fhir_path(request, TYPE_LEVEL if conditional else INSTANCE)
    if isinstance(path, Response):
        return path
    if conditional and not request.url.query:
        return outcome(request, 412, "processing", "facade-conditional-update",
                       "a conditional update needs search parameters (PUT [base]/{type}?search)")
    got = await _resource_body(request, rtype)
    if isinstance(got, Response):
        return got
    resource, body = got
    created: bool | None = None
    if not conditional:
        rid = path.split("/")[1]
        if resource.get("id") != rid:  # http.html#update: the body's id must be the URL's
            return outcome(request, 400, "invalid", "facade-id-mismatch",
                           f"the body's id {str(resource.get('id'))[:64]!r} is not the id in the URL ({rid})")
        if "if-match" not in request.headers:  # update as create answers 201 + Location, whatever the upstream says
            try:
                before = await upstream_of(request).send("GET", upstream_of(request).url(path))
            except UpstreamUnavailable as e:
                return unavailable(request, e)
            created = before.status_code in (404, 410)
    return await _write(request, "PUT", path, resource, body, created=created)


async def _write(request: Request, method: str, path: str, resource: dict[str, Any], body: bytes,
                 created: bool | None, extra_headers: dict[str, str] | None = None) -> Response:
    denied, _ = await authorize_body(request, resource)  # the scopes of each entry; patient compartment
    if denied is not None:
        return denied
    refused = await check(request, resource)
    if refused is not None:
        return refused
    await upstream_capabilities(request)
    upstream = upstream_of(request)
    url = upstream.url(path) + query_suffix(request)
    headers = forwarded_headers(request, **{"Content-Type": "application/fhir+json",
                                            "Prefer": "return=representation", **(extra_headers or {})})
    idempotent = method == "PUT" or "if-none-exist" in request.headers
    try:
        resp = await upstream.send(method, url, content=body, headers=headers, idempotent=idempotent)
    except UpstreamUnavailable as e:
        return unavailable(request, e)
    return await _written(request, resp, created)


async def _written(request: Request, resp: Any, created: bool | None) -> Response:
    """The answer to a successful write as http.html asks: 201 + Location for a create, ETag/Last-Modified, and
    the body `Prefer: return=` wants (the stored resource, nothing, or an OperationOutcome)."""
    if not 200 <= resp.status_code < 300:
        return relay(request, resp)
    doc = parse(resp.content)
    status = 201 if created or resp.status_code == 201 else resp.status_code
    resource = doc if isinstance(doc, dict) and doc.get("resourceType") not in (None, "OperationOutcome") else None
    location = resp.headers.get("location")
    if resource is None and location:  # the upstream answered without the resource: fetch what it stored
        try:
            fetched = await upstream_of(request).send("GET", upstream_of(request).url(location))
            got = parse(fetched.content)
            if fetched.status_code == 200 and isinstance(got, dict):
                resource = got
        except UpstreamUnavailable:
            pass
    extra: dict[str, str] = {}
    if status == 201 and not location and resource and resource.get("id"):
        vid = (resource.get("meta") or {}).get("versionId")
        public = request.app.state.addresses.public_base(request)
        extra["Location"] = f"{public}/{resource['resourceType']}/{resource['id']}" + (
            f"/_history/{vid}" if vid else "")
    want = prefer_return(request.headers.get("prefer"))
    if want == "minimal":
        body: bytes | None = None
    elif want == "OperationOutcome":
        what = "created" if status == 201 else "updated"
        body = orjson.dumps(information(f"{(resource or {}).get('resourceType', 'resource')} {what}"))
    else:
        body = orjson.dumps(resource) if resource is not None else resp.content
    return relay(request, resp, status=status, body=body or b"", extra=extra) if body else _empty(
        request, resp, status, extra, resource)


def _empty(request: Request, resp: Any, status: int, extra: dict[str, str], resource: Any) -> Response:
    from gateway.facade.respond import passed_headers
    from gateway.facade.semantics import version_headers

    headers = {**passed_headers(resp), **{k.lower(): v for k, v in extra.items()}}
    version_headers(resource, headers)
    return fhir_response(request, None, status, headers)


async def delete_route(request: Request) -> Response:
    """DELETE [base]/{type}/{id} and DELETE [base]/{type}?search (conditional delete)."""
    conditional = "id" not in request.path_params
    path = fhir_path(request, TYPE_LEVEL if conditional else INSTANCE)
    if isinstance(path, Response):
        return path
    if conditional and not request.url.query:
        return outcome(request, 412, "processing", "facade-conditional-delete",
                       "a conditional delete needs search parameters (DELETE [base]/{type}?search); deleting every "
                       "resource of a type is not offered")
    await upstream_capabilities(request)
    upstream = upstream_of(request)
    try:
        resp = await upstream.send("DELETE", upstream.url(path) + query_suffix(request),
                                   headers=forwarded_headers(request))
    except UpstreamUnavailable as e:
        return unavailable(request, e)
    return relay(request, resp)


async def patch_route(request: Request) -> Response:
    """PATCH [base]/{type}/{id}: JSON Patch or FHIRPath Patch, applied here and validated before it is stored."""
    rtype = request.path_params["type"]
    path = fhir_path(request, INSTANCE)
    if isinstance(path, Response):
        return path
    media = _media(request)
    body = await read_body(request, request.app.state.settings.max_request_bytes)
    if media not in (JSON_PATCH, "application/fhir+json", "application/fhir+xml", "application/json",
                     "application/xml"):
        return outcome(request, 415, "not-supported", "facade-patch-format",
                       f"PATCH takes {JSON_PATCH} (RFC 6902) or a FHIRPath Patch Parameters resource "
                       f"(application/fhir+json or +xml), not {media or 'an untyped body'}")
    try:
        patch = orjson.loads(body) if media == JSON_PATCH else read_resource(body, media)
    except orjson.JSONDecodeError as e:
        return outcome(request, 400, "invalid", "facade-patch", f"the JSON Patch cannot be read: {e}")
    await upstream_capabilities(request)
    upstream = upstream_of(request)
    try:
        current = await upstream.send("GET", upstream.url(path))
    except UpstreamUnavailable as e:
        return unavailable(request, e)
    if current.status_code != 200:
        return relay(request, current)
    stored, etag = parse(current.content), current.headers.get("etag")
    if not isinstance(stored, dict) or stored.get("resourceType") != rtype:
        return outcome(request, 502, "exception", "facade-patch", "the upstream did not return the stored resource")
    wanted = request.headers.get("if-match")
    if wanted and (not etag or wanted.strip().removeprefix("W/") != etag.strip().removeprefix("W/")):
        return outcome(request, 412, "conflict", "facade-version-conflict",
                       f"If-Match {wanted[:80]} is not the current version ({etag or 'unknown'})")
    try:
        patched = json_patch(stored, patch) if media == JSON_PATCH else fhirpath_patch(stored, patch)
    except PatchError as e:
        return outcome(request, e.status, "processing" if e.status == 422 else "invalid", "facade-patch", str(e))
    if patched.get("resourceType") != rtype or patched.get("id") != stored.get("id"):
        return outcome(request, 422, "processing", "facade-patch", "a patch may not change resourceType or id")
    response = await _write(request, "PUT", path, patched, orjson.dumps(patched), created=False,
                            extra_headers={"If-Match": etag} if etag else None)
    if response.status_code in (409, 412):  # changed between the read and the write: the client may retry
        return outcome(request, 409, "conflict", "facade-version-conflict",
                       f"{path} changed while the patch was applied; read it again and retry")
    return response


async def validate_instance_route(request: Request) -> Response:
    """POST [base]/{type}/{id}/$validate: the posted resource (or Parameters.resource) or, with no body, the stored
    one, validated; 200 with the OperationOutcome whether or not it is valid (Resource-validate)."""
    rtype = request.path_params["type"]
    path = fhir_path(request, (("id", "$validate"),))
    if isinstance(path, Response):
        return path
    rid = path.split("/")[1]
    body = await read_body(request, request.app.state.settings.max_request_bytes)
    media = _media(request)
    if not body.strip():
        await upstream_capabilities(request)
        upstream = upstream_of(request)
        try:
            stored = await upstream.send("GET", upstream.url(f"{rtype}/{rid}"))
        except UpstreamUnavailable as e:
            return unavailable(request, e)
        if stored.status_code != 200:
            return relay(request, stored)
        body, media = stored.content, "application/fhir+json"
    else:
        doc = read_resource(body, media)
        if doc.get("resourceType") == "Parameters":
            given = next((p.get("resource") for p in doc.get("parameter") or [] if isinstance(p, dict)
                          and p.get("name") == "resource"), None)
            doc = given if isinstance(given, dict) else doc
        if doc.get("resourceType") == rtype and doc.get("id") not in (None, rid):
            return outcome(request, 400, "invalid", "facade-id-mismatch",
                           f"the resource's id {str(doc.get('id'))[:64]!r} is not {rid}, the instance validated")
    profiles = tuple(dict.fromkeys(request.query_params.getlist("profile")))
    try:
        result = await run_job(request, ("validate", body, media, profiles, rtype))
    except Cancelled:
        return Response(status_code=499)
    return fhir_response(request, result, 200, {"X-Forwarded": "no"})


async def bundle_route(request: Request) -> Response:
    """POST [base] (also [base]/, answered here rather than redirected: a POST must not be lost to a 307): a
    batch or transaction Bundle, validated and forwarded, or a national format converted to one and delivered."""
    settings = request.app.state.settings
    body = await read_body(request, settings.max_request_bytes)
    media = _media(request)
    source = request.query_params.get("source") or media_source(media, body)
    if source is None and media in GENERIC_MEDIA_TYPES:
        source = detect(body)
    if _fhir_xml(body, media):
        source = HUB
    if source != HUB:
        return await _national(request, body, source)
    resource = read_resource(body, "xml" if _fhir_xml(body, media) else media)
    if resource.get("resourceType") != "Bundle" or resource.get("type") not in ("batch", "transaction"):
        return outcome(request, 400, "invalid", "facade-not-a-bundle",
                       "[base] takes a batch or transaction Bundle (or a national format to convert); post a "
                       f"{str(resource.get('resourceType'))[:64]} to [base]/{{type}}")
    denied, _ = await authorize_body(request, resource)  # each entry under its own scope
    if denied is not None:
        return denied
    refused = await check(request, resource)
    if refused is not None:
        return refused
    await upstream_capabilities(request)
    upstream = upstream_of(request)
    headers = forwarded_headers(request, **{"Content-Type": "application/fhir+json"})
    try:
        resp = await upstream.send("POST", upstream.url("") + query_suffix(request), content=orjson.dumps(resource),
                                   headers=headers, idempotent=False)
    except UpstreamUnavailable as e:
        return unavailable(request, e)
    return relay(request, resp)


async def _national(request: Request, body: bytes, source: str | None) -> Response:
    """A national-format document posted to [base]: converted to a transaction Bundle, validated, delivered."""
    settings = request.app.state.settings
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
    refused = await check(request, bundle)
    if refused is not None:
        return refused
    await upstream_capabilities(request)
    try:
        delivered = await deliver(upstream_of(request), bundle)
    except UpstreamUnavailable as e:
        return unavailable(request, e)
    except UpstreamRejected as e:
        if e.outcome and 400 <= e.status < 500:
            return fhir_response(request, e.outcome, e.status)
        return outcome(request, 502, "exception", "upstream-rejected", str(e))
    public = request.app.state.addresses.public_base(request)
    entries = [{"response": {"status": "201 Created", "location": f"{public}/{ref}"}} for ref in delivered.created]
    entries += [{"response": {"status": "200 OK", "location": f"{public}/{ref}"}} for ref in delivered.matched]
    return fhir_response(request, {"resourceType": "Bundle", "type": "transaction-response", "entry": entries},
                         200, {"X-Conversion-Source": src})


__all__ = ["bundle_route", "create_route", "delete_route", "patch_route", "update_route",
           "validate_instance_route"]
