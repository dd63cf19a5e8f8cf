"""Authorisation of one request against the principal's scopes, and of the bodies the facade forwards.

`authorize` runs in the auth middleware, from the request line: the operation or resource scopes of the route's
`Need`, then what a restricted grant (patient/ scopes, search-narrowed scopes) still demands —

- a search gets the grant's parameters added (`subject=Patient/123`, `category=…`): the upstream returns no more
  than the grant covers (HAPI's SearchNarrowingInterceptor does the same);
- a read (read, vread, history-instance) is first asked of the upstream as `Type?_id=id&<those parameters>`: a
  resource outside them is answered 404, as if it did not exist (OWASP API1: no existence oracle);
- `_include`/`_revinclude` targets need an unrestricted read scope (a patient/ grant cannot follow them);
- writes are checked on their body by `authorize_body`, which the facade calls once it has parsed the resource or
  converted the national format: every entry of a batch or transaction is authorised as its own request (FHIR
  security: "every entry of a batch or transaction"), a written resource must be in the patient's compartment, and
  an update or delete may not touch a stored resource outside it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.responses import Response

from gateway.auth.compartment import in_compartment, narrowing, references_patient
from gateway.auth.principal import Principal, principal_of
from gateway.auth.scopes import Grant, Scope, broadest, grants, grants_operation, parse_all
from gateway.auth.table import Need, rest_need
from gateway.responses import outcome_response

log = logging.getLogger("helixgate.auth")
GRANT_KEY = "helixgate.grant"  # the grant a body check still has to enforce (a write under a restricted grant)
REALM = "helixgate"


@functools.lru_cache(maxsize=4096)
def parsed(scopes: tuple[str, ...]) -> tuple[Scope, ...]:
    """A principal's scopes, parsed once per distinct set."""
    return parse_all(scopes)


def forbidden(message: str, scope: str | None = None) -> Response:
    """403 with an OperationOutcome `forbidden` and RFC 6750's insufficient_scope challenge."""
    challenge = f'Bearer realm="{REALM}", error="insufficient_scope"' + (f', scope="{scope}"' if scope else "")
    return outcome_response(403, "forbidden", "insufficient-scope", message, headers={"WWW-Authenticate": challenge})


def not_found(rtype: str, rid: str) -> Response:
    return outcome_response(404, "not-found", "http-404", f"{rtype}/{rid[:64]} is not known")


def _missing(principal: Principal, rtype: str, letter: str) -> str:
    """The scope to name in a 403: patient/ when the client works in a patient context, else system/."""
    context = "patient" if principal.patient and in_compartment(rtype) else "system"
    return f"{context}/{rtype}.{letter}"


class Denied(Exception):
    """A request the scopes do not allow: the message, and the scope that would (for WWW-Authenticate)."""

    def __init__(self, message: str, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope

    def response(self, where: str = "") -> Response:
        return forbidden(f"{where}{self}", self.scope)


def choose(principal: Principal, need: Need, query: list[tuple[str, str]]) -> Grant:
    """The grant under which the request's resource scopes are allowed; Denied says which scope is missing."""
    scopes = parsed(principal.scopes)
    if need.refused:
        raise Denied(need.refused)
    if need.operation and not grants_operation(scopes, need.operation):
        wanted = f"system/${need.operation}"
        raise Denied(f"${need.operation} needs the scope {wanted} (or user/${need.operation}, "
                     f"patient/${need.operation}); the credential of {principal.client!r} does not grant it", wanted)
    grant = Grant()
    for i, (rtype, letter) in enumerate(need.resources):
        options = grants(scopes, rtype, letter, patient=principal.patient, in_compartment=in_compartment(rtype))
        if not options:
            wanted = _missing(principal, rtype, letter)
            what = "any resource type" if rtype == "*" else rtype
            raise Denied(f"{_INTERACTION[letter]} on {what} needs the scope {wanted} (or a wider one: * for the "
                         f"type, user/ or system/); the credential of {principal.client!r} does not grant it", wanted)
        chosen = broadest(options, query)
        if chosen is None:
            names = ", ".join(g.scope for g in options)
            raise Denied(f"several search-narrowed scopes allow this ({names}) and one FHIR search cannot ask for "
                         "all of them: add the parameters of one to the query")
        if need.unrestricted and chosen.restricted:
            wanted = f"system/{rtype}.{letter}"
            raise Denied(f"this request cannot be limited to a patient or a narrowed search; it needs an "
                         f"unrestricted scope such as {wanted} (user/ or system/)", wanted)
        if i == 0:
            grant = chosen
    for target in need.includes:
        if not any(not g.restricted for g in grants(scopes, target, "r", patient=None, in_compartment=False)):
            wanted = f"system/{target}.r"
            raise Denied(f"_include/_revinclude bring {'any type' if target == '*' else target} into the result: "
                         f"that needs an unrestricted read scope such as {wanted}", wanted)
    return grant


_INTERACTION = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def constraints(grant: Grant, rtype: str) -> list[tuple[str, str]]:
    """The search parameters that keep a request on `rtype` within `grant`."""
    pairs = list(grant.narrowing)
    if grant.patient:
        compartment = narrowing(rtype, grant.patient)
        if compartment is not None:
            pairs.append(compartment)
    return pairs


def narrowed_query(query_string: str, pairs: list[tuple[str, str]]) -> str:
    added = urlencode(pairs)
    return f"{query_string}&{added}" if query_string else added


async def within(upstream: Any, rtype: str, rid: str, grant: Grant, *, absent_ok: bool) -> bool | Response:
    """Whether the stored `rtype/rid` is within the grant (asked of the upstream as a search with the grant's
    parameters); with `absent_ok`, a resource that does not exist passes too (a create by update, a delete of
    nothing). A 503 when the upstream cannot answer."""
    from gateway.upstream import UpstreamUnavailable

    if upstream is None:
        return False
    try:
        if await _count(upstream, rtype, [("_id", rid), *constraints(grant, rtype)]):
            return True
        return absent_ok and not await _count(upstream, rtype, [("_id", rid)])
    except UpstreamUnavailable as e:
        return outcome_response(503, "transient", "upstream-unavailable",
                                f"the upstream FHIR server is unavailable for the access check: {e}",
                                headers={"Retry-After": str(max(1, int(e.retry_after or 1)))})


async def _count(upstream: Any, rtype: str, params: list[tuple[str, str]]) -> int:
    resp = await upstream.send("GET", upstream.url(rtype), params=[*params, ("_count", "1")])
    if resp.status_code != 200:
        return 0
    try:
        doc = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return 0
    return sum(1 for e in doc.get("entry") or [] if (e.get("resource") or {}).get("resourceType") == rtype)


async def authorize(scope: dict[str, Any], principal: Principal, need: Need,
                    query: list[tuple[str, str]]) -> Response | None:
    """Checks a request in the middleware; rewrites its query (narrowed searches) and If-None-Exist, and leaves the
    grant for the body check. Returns the refusal, or None to let the request through."""
    try:
        chosen = choose(principal, need, query)
    except Denied as e:
        return e.response()
    if need.body:
        scope[GRANT_KEY] = chosen
    if not chosen.restricted:
        return None
    if need.search:
        pairs = constraints(chosen, need.search)
        scope["query_string"] = narrowed_query(scope.get("query_string", b"").decode("latin-1"), pairs).encode()
    if need.target:
        upstream = getattr(getattr(scope.get("app"), "state", None), "upstream", None)
        ok = await within(upstream, *need.target, chosen, absent_ok=need.body or need.resources[0][1] == "d")
        if isinstance(ok, Response):
            return ok
        if not ok:
            return not_found(*need.target)
    if need.body:
        headers = scope.get("headers") or []
        scope["headers"] = [(k, _if_none_exist(v, chosen, need.resources[0][0]) if k == b"if-none-exist" else v)
                            for k, v in headers]
    return None


def _if_none_exist(value: bytes, grant: Grant, rtype: str) -> bytes:
    """A conditional create's search (a query string), narrowed like any search: it must not probe outside the
    grant."""
    return narrowed_query(value.decode("latin-1").lstrip("?"), constraints(grant, rtype)).encode()


async def authorize_body(request: Any, resource: Any, *, converted: bool = False) -> tuple[Response | None, bool]:
    """The facade's check of what it is about to forward: (a refusal or None, whether `resource` was changed — the
    facade then forwards it re-serialised). A Bundle posted to [base] is authorised entry by entry (`converted`:
    made from a national format, which needs $convert too); a single resource against the grant the middleware
    left. Nothing to do when auth is off."""
    auth = getattr(request.app.state, "auth", None)
    if auth is None or not auth.enabled:
        return None, False
    principal = principal_of(request)
    if converted:
        try:
            choose(principal, Need("write", operation="convert"), [])
        except Denied as e:
            return e.response("a national format posted to [base] is converted first: "), False
    path = request.url.path.rstrip("/")
    if path == "/fhir":
        return await _entries(request, principal, resource)
    grant = request.scope.get(GRANT_KEY)
    if not isinstance(grant, Grant):
        return forbidden("the request was not authorised"), False  # the middleware did not run: refuse
    refused = _body_in_grant(principal, grant, resource, request.method, request.path_params.get("type", ""))
    return refused, False


def _body_in_grant(principal: Principal, grant: Grant, resource: Any, method: str, rtype: str) -> Response | None:
    if not grant.patient:
        return None  # unrestricted (narrowed scopes grant no create or update)
    if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
        return forbidden(f"the body is not a {rtype}")
    if rtype == "Patient" and method == "POST":
        return forbidden("a patient/ scope cannot create a Patient")
    if not references_patient(resource, grant.patient):
        return forbidden(f"a patient/ scope writes only within Patient/{grant.patient}'s compartment: this {rtype} "
                         "does not reference that patient where the compartment looks")
    return None


async def _entries(request: Any, principal: Principal, bundle: Any) -> tuple[Response | None, bool]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        rtype = bundle.get("resourceType") if isinstance(bundle, dict) else None
        if not isinstance(rtype, str):
            return forbidden("only a Bundle (batch or transaction) or a resource can be posted to [base]"), False
        need = Need("write", resources=((rtype, "c"),), body=True)
        try:
            grant = choose(principal, need, [])
        except Denied as e:
            return e.response(), False
        return _body_in_grant(principal, grant, bundle, "POST", rtype), False
    if bundle.get("type") not in ("batch", "transaction"):
        return forbidden("a Bundle posted to [base] must be a batch or transaction"), False
    upstream = getattr(request.app.state, "upstream", None)
    changed = False
    for n, entry in enumerate(bundle.get("entry") or []):
        req = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(req, dict) or not isinstance(req.get("method"), str) or not isinstance(req.get("url"), str):
            return forbidden(f"entry[{n}] has no request.method and request.url to authorise"), False
        refused, edited = await _entry(upstream, principal, req, entry.get("resource"), n)
        if refused is not None:
            return refused, False
        changed = changed or edited
    return None, changed


async def _entry(upstream: Any, principal: Principal, req: dict[str, Any], resource: Any,
                 n: int) -> tuple[Response | None, bool]:
    method, url = req["method"].upper(), req["url"]
    if "://" in url or url.startswith("/"):
        return forbidden(f"entry[{n}].request.url must be relative to [base] (Type, Type/id, Type?query)"), False
    path, _, q = url.partition("?")
    query = parse_qsl(q, keep_blank_values=True)
    need = rest_need(method, [s for s in path.split("/") if s], query, "write")
    try:
        grant = choose(principal, need, query)
    except Denied as e:
        return e.response(f"entry[{n}] ({method} {path[:80]}): "), False
    if not grant.restricted:
        return None, False
    changed = False
    if need.search:
        req["url"] = f"{path}?{narrowed_query(q, constraints(grant, need.search))}"
        changed = True
    if need.target:
        ok = await within(upstream, *need.target, grant, absent_ok=method != "GET")
        if isinstance(ok, Response):
            return ok, False
        if not ok:
            return not_found(*need.target), False
    if need.body and method in ("POST", "PUT"):
        refused = _body_in_grant(principal, grant, resource, method, need.resources[0][0])
        if refused is not None:
            return refused, False
    elif need.body:  # PATCH: the patched result cannot be checked here
        return forbidden(f"entry[{n}]: a PATCH cannot be authorised under a patient/ scope"), False
    if isinstance(req.get("ifNoneExist"), str):
        req["ifNoneExist"] = _if_none_exist(req["ifNoneExist"].encode(), grant, need.resources[0][0]).decode()
        changed = True
    return None, changed
