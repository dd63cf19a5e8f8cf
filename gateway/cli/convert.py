"""helixgate convert: the same conversion the HTTP route performs, from a file or stdin."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.cache import make_cache
from gateway.cli import status
from gateway.convert import convert
from gateway.formats import CONVERTERS, Request, detect, resolve
from gateway.settings import Settings, SettingsError, check_timezone
from mappers import vcf
from mappers.exceptions import MappingError, operation_outcome

SUMMARY = "convert between FHIR (Genomics Reporting IG 3.0.0) and HL7 v2, VCF, China WS/T 500 CDA and WS 445"
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
    g = p.add_argument_group("VCF input (plain or bgzipped; a .tbi/.csi beside it speeds up --bed-convert)")
    g.add_argument("--sample", help="sample column to convert (default: the first)")
    g.add_argument("--source", dest="genomic_source", choices=("germline", "somatic"), help="genomic source class")
    g.add_argument("--sex", choices=("male", "female", "other", "unknown"),
                   help="patient sex; male makes X/Y calls outside the PARs hemizygous")
    g.add_argument("--patient", metavar="[SYSTEM|]ID", help="patient identifier (default: the sample name)")
    g.add_argument("--assembly", choices=("GRCh37", "GRCh38"), help="reference assembly (default: from the header)")
    g.add_argument("--lenient", action="store_true", help="skip and count malformed records instead of failing")
    g.add_argument("--keep-filtered", action="store_true", help="also convert records whose FILTER is not PASS")
    g.add_argument("--bed-convert", metavar="BED", help="convert only variants overlapping these regions")
    g.add_argument("--bed-studied", metavar="BED", help="regions studied (GenomicStudyAnalysis regions)")
    g.add_argument("--bed-uncallable", metavar="BED", help="uncallable regions (GenomicStudyAnalysis regions)")
    g.add_argument("--ndjson", action="store_true", help="write NDJSON (one resource per line) instead of a Bundle")
    g.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")
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
        if args.source == "vcf" or (args.source is None and args.target in (None, "fhir") and _is_vcf(args.input)):
            return _run_vcf(args)
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


# -- VCF: streamed from the file to the output, never whole in memory, not cached ----------------------------

_PRETTY_LIMIT = 1 << 20  # inputs up to 1 MiB get an indented Bundle, like the other conversions; larger stream


def _is_vcf(path: str) -> bool:
    if path == "-":
        return detect(sys.stdin.buffer.peek(64)[:64]) == "vcf"
    with Path(path).open("rb") as f:
        return detect(f.read(64)) == "vcf"


class _Progress:
    """A one-line progress report on stderr, redrawn at most 5 times a second."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self.total, self.enabled, self.done, self.started, self.shown = total, enabled, 0, time.monotonic(), 0.0
        self.summary: vcf.Summary | None = None

    def chunks(self, read: Callable[[], bytes]) -> Iterator[bytes]:
        for chunk in iter(read, b""):
            self.done += len(chunk)
            self.tick()
            yield chunk

    def tick(self) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.shown < 0.2:
            return
        self.shown = now
        records = self.summary.records if self.summary else 0
        pct = f"{100 * self.done / self.total:5.1f}% " if self.total else ""
        rate = records / max(now - self.started, 1e-9)
        sys.stderr.write(f"\r{pct}{records:,} records, {rate:,.0f}/s ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.shown:
            sys.stderr.write("\n")


def _run_vcf(args: argparse.Namespace) -> int:
    """VCF → FHIR: BEDs and the index read here; the mapper gets byte chunks (or an index reader)."""
    stdin = args.input == "-"
    name = "stdin" if stdin else args.input
    regions = {}
    for role, path in (("convert", args.bed_convert), ("studied", args.bed_studied),
                       ("uncallable", args.bed_uncallable)):
        if path:
            try:
                regions[role] = vcf.parse_bed(Path(path).read_bytes(), Path(path).name, role)
            except OSError as e:
                _err(f"helixgate: cannot read {path}: {e.strerror}")
                return status.INPUT_REJECTED
            except MappingError as e:
                _err(f"helixgate: {path}: error at {e.issues[0].expression}: {e.issues[0].message}")
                return status.INPUT_REJECTED
    src = sys.stdin.buffer if stdin else open(args.input, "rb")  # noqa: SIM115 - closed below
    total = None if stdin else os.fstat(src.fileno()).st_size
    progress = _Progress(total, args.progress or (sys.stderr.isatty() and (total or 0) > 16 << 20))
    out = None
    conv = None
    try:
        options = vcf.Options(args.sample, args.genomic_source, args.sex, args.patient, args.assembly, args.lenient,
                              args.keep_filtered, args.bundle_type, source_name=None if stdin else Path(name).name,
                              received=datetime.now(UTC))
        index = next((p for p in (f"{name}.tbi", f"{name}.csi") if not stdin and Path(p).is_file()), None)
        if index and "convert" in regions:  # read only the blocks the index places in the conversion region
            fd = src.fileno()
            lines = vcf.indexed_lines(lambda off, n: os.pread(fd, n, off), Path(index).read_bytes(),
                                      regions["convert"])
            conv = vcf.Converter(lines, options, regions, relative_refs=args.ndjson, numbered=False)
        else:
            chunks = progress.chunks(lambda: src.read(1 << 20))
            conv = vcf.Converter(vcf.iter_lines(chunks), options, regions, relative_refs=args.ndjson)
        progress.summary = conv.summary
        out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115 - closed below
        if args.ndjson:
            for piece in vcf.ndjson(conv):
                out.write(piece)
        elif total is not None and total <= _PRETTY_LIMIT:
            body = b"".join(vcf.bundle_json(conv))
            with vcf.gc_paused():
                out.write(orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n")
        else:
            for piece in vcf.bundle_json(conv):
                out.write(piece)
            out.write(b"\n")
        out.flush()
    except MappingError as e:
        progress.close()
        for issue in e.issues:
            where = f" at {issue.expression}" if issue.expression else ""
            _err(f"helixgate: {name}: {issue.severity}{where}: {issue.message}")
        if conv is not None:
            _err(f"helixgate: {name}: stopped after {conv.summary.text()}")
        if out is not None and args.output:  # no half-written file left behind
            out.close()
            Path(args.output).unlink(missing_ok=True)
        return status.INPUT_REJECTED
    except BrokenPipeError:  # e.g. piped into head
        return status.OK
    except OSError as e:  # the index, or -o
        progress.close()
        _err(f"helixgate: cannot use {e.filename or name}: {e.strerror}")
        return status.INPUT_REJECTED
    finally:
        if not stdin:
            src.close()
        if out is not None and args.output:
            out.close()
    progress.close()
    issues = (*conv.issues, vcf.summary_issue(conv.summary))
    outcome = operation_outcome(issues)
    if args.report:
        Path(args.report).write_bytes(orjson.dumps(outcome, option=orjson.OPT_INDENT_2))
    for i in issues:
        if i.details != "vcf-summary" and (args.verbose or i.severity in ("warning", "error")):
            _err(f"{i.severity}{' ' + i.expression if i.expression else ''}: {i.message}")
    _err(f"helixgate: {name}: {conv.summary.text()}")
    return status.OK
