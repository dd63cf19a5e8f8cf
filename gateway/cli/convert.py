"""helixgate convert: the conversion the HTTP route performs, from a file or stdin, for every format of the
registry. A batch file (several documents, e.g. HL7 v2 FHS/BHS … BTS/FTS) gives NDJSON: one Bundle a line, or an
OperationOutcome line for a document that could not be converted."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway.cache import make_cache
from gateway.cli import output, status, vcf_stream
from gateway.convert import convert
from gateway.formats import HUB, Converted, Request, format_params, names, resolve, validates_fhir
from gateway.settings import Settings, SettingsError, check_timezone
from mappers.exceptions import Issue, MappingError, operation_outcome
from mappers.toolkit.fhirtime import is_instant
from mappers.toolkit.registry import ConvertOptions, get, registry

SUMMARY = "convert between FHIR (Genomics Reporting IG 3.0.0) and the formats of the registry"


def add_parser(sub: argparse._SubParsersAction) -> None:
    formats = "; ".join(f"{f.name}: {f.title}" for f in registry().values())
    p = sub.add_parser("convert", help=SUMMARY, description=f"{SUMMARY}. Formats: {formats}.")
    p.add_argument("input", help="input file, or - for stdin")
    p.add_argument("--from", dest="source", choices=names("read"), help="source format (default: detected)")
    p.add_argument("--to", dest="target", choices=names("write"),
                   help="target format (default: fhir; name it for FHIR input)")
    p.add_argument("-o", "--output", help="write the result here instead of stdout (replaced only on success)")
    p.add_argument("--bundle-type", choices=("collection", "transaction"), default="collection",
                   help="FHIR Bundle type; transaction uses conditional create on business identifiers")
    p.add_argument("--report", metavar="FILE", help="write the conversion report (OperationOutcome JSON) to FILE")
    p.add_argument("--timezone", metavar="+HH:MM", help="time zone assumed for source times that carry none")
    p.add_argument("--recorded", metavar="INSTANT",
                   help="Provenance.recorded for sources without a time of their own (e.g. 2026-01-01T00:00:00Z)")
    p.add_argument("--allow-invalid", action="store_true",
                   help="write output that fails validation, with its errors in the report (default: refuse it)")
    p.add_argument("-v", "--verbose", action="store_true", help="list information issues too, not only warnings")
    for fmt in registry().values():
        if not fmt.options:
            continue
        g = p.add_argument_group(f"{fmt.name} options")
        for o in fmt.options:
            kw: dict[str, Any] = {"dest": f"opt_{o.name}", "help": o.help}
            if o.flag:
                kw["action"] = "store_true"
            else:
                kw.update(choices=o.choices or None, metavar=o.metavar)
            g.add_argument(o.cli, *o.aliases, **kw)
    vcf_stream.add_arguments(p)
    p.set_defaults(run=run)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _params(args: argparse.Namespace) -> list[tuple[str, str]]:
    out = []
    for fmt in registry().values():
        for o in fmt.options:
            value = getattr(args, f"opt_{o.name}", None)
            if value:
                out.append((o.name, "true" if value is True else str(value)))
    return out


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        tz = check_timezone(args.timezone, "--timezone") if args.timezone else settings.v2_timezone
        if args.recorded and not is_instant(args.recorded):
            raise SettingsError(f"--recorded {args.recorded!r} must be a FHIR instant, e.g. 2026-01-01T00:00:00Z")
    except SettingsError as e:
        _err(f"helixgate: {e}")
        return status.USAGE
    name = "stdin" if args.input == "-" else args.input
    try:
        if vcf_stream.wanted(args):
            return vcf_stream.run(args, _options(args, tz, "vcf", HUB), _validator(args))
        data = sys.stdin.buffer.read() if args.input == "-" else Path(args.input).read_bytes()
    except OSError as e:
        _err(f"helixgate: cannot read {args.input}: {e.strerror}")
        return status.INPUT_REJECTED
    except MappingError as e:
        return _rejected(name, e.issues)
    try:
        if not data.strip():
            _err(f"helixgate: {name} is empty")
            return status.INPUT_REJECTED
        source, target = resolve(data, args.source, args.target)
        options = _options(args, tz, source, target)
        split = get(source).split
        documents = split(data) if split else [("document 1", data)]
        validator = _validator(args) if validates_fhir(target) else None
        if len(documents) > 1:
            if target != HUB:
                _err(f"helixgate: {name} holds {len(documents)} documents; a batch converts to fhir (NDJSON)")
                return status.INPUT_REJECTED
            return _batch(args, name, documents, Request(source, target, options, args.allow_invalid), validator,
                          settings)
        result, _ = asyncio.run(_convert(data, Request(source, target, options, args.allow_invalid), validator,
                                         settings))
    except MappingError as e:
        return _rejected(name, e.issues)
    body = result.body
    if target == HUB:
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"
    output.write(args.output, body)
    if args.report:
        output.write(args.report, orjson.dumps(result.outcome, option=orjson.OPT_INDENT_2))
    _summarise(result.outcome, args.verbose)
    return status.OK


def _options(args: argparse.Namespace, tz: str | None, source: str, target: str) -> ConvertOptions:
    return ConvertOptions(args.bundle_type, tz, args.recorded, format_params(source, target, _params(args)))


def _validator(args: argparse.Namespace) -> Any:
    """The validator over the installed packages; None when they are missing (the conversion then says so)."""
    from profiles.context import default_validator
    from profiles.packages.exceptions import PackageError

    try:
        return default_validator()
    except PackageError:
        return None


def _rejected(name: str, issues: list[Issue] | tuple[Issue, ...]) -> int:
    for issue in issues:
        where = f" at {issue.expression}" if issue.expression else ""
        _err(f"helixgate: {name}: {issue.severity}{where}: {issue.message}")
    return status.INPUT_REJECTED


async def _convert(data: bytes, request: Request, validator: Any, settings: Settings) -> tuple[Converted, bool]:
    cache = make_cache(settings.redis_url, settings.cache_ttl_seconds, settings.cache_max_entries)
    try:
        return await convert(data, request, cache, validator)
    finally:
        await cache.close()


def _batch(args: argparse.Namespace, name: str, documents: list[tuple[str, bytes]], request: Request,
           validator: Any, settings: Settings) -> int:
    """One NDJSON line per document: its Bundle, or an OperationOutcome naming the document."""
    failed = 0
    report: list[dict[str, Any]] = []

    async def each() -> None:
        nonlocal failed
        cache = make_cache(settings.redis_url, settings.cache_ttl_seconds, settings.cache_max_entries)
        try:
            with output.target(args.output) as out:
                for where, doc in documents:
                    try:
                        result, _ = await convert(doc, request, cache, validator)
                        out.write(result.body + b"\n")
                        report.extend(_located(result.outcome.get("issue", []), where))
                    except MappingError as e:
                        failed += 1
                        outcome = operation_outcome([Issue(i.severity, i.code, i.details, f"{where}: {i.message}",
                                                           i.expression) for i in e.issues])
                        out.write(orjson.dumps(outcome) + b"\n")
                        report.extend(outcome["issue"])
                        _rejected(f"{name} {where}", e.issues)
        finally:
            await cache.close()

    asyncio.run(each())
    if args.report:
        output.write(args.report, orjson.dumps({"resourceType": "OperationOutcome", "issue": report},
                                               option=orjson.OPT_INDENT_2))
    _err(f"helixgate: {name}: {len(documents) - failed} of {len(documents)} documents converted")
    return status.INPUT_REJECTED if failed else status.OK


def _located(issues: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    out = []
    for i in issues:
        if i["details"]["coding"][0]["code"] == "ok":
            continue
        i = {**i, "details": {**i["details"], "text": f"{where}: {i['details']['text']}"}}
        out.append(i)
    return out


def _summarise(outcome: dict, verbose: bool) -> None:
    issues = [i for i in outcome.get("issue", []) if i["details"]["coding"][0]["code"] != "ok"]
    for i in issues:  # a format's summary line (e.g. VCF record counts) is always shown
        if verbose or i["severity"] in ("warning", "error") or i["details"]["coding"][0]["code"].endswith("-summary"):
            where = f" {i['expression'][0]}" if i.get("expression") else ""
            _err(f"{i['severity']}{where}: {i['details']['text']}")
    errors = sum(1 for i in issues if i["severity"] in ("error", "fatal"))
    warn = sum(1 for i in issues if i["severity"] == "warning")
    info = sum(1 for i in issues if i["severity"] == "information")
    counts = (f"{errors} error(s) (allowed by --allow-invalid), " if errors else "") + \
        f"{warn} warning(s), {info} information issue(s)"
    _err(f"converted: {counts}" + ("" if verbose else " (-v lists them)"))
