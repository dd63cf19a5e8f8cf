"""VCF → FHIR R4 (Genomics Reporting IG 3.0.0), streaming: one sample's called variants become Variant
Observations, phased pairs become sequence-phase-relationship Observations, and a genomic-report
DiagnosticReport (with GenomicStudy/GenomicStudyAnalysis and the BED files) ties them together.

Memory stays flat however long the input: records are read, converted and handed on one at a time; only the
16-byte ids of the results (for DiagnosticReport.result) and the open phase sets are kept.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import orjson

from mappers.conversion import Conversion as BaseConversion
from mappers.exceptions import Issue, ParseError, UnsupportedMessage
from mappers.vcf import reference
from mappers.vcf.bgzf import ReadAt
from mappers.vcf.context import Context, Options, Summary, gc_paused
from mappers.vcf.emit import report as emit
from mappers.vcf.emit.variant import Site, id_text, sequence_kind, variant, variant_id
from mappers.vcf.index import header_lines, parse_index, query, region_lines
from mappers.vcf.model import Genotype, Header, Record
from mappers.vcf.parse import genotype, iter_lines, numbers, parse_record, read_header
from mappers.vcf.regions import Regions
from mappers.vcf.serialize import bundle_json

GVCF_ALTS = {"<NON_REF>", "<*>"}
MAX_OPEN_PHASE_SETS = 4096  # per chromosome; the oldest set is closed beyond this


class Converter:
    """Read the header at once (errors surface before any output), then stream resources.

    Iterate `resources()` to the end, then call `report()` and `result_refs()` for the DiagnosticReport.
    Raises ParseError / UnsupportedMessage (mappers.exceptions) for input it cannot convert.
    """

    def __init__(self, lines: Iterable[bytes], options: Options | None = None,
                 regions: Mapping[str, Regions] | None = None, *, relative_refs: bool = False,
                 numbered: bool = True) -> None:
        self.options = options = options or Options()
        self.regions = dict(regions or {})
        self._lines = iter(lines)
        self.header: Header = read_header(self._lines, options.sample)
        self._numbered = numbered
        digest = hashlib.sha256()
        for part in (*(f"{k}={v}" for k, v in self.header.meta), *self.header.samples, *options.key_parts(),
                     *(f"{r.role}:{r.sha1}" for r in self.regions.values())):
            digest.update(part.encode() + b"\0")
        assembly = options.assembly or self.header.assembly
        self.ctx = Context(options, digest.hexdigest(), assembly, relative_refs)
        self._check_assembly()
        self._patient = emit.patient(self.ctx, self.header)
        self.ctx.subject = self.ctx.ref("Patient", self._patient["id"])
        self._specimen = emit.specimen(self.ctx, self.header)
        self.ctx.specimen = self.ctx.ref("Specimen", self._specimen["id"])
        self._results = bytearray()  # 16-byte UUIDs of every result Observation, in order
        self._phase: dict[str, tuple[str, int]] = {}
        self._phase_chrom = ""
        self._here: tuple[str, int] = ("", -1)
        self._seen_here: dict[tuple[str, str], int] = {}

    @property
    def summary(self) -> Summary:
        return self.ctx.summary

    @property
    def issues(self) -> list[Issue]:
        return self.ctx.issues

    def _check_assembly(self) -> None:
        opt, hdr = self.options.assembly, self.header.assembly
        if opt and hdr and opt != hdr:
            self.ctx.issue("warning", "vcf-assembly-override",
                           f"the header says {hdr} ({self.header.assembly_evidence}); converted as {opt} as asked",
                           "header", code="business-rule")
        elif hdr and not opt:
            self.ctx.issue("information", "vcf-assembly-from-header",
                           f"assembly {hdr} from {self.header.assembly_evidence}", "header")
        elif not opt and not hdr:
            self.ctx.issue("warning", "vcf-assembly-unknown",
                           "the header names no assembly (##reference, ##contig assembly/length); variants carry "
                           "contig names instead of RefSeq accessions: pass --assembly GRCh37|GRCh38",
                           "header", code="incomplete")

    def resources(self) -> Iterator[dict[str, Any]]:
        """Patient, Specimen, then per record its Variants and phase relationships, then the BED files and the
        GenomicStudyAnalysis and GenomicStudy. The DiagnosticReport comes from report()."""
        yield self._patient
        yield self._specimen
        header, lenient = self.header, self.options.lenient
        ncols = 8 + (1 + len(header.samples) if header.samples else 0)
        number = header.chrom_line
        summary = self.ctx.summary
        lines = self._lines
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                break
            except ParseError as e:  # the input itself ends badly (a truncated gzip member)
                if not lenient:
                    raise
                summary.skipped["truncated-input"] += 1
                self.ctx.issue("warning", e.issues[0].details, f"reading stopped: {e.issues[0].message}",
                               f"line {number + 1}" if self._numbered else "end of input", code="incomplete")
                break
            number += 1
            if not raw:
                continue
            where = f"line {number}" if self._numbered else None
            summary.records += 1
            try:
                if raw[:1] == b"#":
                    raise ParseError("a header line comes after the #CHROM line", details="vcf-misplaced-header",
                                     expression=where or "header")
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ParseError("the record is not UTF-8 text", details="vcf-not-utf8",
                                     expression=where or "record") from None
                rec = parse_record(line, number if self._numbered else None, header, ncols)
                out = self._record(rec)
            except ParseError as e:
                if not lenient:
                    raise
                summary.skipped["invalid-record"] += 1
                first = e.issues[0]
                self.ctx.issue("warning", first.details, f"record skipped: {first.message}", first.expression,
                               code="structure")
                continue
            yield from out
        self.ctx.close_issues()

    def closing(self) -> list[dict[str, Any]]:
        """The BED DocumentReferences, GenomicStudyAnalysis and GenomicStudy (after resources())."""
        files = {role: emit.data_file(self.ctx, r) for role, r in self.regions.items()}
        analysis = emit.analysis(self.ctx, self.header, files, self.regions)
        self._study = emit.study(self.ctx, analysis)
        return [*files.values(), analysis, self._study]

    def report(self) -> dict[str, Any]:
        """The DiagnosticReport without `result` (see result_refs)."""
        return emit.report(self.ctx, self._study)

    def result_refs(self) -> Iterator[dict[str, str]]:
        ids = self._results
        prefix = "Observation/" if self.ctx.relative_refs else "urn:uuid:"
        for i in range(0, len(ids), 16):
            yield {"reference": prefix + id_text(ids[i:i + 16])}

    # -- one record --------------------------------------------------------------------------------------

    def _record(self, rec: Record) -> list[dict[str, Any]]:
        """Variants (and phase relationships) of one record; [] and a counted reason when it is skipped.
        Everything that can fail is checked before anything is returned, so a lenient skip is all or nothing."""
        planned = self._plan(rec)
        return self._emit(rec, *planned) if planned else []

    def validate(self) -> None:
        """Read the rest of the input checking every record as resources() would, emitting nothing.
        Raises the first ParseError (none in lenient mode): lets an HTTP stream fail before it starts."""
        header = self.header
        ncols = 8 + (1 + len(header.samples) if header.samples else 0)
        number = header.chrom_line
        for raw in self._lines:
            number += 1
            if not raw:
                continue
            where = f"line {number}" if self._numbered else "record"
            try:
                if raw[:1] == b"#":
                    raise ParseError("a header line comes after the #CHROM line", details="vcf-misplaced-header",
                                     expression=where)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ParseError("the record is not UTF-8 text", details="vcf-not-utf8",
                                     expression=where) from None
                self._plan(parse_record(line, number if self._numbered else None, header, ncols))
            except ParseError:
                if not self.options.lenient:
                    raise

    def _plan(self, rec: Record) -> tuple[Genotype, list[tuple[int, str, tuple[str, str], Site]]] | None:
        skipped = self.ctx.summary.skipped
        opts = self.options
        conv = self.regions.get("convert")
        if conv is not None and not conv.overlaps(rec.chrom, rec.pos - 1, self._end(rec)):
            skipped["outside-conversion-region"] += 1
            return None
        if rec.filter not in ("PASS", ".") and not opts.keep_filtered:
            skipped["filtered"] += 1
            return None
        if rec.alts == ["."]:
            skipped["no-alt"] += 1
            return None
        if all(a in GVCF_ALTS for a in rec.alts):
            skipped["gvcf-reference-block"] += 1
            return None
        gt = genotype(rec)
        if gt is None:
            skipped["no-genotype"] += 1
            return None
        if not gt.called:
            skipped["no-call"] += 1
            return None
        present = sorted({a for a in gt.alleles if a})
        if not present:
            skipped["reference-genotype"] += 1
            return None
        plan: list[tuple[int, str, tuple[str, str], Site]] = []
        reasons: list[str] = []
        for allele in present:
            alt = rec.alts[allele - 1]
            reason, item = self._allele(rec, allele, alt)
            if reason:
                reasons.append(reason)
            else:
                assert item is not None
                plan.append(item)
        self.ctx.summary.alleles_skipped.update(reasons)
        if not plan:
            skipped[reasons[0]] += 1
            return None
        return gt, plan

    def _end(self, rec: Record) -> int:
        """0-based exclusive end of the record's span (INFO END for symbolic alleles)."""
        end = rec.pos - 1 + len(rec.ref)
        if any(a.startswith("<") for a in rec.alts):
            end = max(end, self._sv_end(rec) or end)
        return end

    def _sv_end(self, rec: Record) -> int | None:
        info = rec.info
        if "END" in info:
            return int(info["END"])  # checked by parse_record
        svlen = info.get("SVLEN", "").split(",")[0].lstrip("-")
        return rec.pos + int(svlen) if svlen.isdigit() else None

    def _allele(self, rec: Record, allele: int, alt: str) -> tuple[str | None, tuple[int, str, tuple[str, str], Site]
                                                                | None]:
        if alt == "*":
            return "spanning-deletion", None
        if alt in GVCF_ALTS:
            return "gvcf-non-ref", None
        if "[" in alt or "]" in alt:
            return "breakend", None
        if alt.startswith("<"):
            kind = alt[1:-1]
            so = reference.so_of_kind(kind)
            if so is None:
                return "unsupported-symbolic-allele", None
            end = self._sv_end(rec)
            if end is None:
                if kind.startswith("INS"):
                    end = rec.pos + len(rec.ref) - 1
                else:
                    raise ParseError(f"symbolic allele {alt} needs INFO END or SVLEN to place it",
                                     details="vcf-sv-without-end", expression=rec.where)
            return None, (allele, kind, so, Site(rec.pos - 1, end, _pair(rec, "CIPOS"), _pair(rec, "CIEND")))
        kind = sequence_kind(rec.ref, alt)
        so = reference.so_of_kind(kind)
        assert so is not None
        return None, (allele, kind, so, Site(rec.pos - 1, rec.pos - 1 + len(rec.ref)))

    def _emit(self, rec: Record, gt: Genotype, plan: list[tuple[int, str, tuple[str, str], Site]]
              ) -> list[dict[str, Any]]:
        ctx, summary = self.ctx, self.ctx.summary
        nalts = len(rec.alts)
        depths = numbers(rec.sample("AD"))
        if depths is not None and len(depths) != nalts + 1:
            depths = None  # not Number=R (e.g. a caller's own AD layout): keep it verbatim only
        dp_list = numbers(rec.sample("DP"))
        dp = dp_list[0] if dp_list and len(dp_list) == 1 else None
        af = numbers(rec.sample("AF"))
        cn_list = numbers(rec.sample("CN"))
        cn = cn_list[0] if cn_list and len(cn_list) == 1 else None
        here = (rec.chrom, rec.pos)
        if here != self._here:
            self._here, self._seen_here = here, {}
        if rec.chrom != self._phase_chrom:
            self._phase_chrom, self._phase = rec.chrom, {}
        out: list[dict[str, Any]] = []
        for allele, kind, so, site in plan:
            alt = rec.alts[allele - 1]
            vaf = _fraction(af, depths, dp, allele, nalts)
            occurrence = self._seen_here.get((rec.ref, alt), 0)
            self._seen_here[(rec.ref, alt)] = occurrence + 1
            rid, raw_id = variant_id(ctx, rec, alt, occurrence)
            copies = float(kind[2:]) if cn is None and kind[:2] == "CN" and kind[2:].isdigit() else cn
            out.append(variant(ctx, rec, gt, allele, kind, so, site, depths, dp, vaf, copies, rid))
            self._results += raw_id
            summary.variants += 1
            phase = self._phase_of(rec, gt, allele, rid)
            if phase is not None:
                phase, phase_raw = phase
                out.append(phase)
                self._results += phase_raw
                summary.phase_relationships += 1
        summary.converted += 1
        limit = self.options.max_variants
        if limit is not None and summary.variants > limit:
            raise UnsupportedMessage(f"more than {limit} variants: too many for one Bundle; ask for NDJSON "
                                     "(Accept: application/fhir+ndjson, or --ndjson)", details="vcf-too-many-variants",
                                     expression=rec.where)
        return out

    def _phase_of(self, rec: Record, gt: Genotype, allele: int, rid: str) -> tuple[dict[str, Any], bytes] | None:
        """Link a phased heterozygous allele to the previous one of its phase set (PS; no PS = the
        chromosome): same haplotype → Cis, else Trans."""
        if not gt.phased or len(gt.alleles) < 2 or gt.alleles.count(allele) != 1:
            return None
        hap = gt.alleles.index(allele)
        phase_set = rec.sample("PS") or "*"
        prev = self._phase.pop(phase_set, None)
        self._phase[phase_set] = (rid, hap)
        if len(self._phase) > MAX_OPEN_PHASE_SETS:
            del self._phase[next(iter(self._phase))]
        if prev is None:
            return None
        res = emit.phase_relationship(self.ctx, prev[0], rid, prev[1] == hap)
        return res, uuid.UUID(res["id"]).bytes


def _pair(rec: Record, key: str) -> tuple[int, int] | None:
    text = rec.info.get(key) if key in rec.info_raw else None
    if not text:
        return None
    parts = text.split(",")
    try:
        lo, hi = int(parts[0]), int(parts[-1])
    except ValueError:
        raise ParseError(f"INFO {key} {text!r} is not two integers", details="vcf-bad-info",
                         expression=rec.where) from None
    return lo, hi


def _fraction(af: list[float | None] | None, depths: list[float | None] | None, dp: float | None, allele: int,
              nalts: int) -> float | None:
    """The sample's allele fraction: FORMAT AF (Number=A), else AD[allele]/DP, else AD[allele]/sum(AD).
    INFO AF is a cohort frequency and never used."""
    if af is not None:
        value = af[allele - 1] if len(af) == nalts else af[allele] if len(af) == nalts + 1 else None
        if value is not None:
            return value
    if depths is None or depths[allele] is None:
        return None
    if dp:
        return min(depths[allele] / dp, 1.0)
    total = sum(d for d in depths if d is not None)
    return depths[allele] / total if total else None


@dataclass(frozen=True, slots=True)
class Conversion(BaseConversion):
    """A converted VCF held in memory: the Bundle, the conversion report and the counts."""

    summary: Summary = field(default_factory=Summary)


def summary_issue(summary: Summary) -> Issue:
    return Issue("information", "informational", "vcf-summary", summary.text())


def to_fhir(data: bytes | Iterable[bytes], options: Options | None = None,
            regions: Mapping[str, Regions] | None = None) -> Conversion:
    """Convert a whole VCF (bytes or byte chunks, plain or gzipped) to one Bundle in memory.

    Raises ParseError / UnsupportedMessage. For large inputs use Converter with ndjson() or bundle_json()."""
    chunks = [data] if isinstance(data, bytes | bytearray) else data
    conv = Converter(iter_lines(chunks), options, regions)
    body = b"".join(bundle_json(conv))
    with gc_paused():
        bundle = orjson.loads(body)
    return Conversion(bundle, (*conv.issues, summary_issue(conv.summary)), summary=conv.summary)


def indexed_lines(read_at: ReadAt, index_data: bytes, regions: Regions) -> Iterator[bytes]:
    """Header lines, then only the records the index places in `regions`, of a bgzipped VCF read through
    `read_at` (the caller's random access to the file). Feed to Converter(..., numbered=False)."""
    index = parse_index(index_data)
    header = list(header_lines(read_at))
    by_norm = {reference.normalise_chrom(n): n for n in index.names}
    wanted = [(by_norm[c], s, e) for c, s, e in regions.queries() if c in by_norm]
    return chain(header, region_lines(read_at, query(index, wanted)))
