"""Checks of GET [base]/metadata: the CapabilityStatement and what it declares."""

from __future__ import annotations

from typing import Any

from conformance.checks.expect import ok, resource
from conformance.context import Context
from conformance.exceptions import CheckFailed, CheckSkipped
from conformance.registry import check


def capability_statement(ctx: Context) -> dict[str, Any]:
    reply = ctx.target.request("GET", "metadata", headers={"Accept": "application/fhir+json"})
    ok(reply)
    return resource(reply, "CapabilityStatement")


def server_rest(cs: dict[str, Any]) -> dict[str, Any]:
    for rest in cs.get("rest") or []:
        if rest.get("mode") == "server":
            return rest
    raise CheckFailed("the CapabilityStatement has no rest entry with mode 'server'")


def declared_resource(cs: dict[str, Any], rtype: str) -> dict[str, Any]:
    for res in server_rest(cs).get("resource") or []:
        if res.get("type") == rtype:
            return res
    raise CheckFailed(f"the CapabilityStatement declares no {rtype} resource")


def declared_search_params(cs: dict[str, Any], rtype: str) -> set[str]:
    try:
        res = declared_resource(cs, rtype)
    except CheckFailed:
        return set()
    return {p.get("name") for p in res.get("searchParam") or []} | {
        p.get("name") for p in server_rest(cs).get("searchParam") or []}


@check("not-applicable")
def not_applicable(ctx: Context) -> str | None:
    raise CheckSkipped(ctx.param("reason"))


@check("capability-statement")
def statement(ctx: Context) -> str | None:
    cs = capability_statement(ctx)
    version = str(cs.get("fhirVersion", ""))
    want = ctx.param("fhir_version", "4.0")
    if not version.startswith(want):
        raise CheckFailed(f"fhirVersion is {version or 'missing'}; this suite tests FHIR {want}.x")
    if cs.get("kind") not in ("instance", "capability", "requirements"):
        raise CheckFailed(f"kind {cs.get('kind')!r} is not a CapabilityStatement kind")
    server_rest(cs)
    software = cs.get("software") or {}
    return f"FHIR {version}" + (f", {software.get('name')} {software.get('version', '')}".rstrip() if software else "")


@check("capability-format")
def formats(ctx: Context) -> str | None:
    declared = [str(f) for f in capability_statement(ctx).get("format") or []]
    wanted = ctx.param("formats")
    if not set(declared) & set(wanted):
        raise CheckFailed(f"CapabilityStatement.format is {declared or 'empty'}; expected one of {', '.join(wanted)}")
    return "declares " + ", ".join(declared)


def _operation_names(cs: dict[str, Any]) -> set[str]:
    rest = server_rest(cs)
    ops = list(rest.get("operation") or [])
    for res in rest.get("resource") or []:
        ops += res.get("operation") or []
    names = set()
    for op in ops:
        names.add(str(op.get("name", "")).lstrip("$"))
        names.add(str(op.get("definition", "")).rsplit("/", 1)[-1].rsplit("-", 1)[-1])
    return names


@check("capability-operation")
def operation(ctx: Context) -> str | None:
    name = ctx.param("name")
    if name not in _operation_names(capability_statement(ctx)):
        raise CheckFailed(f"the CapabilityStatement declares no ${name} operation (rest.operation or "
                          "rest.resource.operation)")
    return f"declares ${name}"


@check("capability-profiles")
def profiles(ctx: Context) -> str | None:
    cs = capability_statement(ctx)
    missing = []
    for rtype, urls in ctx.param("resources").items():
        res = declared_resource(cs, rtype)
        have = {str(u).split("|")[0] for u in [*(res.get("supportedProfile") or []), res.get("profile") or ""]}
        missing += [f"{rtype}: {u}" for u in urls if u not in have]
    if missing:
        raise CheckFailed("supportedProfile does not list " + "; ".join(missing))
    return "declares " + ", ".join(u.rsplit("/", 1)[-1] for urls in ctx.param("resources").values() for u in urls)


@check("capability-interactions")
def interactions(ctx: Context) -> str | None:
    cs = capability_statement(ctx)
    missing = []
    for rtype, codes in ctx.param("resources").items():
        have = {i.get("code") for i in declared_resource(cs, rtype).get("interaction") or []}
        missing += [f"{rtype} {c}" for c in codes if c not in have]
    if missing:
        raise CheckFailed("the CapabilityStatement does not declare " + ", ".join(missing))
    return "declares " + "; ".join(f"{t}: {', '.join(c)}" for t, c in ctx.param("resources").items())


@check("capability-search-params")
def search_params(ctx: Context) -> str | None:
    """Each wanted param may name alternatives ('subject|patient'): one of them must be declared."""
    cs = capability_statement(ctx)
    missing = []
    for rtype, names in ctx.param("resources").items():
        have = declared_search_params(cs, rtype)
        missing += [f"{rtype}?{n}" for n in names if not set(n.split("|")) & have]
    if missing:
        raise CheckFailed("the CapabilityStatement declares no search parameter " + ", ".join(missing))
    return "declares " + "; ".join(f"{t}: {', '.join(n)}" for t, n in ctx.param("resources").items())
