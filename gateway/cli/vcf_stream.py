"""helixgate convert for large VCFs: streamed from the file to the output, never whole in memory, not cached, with
BED regions (and a tabix/CSI index beside the file) and progress on stderr. NDJSON output is validated resource by
resource as it streams; smaller inputs without these options take the ordinary path (one validated Bundle)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from gateway.cli import output, status
from gateway.formats import HUB
from gateway.formats import Request as ConvertRequest
from gateway.stream import validated_lines
from mappers import vcf
from mappers.exceptions import Issue, MappingError, operation_outcome
from mappers.toolkit.registry import ConvertOptions
from mappers.vcf.format import options as vcf_options

_PRETTY_LIMIT = 1 << 20  # inputs up to 1 MiB get one validated, indented Bundle like the other formats


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("large VCF input (streamed; a .tbi/.csi beside it speeds up --bed-convert)")
    g.add_argument("--bed-convert", metavar="BED", help="convert only variants overlapping these regions")
    g.add_argument("--bed-studied", metavar="BED", help="regions studied (GenomicStudyAnalysis regions)")
    g.add_argument("--bed-uncallable", metavar="BED", help="uncallable regions (GenomicStudyAnalysis regions)")
    g.add_argument("--ndjson", action="store_true", help="write NDJSON (one resource per line) instead of a Bundle")
    g.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")


def wanted(args: argparse.Namespace) -> bool:
    """A VCF to FHIR with streaming options, or a VCF file too large for one in-memory Bundle."""
    if args.target not in (None, HUB) or args.source not in (None, "vcf"):
        return False
    streamed = args.ndjson or args.bed_convert or args.bed_studied or args.bed_uncallable
    if args.input == "-":
        return bool(streamed) and (args.source == "vcf" or vcf.format.sniff(sys.stdin.buffer.peek(64)[:64]))
    with Path(args.input).open("rb") as f:
        is_vcf = args.source == "vcf" or vcf.format.sniff(f.read(64))
    return is_vcf and bool(streamed or Path(args.input).stat().st_size > _PRETTY_LIMIT)


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


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def run(args: argparse.Namespace, opts: ConvertOptions, validator: Any) -> int:
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
    conv = None
    extra: list[Issue] = []
    try:
        options = dataclasses.replace(vcf_options(opts), source_name=None if stdin else Path(name).name)
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
        with output.target(args.output) as out:
            if args.ndjson:
                request = ConvertRequest("vcf", HUB, opts, args.allow_invalid)
                pieces = vcf.ndjson(conv)
                for piece in validated_lines(next(pieces, b""), pieces, validator, request, raise_errors=True):
                    out.write(piece)
            else:
                for piece in vcf.bundle_json(conv):
                    out.write(piece)
                out.write(b"\n")
                extra.append(Issue("warning", "informational", "output-not-validated",
                                   "a Bundle streamed from a large VCF is not validated; --ndjson validates each "
                                   "resource as it streams"))
    except MappingError as e:
        progress.close()
        for issue in e.issues:
            where = f" at {issue.expression}" if issue.expression else ""
            _err(f"helixgate: {name}: {issue.severity}{where}: {issue.message}")
        if conv is not None:
            _err(f"helixgate: {name}: stopped after {conv.summary.text()}")
        return status.INPUT_REJECTED
    except OSError as e:  # the index, or -o
        if isinstance(e, BrokenPipeError):
            raise
        progress.close()
        _err(f"helixgate: cannot use {e.filename or name}: {e.strerror}")
        return status.INPUT_REJECTED
    finally:
        if not stdin:
            src.close()
    progress.close()
    issues = (*conv.issues, *extra, vcf.summary_issue(conv.summary))
    if args.report:
        output.write(args.report, orjson.dumps(operation_outcome(issues), option=orjson.OPT_INDENT_2))
    for i in issues:
        if i.details != "vcf-summary" and (args.verbose or i.severity in ("warning", "error")):
            _err(f"{i.severity}{' ' + i.expression if i.expression else ''}: {i.message}")
    _err(f"helixgate: {name}: {conv.summary.text()}")
    return status.OK
