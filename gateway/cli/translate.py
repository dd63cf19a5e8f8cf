"""helixgate translate: the FHIR ConceptMap $translate the HTTP route serves, from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from gateway.cache import make_cache
from gateway.cli import status
from gateway.settings import Settings, SettingsError
from gateway.terminology_routes import MapNotFound, TranslateQuery, query_from_pairs, translate_cached
from mappers.exceptions import MappingError
from mappers.terminology import conceptmap, conceptmap_ids

SUMMARY = "translate a code through the shipped ConceptMaps (FHIR $translate)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help=SUMMARY, description=SUMMARY + ". Exit 0 when translated, 1 when not.")
    p.add_argument("--code", help="the code to translate")
    p.add_argument("--system", help="its code system, e.g. urn:oid:2.16.156.10011.2.3.3.11")
    p.add_argument("--url", help="the ConceptMap's canonical url or id (default: every map from --system)")
    p.add_argument("--target", help="target ValueSet (the map's targetUri)")
    p.add_argument("--targetsystem", help="only translations into this code system")
    p.add_argument("--reverse", action="store_true", help="translate from the maps' targets back to their sources")
    p.add_argument("--json", action="store_true", help="print the Parameters resource instead of one line a match")
    p.add_argument("--xml", action="store_true", help="print the Parameters resource in FHIR XML")
    p.add_argument("--list", action="store_true", help="list the ConceptMaps and exit")
    p.set_defaults(run=run)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for map_id in conceptmap_ids():
            cm = conceptmap(map_id)
            print(f"{map_id}\t{cm.get('url', '')}\t{cm.get('title', '')}")
        return status.OK
    if not args.code:
        _err("helixgate translate: --code is required (or --list)")
        return status.USAGE
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        _err(f"helixgate: {e}")
        return status.USAGE
    pairs: list[tuple[str, Any]] = [("code", args.code)]
    for name in ("system", "url", "target", "targetsystem"):
        if getattr(args, name):
            pairs.append((name, getattr(args, name)))
    if args.reverse:
        pairs.append(("reverse", "true"))
    try:
        query = query_from_pairs(pairs)
        out = asyncio.run(_translate(query, settings))
    except MappingError as e:
        for issue in e.issues:
            _err(f"helixgate translate: {issue.message}")
        return status.USAGE if e.issues[0].details in ("translate-missing-system", "translate-missing-code") \
            else status.INPUT_REJECTED
    except MapNotFound as e:
        _err(f"helixgate translate: {e.detail}")
        return status.INPUT_REJECTED
    params = out["parameter"]
    result = next(p["valueBoolean"] for p in params if p["name"] == "result")
    if args.xml:
        from profiles.packages import PackageError
        from profiles.xmlwrite import json_to_xml

        try:
            sys.stdout.buffer.write(json_to_xml(out) + b"\n")
        except PackageError as e:
            _err(f"helixgate translate: FHIR XML needs the R4 core definitions ({e}); use --json")
            return status.INPUT_REJECTED
    elif args.json:
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        for m in (p for p in params if p["name"] == "match"):
            parts = {x["name"]: x for x in m["part"]}
            c = parts["concept"]["valueCoding"]
            display = f" {c['display']}" if c.get("display") else ""
            print(f"{parts['equivalence']['valueCode']}\t{c['system']}|{c['code']}{display}\t"
                  f"{parts['source']['valueUri']}")
    message = next((p["valueString"] for p in params if p["name"] == "message"), None)
    if message:
        _err(message)
    return status.OK if result else status.INPUT_REJECTED


async def _translate(query: TranslateQuery, settings: Settings) -> dict[str, Any]:
    cache = make_cache(settings.redis_url, settings.cache_ttl_seconds, settings.cache_max_entries)
    try:
        out, _ = await translate_cached(query, cache)
        return out
    finally:
        await cache.close()
