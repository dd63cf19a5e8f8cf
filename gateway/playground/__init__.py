"""The web playground: a page served by the gateway to paste or upload a message, convert it, see the FHIR output
with its validation issues and conversion report, the reverse conversion beside the original, `$validate` against a
chosen profile and `$translate`.

Static files shipped in the package (no CDN, no network) under a strict Content-Security-Policy: scripts and styles
from this origin only, nothing inline, connections to this origin only. The page holds no data; everything it shows
comes from the gateway's own API with the caller's credentials (an API key or bearer token typed into the page and
kept in the tab's sessionStorage), so authorization is the API's: a caller without the scopes sees the API's 401/403.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.responses import outcome_response
from mappers.toolkit.registry import HUB, registry

STATIC = Path(__file__).with_name("static")
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
          "index.html": "text/html; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


async def page(request: Request) -> Response:
    return Response(_asset("index.html"), media_type=ASSETS["index.html"], headers=HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS or name == "index.html":
        return outcome_response(404, "not-found", "no-such-asset", "the playground has no such file; it is served "
                                "at /playground/")
    return Response(_asset(name), media_type=ASSETS[name], headers=HEADERS)


@cache
def catalogue() -> bytes:
    """What the page offers: the registry's formats with their options, the shipped ConceptMaps and the installed
    profiles (constraints on resources), so a new format or package shows up without touching the page."""
    from mappers.terminology import conceptmap, conceptmap_ids

    formats = [{"name": f.name, "title": f.title, "reads": f.to_fhir is not None, "writes": f.from_fhir is not None,
                "mediaType": f.media_types[0] if f.media_types else f.media_type,
                "options": [{"name": o.name, "help": o.help, "choices": list(o.choices), "flag": o.flag}
                            for o in f.options]}
               for f in registry().values()]
    maps = []
    for map_id in conceptmap_ids():
        cm = conceptmap(map_id)
        group = (cm.get("group") or [{}])[0]
        maps.append({"id": map_id, "url": cm.get("url"), "title": cm.get("title") or cm.get("name") or map_id,
                     "source": group.get("source"), "target": group.get("target"),
                     "codes": [e.get("code") for e in group.get("element", [])[:200] if e.get("code")]})
    return orjson.dumps({"hub": HUB, "formats": formats, "conceptMaps": maps, "profiles": _profiles()})


def _profiles() -> list[dict[str, Any]]:
    from profiles.packages import PackageError, closure, installed
    from profiles.packages.index import conformance_resources

    out = {}
    try:
        for sd in conformance_resources(closure(installed()), ("StructureDefinition",)):
            if sd.get("kind") == "resource" and sd.get("derivation") == "constraint" and sd.get("url"):
                out[sd["url"]] = {"url": sd["url"], "title": sd.get("title") or sd.get("name") or sd["url"],
                                  "type": sd.get("type")}
    except PackageError:  # unreadable packages: the page still converts (the API says what is missing)
        return []
    return sorted(out.values(), key=lambda p: (p["type"] or "", p["title"]))


async def catalogue_route(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    return Response(await run_in_threadpool(catalogue), media_type="application/json",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


async def slash(request: Request) -> Response:
    return RedirectResponse("/playground/", status_code=308)


routes = [
    Route("/playground", slash, methods=["GET"]),
    Route("/playground/", page, methods=["GET"]),
    Route("/playground/catalogue.json", catalogue_route, methods=["GET"]),
    Route("/playground/{name:str}", asset, methods=["GET"]),
]
