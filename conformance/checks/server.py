"""Checks of a FHIR server's RESTful interactions: create, read, search, and refusal of invalid resources."""

from __future__ import annotations

import re
from typing import Any

from conformance.checks.capability import capability_statement, declared_search_params
from conformance.checks.expect import FHIR_JSON, errors, media_type, ok, outcome, resource
from conformance.context import Context
from conformance.exceptions import CheckFailed, CheckSkipped
from conformance.registry import check

MAX_PAGES = 5  # search pages followed while looking for the resources a test created


def _issue_lines(found: list[dict[str, Any]], limit: int = 5) -> str:
    return "; ".join(f"{(i.get('expression') or ['?'])[0]}: {i.get('diagnostics') or i.get('details', {}).get('text')}"
                     for i in found[:limit]) + (f" (+{len(found) - limit} more)" if len(found) > limit else "")


@check("create")
def create(ctx: Context) -> str | None:
    """POST [base]/[type] → 201 Created; the new id comes from Location ([base]/[type]/[id]/_history/[vid])
    or, failing that, from the returned resource."""
    rtype = ctx.param("type")
    reply = ctx.target.request("POST", rtype, json=ctx.fixture(ctx.param("fixture")),
                               headers={"Accept": FHIR_JSON, "Prefer": "return=representation"})
    ok(reply, 201)
    location = reply.headers.get("location") or reply.headers.get("content-location") or ""
    m = re.search(rf"(?:^|/){re.escape(rtype)}/([A-Za-z0-9\-.]{{1,64}})(?:/_history/|$)", location)
    rid = m.group(1) if m else None
    if rid is None:
        doc = reply.json()
        rid = doc.get("id") if isinstance(doc, dict) and doc.get("resourceType") == rtype else None
    if not rid:
        raise CheckFailed(f"201 Created, but neither a Location header nor the body gives the new {rtype}'s id")
    ctx.save(ctx.param("save"), id=rid, ref=f"{rtype}/{rid}", type=rtype, location=reply.headers.get("location"))
    return f"created {rtype}/{rid}"


@check("create-location")
def create_location(ctx: Context) -> str | None:
    saved = ctx.saved(ctx.param("key"))
    location = saved.get("location")
    if not location:
        raise CheckFailed(f"the 201 answer creating {saved['ref']} had no Location header")
    if f"{saved['ref']}" not in location:
        raise CheckFailed(f"Location {location} does not name {saved['ref']}")
    return location + ("" if "/_history/" in location else " (without a version id)")


def _read(ctx: Context) -> tuple[dict[str, Any], Any]:
    saved = ctx.saved(ctx.param("key"))
    reply = ctx.target.request("GET", saved["ref"], headers={"Accept": FHIR_JSON})
    return saved, reply


@check("read")
def read(ctx: Context) -> str | None:
    """GET [base]/[type]/[id] → 200 with the resource; saved for the checks that validate it."""
    saved, reply = _read(ctx)
    ok(reply)
    doc = resource(reply, saved["type"])
    if doc.get("id") != saved["id"]:
        raise CheckFailed(f"asked for {saved['ref']}, got id {doc.get('id')!r}")
    code = ctx.param("code", None)
    if code:
        codings = (doc.get("code") or {}).get("coding") or []
        if not any(c.get("system") == code["system"] and c.get("code") == code["code"] for c in codings):
            raise CheckFailed(f"{saved['ref']} read back without its code {code['system']}|{code['code']}")
    ctx.run.saved[ctx.param("key")] = {**saved, "resource": doc}
    return f"read {saved['ref']}"


@check("read-content-type")
def read_content_type(ctx: Context) -> str | None:
    saved, reply = _read(ctx)
    ok(reply)
    media_type(reply, [FHIR_JSON], f"{saved['ref']}")
    return reply.headers.get("content-type")


@check("read-validates")
def read_validates(ctx: Context) -> str | None:
    """What the server gives back still conforms to the profile it was created under (the project's
    validator; errors only, warnings are reported by $validate)."""
    saved = ctx.saved(ctx.param("key"))
    if "resource" not in saved:
        raise CheckSkipped(f"{saved['ref']} was not read back")
    profile = ctx.param("profile")
    found = [i for i in ctx.validator().validate(saved["resource"], [profile]) if i.severity in ("error", "fatal")]
    if found:
        raise CheckFailed(f"{saved['ref']} as read back breaks {profile.rsplit('/', 1)[-1]}: " + _issue_lines(
            [{"expression": [i.expression], "diagnostics": i.message} for i in found]))
    return f"{saved['ref']} conforms to {profile.rsplit('/', 1)[-1]}"


@check("search")
def search(ctx: Context) -> str | None:
    """GET [base]/[type]?params → a searchset Bundle holding the `include`d resources and none of `exclude`.
    With `declared`, the test applies only when the CapabilityStatement declares that search parameter."""
    rtype = ctx.param("type")
    declared = ctx.param("declared", None)
    if declared and declared not in declared_search_params(capability_statement(ctx), rtype):
        raise CheckSkipped(f"the CapabilityStatement declares no {rtype}?{declared} search parameter")
    query = ctx.fill(ctx.param("query"))
    url: str | None = rtype
    found: set[str] = set()
    pages = 0
    while url and pages < MAX_PAGES:
        reply = ctx.target.request("GET", url, params=query if pages == 0 else None, headers={"Accept": FHIR_JSON})
        ok(reply)
        bundle = resource(reply, "Bundle")
        if bundle.get("type") != "searchset":
            raise CheckFailed(f"a search answered a Bundle of type {bundle.get('type')!r}, not 'searchset'")
        for entry in bundle.get("entry") or []:
            res = entry.get("resource") or {}
            if res.get("resourceType") == rtype and (entry.get("search") or {}).get("mode", "match") == "match":
                found.add(f"{rtype}/{res.get('id')}")
        url = next((ln.get("url") for ln in bundle.get("link") or [] if ln.get("relation") == "next"), None)
        pages += 1
    shown = "&".join(f"{k}={v}" for k, v in query.items())
    missing = [ctx.saved(k)["ref"] for k in ctx.param("include", []) if ctx.saved(k)["ref"] not in found]
    if missing:
        raise CheckFailed(f"{rtype}?{shown} did not find {', '.join(missing)} (found {len(found)} match(es))")
    wrong = [ctx.saved(k)["ref"] for k in ctx.param("exclude", []) if ctx.saved(k)["ref"] in found]
    if wrong:
        raise CheckFailed(f"{rtype}?{shown} also matched {', '.join(wrong)}, which the search excludes")
    return f"{rtype}?{shown}: {len(found)} match(es), the expected ones included"


@check("reject")
def reject(ctx: Context) -> str | None:
    """POST of a resource that breaks its profile (or base FHIR) → 4xx with an OperationOutcome. When the
    server accepts it, the failure quotes the project's validator on why it should not have."""
    rtype = ctx.param("type")
    res = ctx.fixture(ctx.param("fixture"))
    reply = ctx.target.request("POST", rtype, json=res, headers={"Accept": FHIR_JSON})
    if 200 <= reply.status < 300:
        why = errors({"issue": [{"severity": i.severity, "expression": [i.expression], "diagnostics": i.message}
                                for i in ctx.validator().validate(res, ctx.param("profiles", []))]})
        raise CheckFailed(f"the server accepted an invalid {rtype} ({reply.status}); it breaks: " + _issue_lines(why))
    doc = outcome(reply, 400, 499)
    return f"{reply.status}: " + _issue_lines(errors(doc), 1)
