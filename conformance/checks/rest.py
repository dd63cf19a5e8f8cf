"""REST behaviour any FHIR endpoint owes: content negotiation, OperationOutcome on errors, $validate semantics."""

from __future__ import annotations

from typing import Any

from conformance.checks.capability import capability_statement
from conformance.checks.expect import FHIR_JSON, XML_TYPES, errors, media_type, ok, outcome, outcome_text, resource
from conformance.client import Reply
from conformance.context import Context
from conformance.exceptions import CheckFailed
from conformance.registry import check

XML_FORMATS = ("xml", "text/xml", "application/xml", "application/fhir+xml")


def _send(ctx: Context) -> Reply:
    """The request a test's params describe: method, path, query, headers, and a body as text or JSON."""
    params = ctx.fill(ctx.params)
    body = params.get("body")
    return ctx.target.request(params.get("method", "GET"), params.get("path", "metadata"),
                              headers=params.get("headers"), params=params.get("query"),
                              content=body.encode() if isinstance(body, str) else None, json=params.get("json"))


@check("negotiate")
def negotiate(ctx: Context) -> str | None:
    """A JSON format asked for by `_format` or Accept is served as FHIR JSON."""
    reply = _send(ctx)
    ok(reply)
    doc = resource(reply)
    media_type(reply, ctx.param("content_types", [FHIR_JSON]))
    return f"{doc['resourceType']} as {reply.headers.get('content-type')}"


@check("charset")
def charset(ctx: Context) -> str | None:
    reply = _send(ctx)
    ok(reply)
    value = reply.headers.get("content-type", "")
    params = {p.split("=", 1)[0].strip().lower(): p.split("=", 1)[-1].strip().strip('"').lower()
              for p in value.split(";")[1:] if "=" in p}
    if params.get("charset") != "utf-8":
        raise CheckFailed(f"Content-Type is {value or 'missing'}; FHIR requires charset=utf-8")
    return value


@check("negotiate-xml")
def negotiate_xml(ctx: Context) -> str | None:
    """XML asked for: a server that declares XML serves it; one that does not says so (406/415 +
    OperationOutcome) instead of answering JSON as if nothing were amiss."""
    declared = {str(f) for f in capability_statement(ctx).get("format") or []}
    reply = _send(ctx)
    if declared & set(XML_FORMATS):
        ok(reply)
        media_type(reply, XML_TYPES)
        if not reply.body.lstrip().startswith(b"<"):
            raise CheckFailed("the XML response does not start with an element")
        return "served as XML (declared in CapabilityStatement.format)"
    if 200 <= reply.status < 300:
        raise CheckFailed(f"XML was asked for and the CapabilityStatement declares no XML format, yet the answer "
                          f"is {reply.describe()}; say 406 Not Acceptable with an OperationOutcome")
    outcome(reply, 406, 415)
    return f"refused with {reply.status} and an OperationOutcome (XML is not declared)"


@check("error-outcome")
def error_outcome(ctx: Context) -> str | None:
    reply = _send(ctx)
    doc = outcome(reply, ctx.param("low", 400), ctx.param("high", 499))
    return f"{reply.status}: {errors(doc)[0].get('diagnostics') or errors(doc)[0].get('code')}"


@check("error-content-type")
def error_content_type(ctx: Context) -> str | None:
    reply = _send(ctx)
    if reply.status < 400:
        raise CheckFailed(f"expected an error status, got {reply.describe()}")
    media_type(reply, [FHIR_JSON], f"the {reply.status} OperationOutcome")
    return reply.headers.get("content-type")


def _validate_body(ctx: Context) -> tuple[dict[str, Any], dict[str, str]]:
    res = ctx.fixture(ctx.param("fixture"))
    for key in ctx.param("drop", []):  # e.g. meta, so only the requested profile applies
        res.pop(key, None)
    profile = ctx.param("profile", None)
    query = {}
    if ctx.param("parameters", False):
        body: dict[str, Any] = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": res}]}
        if profile:
            body["parameter"].append({"name": "profile", "valueUri": profile})
    else:
        body = res
        if profile:
            query["profile"] = profile
    return body, query


@check("validate")
def validate(ctx: Context) -> str | None:
    """$validate answers 200 and an OperationOutcome whether or not the resource is valid."""
    body, query = _validate_body(ctx)
    reply = ctx.target.request("POST", ctx.param("path", "$validate"), json=body, params=query)
    ok(reply)
    doc = resource(reply, "OperationOutcome")
    found = errors(doc)
    if ctx.param("expect") == "valid":
        if found:
            raise CheckFailed(f"a valid resource got {len(found)} error issue(s): " + outcome_text({
                "resourceType": "OperationOutcome", "issue": found}))
        return f"200, {len(doc.get('issue') or [])} issue(s), none an error"
    if not found:
        raise CheckFailed("an invalid resource got an OperationOutcome without any error issue")
    located = [i for i in found if i.get("expression") or i.get("location")]
    if not located:
        raise CheckFailed("no error issue says where the problem is (expression or location)")
    return f"200, {len(found)} error(s), e.g. {located[0].get('expression') or located[0].get('location')}"


@check("validate-unparseable")
def validate_unparseable(ctx: Context) -> str | None:
    """A body that is no resource: validation cannot run (4xx + OperationOutcome), or runs and reports a fatal
    or error issue (200); a 2xx without an error, or a 5xx, is wrong."""
    reply = _send(ctx)
    if reply.status == 200:
        doc = resource(reply, "OperationOutcome")
        if not errors(doc):
            raise CheckFailed("an unparseable body got 200 and an OperationOutcome without any error issue")
        return "200 with an error issue"
    outcome(reply)
    return f"{reply.status} with an OperationOutcome"
