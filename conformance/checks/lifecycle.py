"""Checks of the rest of a resource's life on a FHIR server (R4 http.html): update with versions, patch,
history, search by POST, paging to the last page, delete and the 410 after it. Each applies only when the
CapabilityStatement declares the interaction (`declared`), so a server is held to what it announces."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from conformance.checks.capability import capability_statement, declared_resource, server_rest
from conformance.checks.expect import FHIR_JSON, ok, resource
from conformance.context import Context
from conformance.exceptions import CheckFailed, CheckSkipped
from conformance.registry import check

MAX_PAGES = 20


def _declared(ctx: Context, rtype: str | None) -> None:
    """Skips the test unless the CapabilityStatement declares the interaction `declared` (for `rtype`, or at the
    system level when `rtype` is None)."""
    code = ctx.param("declared")
    cs = capability_statement(ctx)
    if rtype is None:
        codes = {i.get("code") for i in server_rest(cs).get("interaction") or []}
    else:
        try:
            codes = {i.get("code") for i in declared_resource(cs, rtype).get("interaction") or []}
        except CheckFailed:
            codes = set()
    if code not in codes:
        raise CheckSkipped(f"the CapabilityStatement does not declare {code}" + (f" for {rtype}" if rtype else ""))


def _version(reply: Any, doc: dict[str, Any]) -> str | None:
    return (doc.get("meta") or {}).get("versionId") or (reply.headers.get("etag") or "").removeprefix(
        "W/").strip('"') or None


@check("update")
def update(ctx: Context) -> str | None:
    """PUT [base]/[type]/[id] with a change → 200 (or 201), a new version, and the change when read back."""
    saved = ctx.saved(ctx.param("key"))
    _declared(ctx, saved["type"])
    before = ctx.target.request("GET", saved["ref"], headers={"Accept": FHIR_JSON})
    ok(before)
    doc = resource(before, saved["type"])
    changed = {**doc, **ctx.param("change")}
    reply = ctx.target.request("PUT", saved["ref"], json=changed, headers={"Accept": FHIR_JSON})
    ok(reply, 200, 201)
    after = ctx.target.request("GET", saved["ref"], headers={"Accept": FHIR_JSON})
    ok(after)
    got = resource(after, saved["type"])
    for key, value in ctx.param("change").items():
        if got.get(key) != value:
            raise CheckFailed(f"{saved['ref']} read back after the update has {key}={got.get(key)!r}, not {value!r}")
    old, new = _version(before, doc), _version(after, got)
    if old and new and old == new:
        raise CheckFailed(f"the update kept version {old}: R4 servers give every update a new versionId")
    return f"{saved['ref']} updated (version {old} → {new})"


@check("patch")
def patch(ctx: Context) -> str | None:
    """PATCH [base]/[type]/[id] with a JSON Patch (RFC 6902) → 200, and the change when read back."""
    saved = ctx.saved(ctx.param("key"))
    _declared(ctx, saved["type"])
    ops = ctx.param("json_patch")
    reply = ctx.target.request("PATCH", saved["ref"], content=orjson.dumps(ops),
                               headers={"Content-Type": "application/json-patch+json", "Accept": FHIR_JSON})
    ok(reply, 200, 204)
    got = resource(ctx.target.request("GET", saved["ref"], headers={"Accept": FHIR_JSON}), saved["type"])
    for op in ops:
        key = op["path"].strip("/")
        if op["op"] in ("add", "replace") and got.get(key) != op["value"]:
            raise CheckFailed(f"after the patch {saved['ref']} has {key}={got.get(key)!r}, not {op['value']!r}")
    return f"{saved['ref']} patched ({len(ops)} operation(s))"


@check("history-instance")
def history_instance(ctx: Context) -> str | None:
    """GET [base]/[type]/[id]/_history → a history Bundle with at least `min` versions, newest first."""
    saved = ctx.saved(ctx.param("key"))
    _declared(ctx, saved["type"])
    reply = ctx.target.request("GET", f"{saved['ref']}/_history", headers={"Accept": FHIR_JSON})
    ok(reply)
    bundle = resource(reply, "Bundle")
    if bundle.get("type") != "history":
        raise CheckFailed(f"the history is a Bundle of type {bundle.get('type')!r}, not 'history'")
    versions = [e.get("resource") for e in bundle.get("entry") or [] if isinstance(e.get("resource"), dict)]
    if len(versions) < ctx.param("min", 1):
        raise CheckFailed(f"{saved['ref']} has {len(versions)} version(s) in its history; expected at least "
                          f"{ctx.param('min', 1)}")
    stamps = [(v.get("meta") or {}).get("lastUpdated") or "" for v in versions]
    if all(stamps) and stamps != sorted(stamps, reverse=True):
        raise CheckFailed("the history is not newest first (http.html#history)")
    return f"{len(versions)} version(s), newest first"


@check("search-post")
def search_post(ctx: Context) -> str | None:
    """POST [base]/[type]/_search with form parameters → the same searchset as the GET."""
    rtype = ctx.param("type")
    _declared(ctx, rtype)
    query = ctx.fill(ctx.param("query"))
    reply = ctx.target.request("POST", f"{rtype}/_search", content=urlencode(query).encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": FHIR_JSON})
    ok(reply)
    bundle = resource(reply, "Bundle")
    found = {f"{rtype}/{(e.get('resource') or {}).get('id')}" for e in bundle.get("entry") or []}
    missing = [ctx.saved(k)["ref"] for k in ctx.param("include", []) if ctx.saved(k)["ref"] not in found]
    if missing:
        raise CheckFailed(f"POST {rtype}/_search did not find {', '.join(missing)}")
    return f"{len(found)} match(es) by POST"


@check("paging")
def paging(ctx: Context) -> str | None:
    """A search with `_count` small enough to need several pages: every page has a self link, `next` links are
    followed to the last page on the server's own base, and the pages together hold the expected matches once."""
    rtype = ctx.param("type")
    _declared(ctx, rtype)
    base = ctx.target.base
    url: str | None = rtype
    query: dict[str, str] | None = {**ctx.fill(ctx.param("query")), "_count": str(ctx.param("count", 1))}
    seen: list[str] = []
    pages = 0
    while url and pages < MAX_PAGES:
        reply = ctx.target.request("GET", url, params=query, headers={"Accept": FHIR_JSON})
        ok(reply)
        bundle = resource(reply, "Bundle")
        links = {ln.get("relation"): ln.get("url") for ln in bundle.get("link") or []}
        if not links.get("self"):
            raise CheckFailed(f"page {pages + 1} has no self link (search.html#paging)")
        seen += [f"{rtype}/{(e.get('resource') or {}).get('id')}" for e in bundle.get("entry") or []
                 if (e.get("search") or {}).get("mode", "match") == "match"]
        url, query = links.get("next"), None
        if url and urlsplit(url).netloc != urlsplit(base).netloc:
            raise CheckFailed(f"the next link leaves the server: {urlsplit(url).netloc} (the base is "
                              f"{urlsplit(base).netloc})")
        pages += 1
    wanted = [ctx.saved(k)["ref"] for k in ctx.param("include", [])]
    if pages < 2:
        raise CheckFailed(f"{len(seen)} match(es) came on one page although _count was {ctx.param('count', 1)}: "
                          "no next link")
    if sorted(set(seen)) != sorted(seen) or not set(wanted) <= set(seen):
        raise CheckFailed(f"the pages held {seen}; expected each of {wanted} once")
    return f"{pages} pages followed to the last, {len(seen)} match(es)"


@check("delete")
def delete(ctx: Context) -> str | None:
    """DELETE [base]/[type]/[id] → 200/202/204; a read afterwards → 410 Gone (or 404 where the server keeps no
    record of deletions, which the test reports)."""
    saved = ctx.saved(ctx.param("key"))
    _declared(ctx, saved["type"])
    reply = ctx.target.request("DELETE", saved["ref"], headers={"Accept": FHIR_JSON})
    ok(reply, 200, 204)
    after = ctx.target.request("GET", saved["ref"], headers={"Accept": FHIR_JSON})
    if after.status == 410:
        return f"{saved['ref']} deleted; read → 410 Gone"
    if after.status == 404:
        if ctx.param("gone", True):
            raise CheckFailed(f"{saved['ref']} was deleted, but a read answers 404, not 410 Gone (http.html#read)")
        return f"{saved['ref']} deleted; read → 404"
    raise CheckFailed(f"after the delete, a read of {saved['ref']} answers {after.describe()}")
