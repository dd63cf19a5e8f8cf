"""helixgate convert: the same conversion the HTTP route performs, from a file or stdin."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.cache import make_cache
from gateway.cli import status
from gateway.convert import convert
from gateway.formats import CONVERTERS, Request, resolve
from gateway.settings import Settings, SettingsError, check_timezone
from mappers.exceptions import MappingError

SUMMARY = "convert between HL7 v2 and FHIR (Genomics Reporting IG 3.0.0)"
FORMATS = sorted({f for pair in CONVERTERS for f in pair})


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help=SUMMARY, description=SUMMARY)
    p.add_argument("input", help="input file, or - for stdin")
    p.add_argument("--from", dest="source", choices=FORMATS, help="source format (default: detected)")
    p.add_argument("--to", dest="target", choices=FORMATS, help="target format (default: the other one)")
    p.add_argument("-o", "--output", help="write the result here instead of stdout")
    p.add_argument("--bundle-type", choices=("collection", "transaction"), default="collection",
                   help="FHIR Bundle type; transaction uses conditional create on business identifiers")
    p.add_argument("--report", metavar="FILE", help="write the conversion report (OperationOutcome JSON) to FILE")
    p.add_argument("--timezone", metavar="+HH:MM",
                   help="time zone assumed for HL7 v2 times that carry none (default: keep only their date)")
    p.add_argument("-v", "--verbose", action="store_true", help="list information issues too, not only warnings")
    p.set_defaults(run=run)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        tz = check_timezone(args.timezone, "--timezone") if args.timezone else settings.v2_timezone
    except SettingsError as e:
        _err(f"helixgate: {e}")
        return status.USAGE
    try:
        data = sys.stdin.buffer.read() if args.input == "-" else Path(args.input).read_bytes()
    except OSError as e:
        _err(f"helixgate: cannot read {args.input}: {e.strerror}")
        return status.INPUT_REJECTED
    name = "stdin" if args.input == "-" else args.input
    try:
        if not data.strip():
            _err(f"helixgate: {name} is empty")
            return status.INPUT_REJECTED
        source, target = resolve(data, args.source, args.target)
        request = Request(source, target, args.bundle_type, tz, datetime.now(UTC))
        result, _ = asyncio.run(_convert(data, request, settings))
    except MappingError as e:
        for issue in e.issues:
            where = f" at {issue.expression}" if issue.expression else ""
            _err(f"helixgate: {name}: {issue.severity}{where}: {issue.message}")
        return status.INPUT_REJECTED
    body = result.body
    if target == "fhir":
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"
    if args.output:
        Path(args.output).write_bytes(body)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    if args.report:
        Path(args.report).write_bytes(orjson.dumps(result.outcome, option=orjson.OPT_INDENT_2))
    _summarise(result.outcome, args.verbose)
    return status.OK


async def _convert(data: bytes, request: Request, settings: Settings):  # type: ignore[no-untyped-def]
    cache = make_cache(settings.redis_url, settings.cache_ttl_seconds, settings.cache_max_entries)
    try:
        return await convert(data, request, cache)
    finally:
        await cache.close()


def _summarise(outcome: dict, verbose: bool) -> None:
    issues = [i for i in outcome.get("issue", []) if i["details"]["coding"][0]["code"] != "ok"]
    shown = [i for i in issues if verbose or i["severity"] in ("warning", "error")]
    for i in shown:
        where = f" {i['expression'][0]}" if i.get("expression") else ""
        _err(f"{i['severity']}{where}: {i['details']['text']}")
    info = sum(1 for i in issues if (i["severity"] == "information" and i["code"] != "informational")
               or (i["severity"] == "information" and i["details"]["coding"][0]["code"] != "ok"))
    warn = sum(1 for i in issues if i["severity"] == "warning")
    _err(f"converted: {warn} warning(s), {info} information issue(s)" + ("" if verbose else " (-v lists them)"))
