"""REST semantics the facade guarantees whatever the upstream does (FHIR R4 http.html, search.html):

- `Prefer: return=minimal | representation | OperationOutcome` on create, update and patch (http.html#ops);
- ETag (`W/"versionId"`) and Last-Modified from the resource's meta when the upstream sends none (http.html#versioning);
- `_summary` (true, text, data, count) and `_elements` applied when the upstream ignored them, the result marked
  SUBSETTED (search.html#summary, #elements);
- searchset `self` link always, and an OperationOutcome entry (search.mode = outcome) when the upstream gave no
  `next` link but the page may not be the last (search.html#paging: a client must not take it for the whole set).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import orjson

log = logging.getLogger("helixgate.facade")
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}
_ALWAYS = ("resourceType", "id", "meta")  # kept by every subset (search.html#elements: plus mandatory elements)
DEFAULT_PAGE = 20  # a page of this many matches without a next link may be followed by more


def prefer_return(header: str | None) -> str | None:
    """The `return` preference of a Prefer header (RFC 7240): minimal, representation, OperationOutcome or None."""
    for part in (header or "").split(","):
        for token in part.split(";"):
            name, _, value = token.strip().partition("=")
            if name.strip().lower() == "return":
                value = value.strip().strip('"')
                if value in ("minimal", "representation", "OperationOutcome"):
                    return value
    return None


def information(text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": text}]}


def version_headers(resource: Any, headers: dict[str, str]) -> None:
    """ETag and Last-Modified from `resource.meta` where `headers` (lower-case names) lack them."""
    meta = resource.get("meta") if isinstance(resource, dict) else None
    if not isinstance(meta, dict):
        return
    vid = meta.get("versionId")
    if "etag" not in headers and isinstance(vid, str) and vid and '"' not in vid:
        headers["etag"] = f'W/"{vid}"'
    updated = meta.get("lastUpdated")
    if "last-modified" not in headers and isinstance(updated, str):
        with contextlib.suppress(ValueError):  # not an instant: no header rather than a wrong one
            headers["last-modified"] = format_datetime(datetime.fromisoformat(updated.replace("Z", "+00:00")),
                                                       usegmt=True)


@functools.lru_cache(maxsize=256)
def _element_flags(rtype: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) at the top level of `rtype`, from the R4 core StructureDefinition
    (ElementDefinition.isSummary, .min); empty when the core package is not installed."""
    from profiles.packages import cache_dir

    path = cache_dir() / "hl7.fhir.r4.core#4.0.1" / "package" / f"StructureDefinition-{rtype}.json"
    try:
        sd = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        log.warning("no R4 definition of %s: _summary cannot be applied to it", rtype[:64])
        return frozenset(), frozenset()
    summary, mandatory = set(), set()
    for el in (sd.get("snapshot") or {}).get("element") or []:
        parts = str(el.get("path", "")).split(".")
        if len(parts) != 2:
            continue
        name = parts[1].removesuffix("[x]")
        if el.get("isSummary"):
            summary.add(name)
        if (el.get("min") or 0) > 0:
            mandatory.add(name)
    return frozenset(summary), frozenset(mandatory)


def _keep(resource: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    """The resource with only `wanted` top-level elements (a choice name keeps every valueX; `_x` follows x)."""
    def kept(key: str) -> bool:
        name = key[1:] if key.startswith("_") else key
        return name in wanted or any(name.startswith(w) and name[len(w):][:1].isupper() for w in wanted)

    out = {k: v for k, v in resource.items() if k in _ALWAYS or kept(k)}
    meta = dict(out.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(t.get("code") == "SUBSETTED" for t in tags if isinstance(t, dict)):
        meta["tag"] = [*tags, SUBSETTED]
    out["meta"] = meta
    return out


def subset(resource: dict[str, Any], summary: str | None, elements: list[str] | None) -> dict[str, Any]:
    """`resource` as `_summary`/`_elements` ask; unchanged when they ask for the whole."""
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or rtype in ("Bundle", "OperationOutcome"):
        return resource
    if elements:
        _, mandatory = _element_flags(rtype)
        return _keep(resource, {e.split(".", 1)[0] for e in elements} | set(mandatory))
    if summary == "true":
        flags, mandatory = _element_flags(rtype)
        return _keep(resource, set(flags) | set(mandatory)) if flags else resource
    if summary == "text":
        _, mandatory = _element_flags(rtype)
        return _keep(resource, {"text"} | set(mandatory))
    if summary == "data" and "text" in resource:
        return _keep(resource, set(resource) - {"text", "_text"})
    return resource


def subset_query(params: Any) -> tuple[str | None, list[str] | None]:
    """(`_summary`, `_elements`) of a request's query (None when absent or 'false')."""
    summary = params.get("_summary")
    raw = params.get("_elements")
    elements = [e.strip() for e in raw.split(",") if e.strip()] if raw else None
    return (summary if summary and summary != "false" else None), elements


def shape_searchset(bundle: dict[str, Any], self_url: str, summary: str | None, elements: list[str] | None,
                    count: int | None) -> dict[str, Any]:
    """A searchset (or history) Bundle with `self` present, subsets applied to its matches, and an outcome entry
    when the page may be incomplete without a `next` link to say so."""
    links = [ln for ln in bundle.get("link") or [] if isinstance(ln, dict)]
    if not any(ln.get("relation") == "self" for ln in links):
        links.insert(0, {"relation": "self", "url": self_url})
    bundle["link"] = links
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    if summary == "count":
        bundle.pop("entry", None)
        return bundle
    if summary or elements:
        for e in entries:
            if isinstance(e.get("resource"), dict) and (e.get("search") or {}).get("mode", "match") != "outcome":
                e["resource"] = subset(e["resource"], summary, elements)
    relations = {ln.get("relation") for ln in links}
    matches = sum(1 for e in entries if (e.get("search") or {}).get("mode", "match") == "match")
    total = bundle.get("total")
    if "next" not in relations:
        first_page = "previous" not in relations and "prev" not in relations
        short = isinstance(total, int) and first_page and total > matches
        full = total is None and matches >= (count or DEFAULT_PAGE)
        if short or full:
            why = (f"total is {total} but this first page holds {matches}" if short
                   else f"this page is full ({matches} matches) and the bundle gives no total")
            entries.append({"resource": {"resourceType": "OperationOutcome", "issue": [{
                "severity": "warning", "code": "incomplete",
                "diagnostics": f"the upstream server gave no 'next' link, yet {why}: the results may be incomplete; "
                               "narrow the search or page with _count/_offset"}]},
                "search": {"mode": "outcome"}})
            bundle["entry"] = entries
    return bundle
