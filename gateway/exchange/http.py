"""`POST /fhir/$exchange`: a transfer under a route. Body: a FHIR Parameters with
    route (valueString|valueId|valueCode)        the route id
    purpose (valueCode|valueString)              a purpose the route allows (treatment, research, … or TREAT, …)
    content                                      the document: resource, valueString, valueBase64Binary or
                                                 valueAttachment (contentType + data)
    contentReference (valueReference)            or a stored Bundle on the upstream FHIR server (Bundle/{id})
    source (valueCode)                           its format, when it cannot be detected
    consent (resource), repeated                 FHIR R4 Consent resources
    mechanism (valueString), repeated            transfer-mechanism ids (standard contract, SCC, assessment)
    legalBasis (valueString), filing (valueString: the HGR filing id), dryRun (valueBoolean)
Answers: 200 Parameters (decision, output, outcome, change…, provenance, auditEvent, subjectsThisYear, warning);
403 OperationOutcome naming the refusing rule and what would satisfy it (nothing is sent, counted or kept but
the AuditEvent); 400/415/422 as $convert for content that does not convert or is invalid after the rules."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.exchange.mllp import DeliveryFailed
from gateway.exchange.pipeline import run
from gateway.exchange.rules import Refused
from gateway.exchange.rules.facts import Transfer
from gateway.exchange.service import HttpEngine
from gateway.fhir_input import parameters
from gateway.responses import FHIRResponse, outcome_response
from gateway.routes import read_body
from gateway.upstream import UpstreamRejected, UpstreamUnavailable
from mappers.exceptions import ParseError
from mappers.toolkit.registry import HUB

_STORED_BUNDLE = re.compile(r"Bundle/[A-Za-z0-9\-.]{1,64}\Z")


def _value(p: dict[str, Any]) -> Any:
    return next((p[k] for k in ("valueString", "valueCode", "valueId", "valueUri", "valueBoolean") if k in p), None)


def read_parameters(doc: Any) -> dict[str, Any]:
    """The invocation's parts. Raises ParseError naming what is missing or malformed."""
    if not isinstance(doc, dict) or doc.get("resourceType") != "Parameters":
        raise ParseError("$exchange takes a FHIR Parameters resource", details="exchange-not-parameters")
    out: dict[str, Any] = {"consents": [], "mechanisms": []}
    for p in parameters(doc):
        name = p.get("name")
        if name == "content":
            out["content"] = _content(p)
        elif name == "contentReference":
            ref = (p.get("valueReference") or {}).get("reference")
            if not isinstance(ref, str) or not _STORED_BUNDLE.match(ref):
                raise ParseError("contentReference must be a valueReference to a stored Bundle (Bundle/{id})",
                                 details="exchange-bad-reference")
            out["reference"] = ref
        elif name == "consent":
            if not isinstance(p.get("resource"), dict):
                raise ParseError("parameter consent must hold a Consent resource", details="exchange-bad-consent",
                                 expression="Parameters.parameter.where(name='consent')")
            out["consents"].append(p["resource"])
        elif name == "mechanism":
            out["mechanisms"].append(str(_value(p) or ""))
        elif name in ("route", "purpose", "source", "legalBasis", "filing", "dryRun"):
            out[name] = _value(p)
    if "content" not in out and "reference" in out:
        out["content"] = None  # fetched from the upstream by exchange_route
    for needed in ("route", "purpose", "content"):
        if needed == "content" and "reference" in out:
            continue
        if out.get(needed) in (None, ""):
            raise ParseError(f"$exchange needs the parameter {needed}", details="exchange-missing-parameter",
                             expression=f"Parameters.parameter.where(name='{needed}')")
    return out


async def _fetch(request: Request, reference: str) -> tuple[bytes, str | None]:
    """The content a reference names, read from the upstream FHIR server with the gateway's credentials."""
    upstream = getattr(request.app.state, "upstream", None)
    if upstream is None:
        raise ParseError("contentReference needs an upstream FHIR server (HELIXGATE_UPSTREAM_URL)",
                         details="exchange-no-upstream")
    try:
        _, doc, _ = await upstream.json("GET", reference)
    except UpstreamRejected as e:
        raise ParseError(f"the upstream cannot give {reference}: {e}", details="exchange-reference-not-found") from None
    if doc.get("resourceType") != "Bundle":
        raise ParseError(f"{reference} is not a Bundle", details="exchange-bad-reference")
    return orjson.dumps(doc), HUB


def _content(p: dict[str, Any]) -> tuple[bytes, str | None]:
    try:
        if isinstance(p.get("resource"), dict):
            return orjson.dumps(p["resource"]), HUB
        if isinstance(p.get("valueString"), str):
            return p["valueString"].encode(), None
        if isinstance(p.get("valueBase64Binary"), str):
            return base64.b64decode(p["valueBase64Binary"], validate=True), None
        att = p.get("valueAttachment")
        if isinstance(att, dict) and isinstance(att.get("data"), str):
            from gateway.formats import media_source

            return base64.b64decode(att["data"], validate=True), media_source(str(att.get("contentType", "")))
    except (binascii.Error, ValueError):
        raise ParseError("parameter content is not valid base64", details="bad-base64") from None
    except orjson.JSONEncodeError:
        raise ParseError("parameter content is nested too deeply", details="input-too-deep") from None
    raise ParseError("parameter content must be a resource, valueString, valueBase64Binary or valueAttachment",
                     details="exchange-bad-content")


async def exchange_route(request: Request) -> Response:
    state = getattr(request.app.state, "exchange", None)
    if state is None or state.routes is None:
        return outcome_response(501, "not-supported", "exchange-not-configured",
                                "no exchange routes are configured (HELIXGATE_EXCHANGE_ROUTES names the routes file)")
    body = await read_body(request, request.app.state.settings.max_request_bytes)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ParseError(f"request body is not valid JSON: {e}", details="bad-json") from None
    given = read_parameters(doc)
    if given.get("reference"):
        given["content"] = await _fetch(request, given["reference"])
    data, media_source = given["content"]
    dry = str(given.get("dryRun", "")).lower() in ("true", "1")
    transfer = Transfer(purpose=str(given["purpose"]), day="", mechanisms=tuple(given["mechanisms"]),
                        legal_basis=given.get("legalBasis"), filing=given.get("filing"),
                        consents=tuple(given["consents"]))
    route = state.routes.get(str(given["route"]))
    from dataclasses import replace

    from gateway.auth.principal import principal_of
    from gateway.exchange.pipeline import today

    if route is not None:
        transfer = replace(transfer, day=today(route))
    redis = getattr(request.app.state, "redis", None)
    principal = principal_of(request)
    try:
        from gateway.formats import detect

        # a named source first, then what the bytes are (two formats may share a media type: CDA), then the type
        source = given.get("source") or detect(data) or media_source
        result = await run(data, source=source, route_id=str(given["route"]),
                           transfer=transfer, routes=state.routes, engine=HttpEngine(request),
                           counters=state.counters(redis), trail=state.trail(redis),
                           client=principal.client if principal.authenticated else None, dry_run=dry)
    except Refused as e:
        return FHIRResponse(e.outcome(), status_code=403)
    except UpstreamUnavailable as e:  # counters released, failure audited: the caller may send it again
        return outcome_response(503, "transient", "upstream-unavailable",
                                f"the upstream FHIR server is unavailable: {e}",
                                headers={"Retry-After": str(max(1, int(e.retry_after or 1)))})
    except DeliveryFailed as e:
        return outcome_response(502, "transient", "exchange-delivery-failed", str(e))
    except UpstreamRejected as e:
        return FHIRResponse(e.outcome, status_code=502) if e.outcome else outcome_response(
            502, "exception", "upstream-rejected", f"the upstream refused the transfer: {e}")
    return FHIRResponse(answer(result, dry))


def answer(result: Any, dry: bool) -> dict[str, Any]:
    """The Parameters of a transfer's result (also what `helixgate exchange --dry-run` prints)."""
    params: list[dict[str, Any]] = [{"name": "decision", "valueCode": result.decision},
                                    {"name": "route", "valueString": result.route},
                                    {"name": "dryRun", "valueBoolean": dry}]
    if result.refusal is not None:
        params.append({"name": "outcome", "resource": result.refusal.outcome()})
    elif not dry:
        if result.media_type.startswith("application/fhir+json"):
            params.append({"name": "output", "resource": orjson.loads(result.body)})
        elif result.body:
            params.append({"name": "output", "valueString": result.body.decode("utf-8", "replace")})
        params.append({"name": "outcome", "resource": result.outcome})
    for c in result.changes:
        parts = [{"name": "rule", "valueCode": c.rule}, {"name": "action", "valueCode": c.action},
                 {"name": "path", "valueString": c.path}]
        if c.note:
            parts.append({"name": "note", "valueString": c.note})
        params.append({"name": "change", "part": parts})
    if result.provenance is not None and not dry:
        params.append({"name": "provenance", "resource": result.provenance})
    if not dry:
        params.append({"name": "auditEvent", "valueString": result.transfer_id})
    if result.counted is not None:
        params.append({"name": "subjectsThisYear", "valueInteger": result.counted})
    if result.warning:
        params.append({"name": "warning", "valueString": result.warning})
    for d in result.delivered:
        params.append({"name": "delivered", "valueString": d})
    return {"resourceType": "Parameters", "parameter": params}


def capability(request: Request) -> list[dict[str, Any]]:
    """The CapabilityStatement's rest.operation entry for $exchange, when routes are configured."""
    state = getattr(request.app.state, "exchange", None)
    if state is None or state.routes is None:
        return []
    names = ", ".join(state.routes.routes)
    return [{"name": "exchange", "definition": "urn:helixgate:OperationDefinition:exchange",
             "documentation": "POST /fhir/$exchange with Parameters (route, purpose, content, consent, mechanism, "
                              "legalBasis, filing, dryRun): a cross-border transfer under an exchange route; 403 "
                              f"OperationOutcome naming the rule when refused. Routes: {names}"}]


routes = [Route("/fhir/$exchange", exchange_route, methods=["POST"])]
