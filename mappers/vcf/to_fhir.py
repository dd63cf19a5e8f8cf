"""VCF → FHIR R4 (Genomics Reporting IG 3.0.0), streaming: one sample's called variants become Variant
Observations, phased pairs become sequence-phase-relationship Observations, and a genomic-report
DiagnosticReport (with GenomicStudy/GenomicStudyAnalysis and the BED files) ties them together.

Memory stays flat however long the input: records are read, converted and handed on one at a time; only the
16-byte ids of the results (for DiagnosticReport.result) and the open phase sets are kept.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import orjson

from mappers.conversion import Conversion as BaseConversion
from mappers.exceptions import Issue, LimitExceeded, ParseError
from mappers.toolkit.provenance import converter_device, provenance
from mappers.vcf import notes, reference
from mappers.vcf.bgzf import ReadAt
from mappers.vcf.context import MAPPER_VERSION, Context, Options, Summary, gc_paused
from mappers.vcf.counts import allele_counts
from mappers.vcf.emit import report as emit
from mappers.vcf.emit.variant import Site, id_text, sequence_kind, variant, variant_id
from mappers.vcf.index import header_lines, parse_index, query, region_lines
from mappers.vcf.model import Genotype, Header, Record
from mappers.vcf.parse import INT32, genotype, integers, iter_lines, parse_record, read_header, reals
from mappers.vcf.regions import Regions
from mappers.vcf.roles import TUMOUR
from mappers.vcf.serialize import bundle_json
from mappers.vcf.unmapped import Unmapped, record_class

GVCF_ALTS = {"<NON_REF>", "<*>"}
MAX_OPEN_PHASE_SETS = 4096  # per chromosome; the oldest set is closed beyond this
_COPY_NUMBER_KINDS = {"DEL", "DUP", "CNV"}  # symbolic alleles a copy number (FORMAT CN) can stand for
_VERBATIM = frozenset({"FORMAT/GT", "FORMAT/AD", "INFO/CIPOS", "INFO/CIEND"})  # kept verbatim when present


@dataclass(slots=True)
class _Plan:
    """What one record becomes: its ALT alleles to convert, with kind, SO code and span, and how it was called:
    'genotype' (GT), 'somatic' (a tumour sample of a caller that writes no GT, e.g. Strelka) or 'copy-number'
    (no call, but FORMAT CN: the copy number is kept as a CNV)."""

    gt: Genotype | None
    items: list[tuple[int, str, tuple[str, str], Site]]
    mode: str


class Converter:
    """Read the header at once (errors surface before any output), then stream resources.

    Iterate `resources()` to the end, then call `report()` and `result_refs()` for the DiagnosticReport.
    Raises ParseError / UnsupportedMessage (mappers.exceptions) for input it cannot convert; UnsupportedMessage
    at the end of resources() when records were read but none could be mapped to a variant; LimitExceeded past a
    limit of Options (size, lines, samples, max_variants).
    `origins`: also record, in self.origins, the source line of every resource (Conversion.origins); off by
    default, as a stream of millions of variants would keep one entry each.
    """

    def __init__(self, lines: Iterable[bytes], options: Options | None = None,
                 regions: Mapping[str, Regions] | None = None, *, relative_refs: bool = False,
                 numbered: bool = True, origins: bool = False) -> None:
        self.options = options = options or Options()
        self.regions = dict(regions or {})
        self._lines = iter(lines)
        self.header: Header = read_header(self._lines, options.sample, options)
        self._numbered = numbered
        self.origins: dict[str, str] | None = {} if origins else None
        digest = hashlib.sha256()
        for part in (*(f"{k}={v}" for k, v in self.header.meta), *self.header.samples):
            digest.update(part.encode() + b"\0")
        self._source_digest = digest.hexdigest()  # names the input in a Provenance
        for part in (*options.key_parts(), *(f"{r.role}:{r.sha1}" for r in self.regions.values())):
            digest.update(part.encode() + b"\0")
        if options.sample is None and self.header.role:  # the sample the header picked is part of the key
            digest.update(f"sample={self.header.sample}".encode() + b"\0")
        assembly = options.assembly or self.header.assembly
        self.ctx = Context(options, digest.hexdigest(), assembly, relative_refs)
        self.ctx.genomic_source = options.genomic_source or ("somatic" if self.header.role == TUMOUR else None)
        self._somatic_calls = self.header.role == TUMOUR
        self._unmapped = Unmapped()
        self._first_invalid: str | None = None  # the first malformed record skipped in lenient mode
        notes.assembly(self.ctx, self.header)
        notes.samples(self.ctx, self.header)
        self._patient = emit.patient(self.ctx, self.header)
        self.ctx.subject = self.ctx.ref("Patient", self._patient["id"])
        self._specimen = emit.specimen(self.ctx, self.header)
        self.ctx.specimen = self.ctx.ref("Specimen", self._specimen["id"])
        columns = f"line {self.header.chrom_line} (sample column {self.header.sample})"
        self._origin(self._patient["id"], "patient option" if options.patient else columns)
        self._origin(self._specimen["id"], columns)
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

    def _origin(self, key: str, where: str | None) -> None:
        if self.origins is not None and where:
            self.origins[key] = where

    def _each(self, emit_resources: bool) -> Iterator[list[dict[str, Any]]]:
        """The resources of each record (nothing when it is skipped; not built when `emit_resources` is
        False). Malformed records raise ParseError, or in lenient mode are skipped and counted."""
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
            except ParseError as e:  # the input itself ends badly (a truncated gzip member); limits pass through
                if not lenient or e.issues[0].details != "vcf-truncated":
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
                plan = self._plan(rec)
                if plan is None:
                    continue
                if emit_resources:
                    out = self._emit(rec, plan)
                else:
                    self._read_counts(rec, plan)  # the values _emit reads, so a bad one fails here as there
                    summary.converted += 1
                    summary.variants += len(plan.items)
                    out = []
            except ParseError as e:
                if not lenient:
                    raise
                summary.skipped["invalid-record"] += 1
                first = e.issues[0]
                if self._first_invalid is None:
                    self._first_invalid = f"{first.expression}: {first.message}"
                self.ctx.issue("warning", first.details, f"record skipped: {first.message}", first.expression,
                               code="structure")
                continue
            yield out

    def resources(self) -> Iterator[dict[str, Any]]:
        """Patient, Specimen, then per record its Variants and phase relationships. closing() gives the BED
        files, GenomicStudyAnalysis, GenomicStudy (and Provenance); report() the DiagnosticReport."""
        yield self._patient
        yield self._specimen
        for out in self._each(True):
            yield from out
        self._finish()

    def validate(self) -> None:
        """Read the rest of the input checking every record as resources() would, emitting nothing.
        Raises the first ParseError (none in lenient mode) and, like resources(), UnsupportedMessage when no
        record maps to a variant: lets an HTTP stream fail before it starts."""
        for _ in self._each(False):
            pass
        self._finish()

    def _finish(self) -> None:
        self.ctx.issues.extend(self._unmapped.issues())
        self.ctx.close_issues()
        if not self.ctx.summary.variants:
            notes.nothing_converted(self.ctx, self.header, self._first_invalid)

    def closing(self) -> list[dict[str, Any]]:
        """The BED DocumentReferences, GenomicStudyAnalysis, GenomicStudy and, when the caller stated when
        (Options.recorded), the converter Device and the Provenance of the report (after resources())."""
        files = {role: emit.data_file(self.ctx, r) for role, r in self.regions.items()}
        analysis = emit.analysis(self.ctx, self.header, files, self.regions)
        self._study = emit.study(self.ctx, analysis)
        for role, doc in files.items():
            self._origin(doc["id"], f"BED file {self.regions[role].name} ({role})")
        self._origin(analysis["id"], "header")
        self._origin(self._study["id"], "header")
        if "performedDateTime" in analysis:
            self._origin(f"{analysis['id']}:performedDateTime", emit.file_date_where(self.header))
        out = [*files.values(), analysis, self._study]
        device = converter_device(MAPPER_VERSION)
        report_ref = {"id": emit.report_id(self.ctx)}
        sample = self.header.sample or ""
        name = f" {self.options.source_name}" if self.options.source_name else ""
        prov = provenance(("urn:helixgate:vcf-header-sha256", self._source_digest),
                          f"VCF {self.header.version} file{name}, sample {sample}", [report_ref], device,
                          self.options.recorded)
        if prov is not None:
            if self.ctx.relative_refs:  # NDJSON: references by type and id
                prov["target"] = [self.ctx.ref("DiagnosticReport", report_ref["id"])]
                for agent in prov["agent"]:
                    agent["who"] = self.ctx.ref("Device", device["id"])
            self._origin(device["id"], "recorded option")
            self._origin(prov["id"], "recorded option")
            out += [device, prov]
        return out

    def report(self) -> dict[str, Any]:
        """The DiagnosticReport without `result` (see result_refs)."""
        res = emit.report(self.ctx, self._study)
        self._origin(res["id"], "header")
        return res

    def result_refs(self) -> Iterator[dict[str, str]]:
        ids = self._results
        prefix = "Observation/" if self.ctx.relative_refs else "urn:uuid:"
        for i in range(0, len(ids), 16):
            yield {"reference": prefix + id_text(ids[i:i + 16])}

    # -- one record --------------------------------------------------------------------------------------

    def _plan(self, rec: Record) -> _Plan | None:
        """What `rec` becomes, or None and a counted reason when it is skipped. Everything that can fail is
        checked here, before anything is emitted, so a lenient skip is all or nothing."""
        skipped = self.ctx.summary.skipped
        conv = self.regions.get("convert")
        if conv is not None and not conv.overlaps(rec.chrom, rec.pos - 1, self._end(rec)):
            skipped["outside-conversion-region"] += 1
            return None
        # gVCF reference blocks, either convention: ALT '.' with END (Illumina gvcftools, Isaac, DRAGEN) or
        # only <NON_REF>/<*> (GATK, bcftools); whatever their FILTER, they hold no variant.
        if rec.alts == ["."]:
            skipped["gvcf-reference-block" if rec.end is not None else "no-alt"] += 1
            return None
        if all(a in GVCF_ALTS for a in rec.alts):
            skipped["gvcf-reference-block"] += 1
            return None
        if rec.filter not in ("PASS", ".") and not self.options.keep_filtered:
            skipped["filtered"] += 1
            return None
        gt = genotype(rec)
        if gt is not None and gt.called:
            present = sorted({a for a in gt.alleles if a})
            if not present:
                skipped["reference-genotype"] += 1
                return None
            mode = "genotype"
        elif gt is None and self._somatic_calls:
            # A somatic caller that writes no GT (Strelka): each record is its call of the ALT alleles in the
            # tumour, with read counts instead of a genotype (counts.py).
            present, mode = list(range(1, len(rec.alts) + 1)), "somatic"
        else:
            allele = _copy_number_allele(rec)
            if allele is None:
                skipped["no-genotype" if gt is None else "no-call"] += 1
                return None
            present, mode = [allele], "copy-number"
        items: list[tuple[int, str, tuple[str, str], Site]] = []
        reasons: list[str] = []
        for allele in present:
            reason, item = self._allele(rec, allele, rec.alts[allele - 1])
            if reason:
                reasons.append(reason)
            else:
                assert item is not None
                items.append(item)
        self.ctx.summary.alleles_skipped.update(reasons)
        if not items:
            skipped[reasons[0]] += 1
            return None
        return _Plan(gt, items, mode)

    def _end(self, rec: Record) -> int:
        """0-based exclusive end of the record's span (INFO END for symbolic alleles)."""
        end = rec.pos - 1 + len(rec.ref)
        if any(a.startswith("<") for a in rec.alts):
            end = max(end, self._sv_end(rec) or end)
        return end

    def _sv_end(self, rec: Record) -> int | None:
        if rec.end is not None:
            return rec.end
        svlen = rec.info.get("SVLEN", "").split(",")[0].lstrip("-+") if "SVLEN" in rec.info_raw else ""
        if not svlen:
            return None
        if not (svlen.isascii() and svlen.isdigit() and int(svlen[:12]) <= INT32):
            raise ParseError(f"INFO SVLEN {rec.info['SVLEN'][:20]!r} is not an integer from -2^31 to 2^31-1",
                             details="vcf-bad-info", expression=rec.where)
        return rec.pos + int(svlen)

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
                    raise ParseError(f"symbolic allele {alt[:40]} needs INFO END or SVLEN to place it",
                                     details="vcf-sv-without-end", expression=rec.where)
            return None, (allele, kind, so, Site(rec.pos - 1, end, _pair(rec, "CIPOS"), _pair(rec, "CIEND")))
        kind = sequence_kind(rec.ref, alt)
        so = reference.so_of_kind(kind)
        assert so is not None
        return None, (allele, kind, so, Site(rec.pos - 1, rec.pos - 1 + len(rec.ref)))

    @staticmethod
    def _read_counts(rec: Record, plan: _Plan) -> None:
        """Read the sample's numbers as _emit does (DP, CN, each allele's counts): raises their ParseError."""
        dp_list = integers(rec, "DP")
        dp = dp_list[0] if dp_list and len(dp_list) == 1 else None
        reals(rec, "CN")
        for allele, *_ in plan.items:
            allele_counts(rec, allele, dp)

    def _emit(self, rec: Record, plan: _Plan) -> list[dict[str, Any]]:
        ctx, summary, gt = self.ctx, self.ctx.summary, plan.gt
        used = set(_VERBATIM)
        dp_list = integers(rec, "DP")
        dp = dp_list[0] if dp_list and len(dp_list) == 1 else None
        if dp is not None:
            used.add("FORMAT/DP")
        cn_list = reals(rec, "CN")
        cn = cn_list[0] if cn_list and len(cn_list) == 1 else None
        if cn is not None:
            used.add("FORMAT/CN")
        if gt is not None and gt.phased:
            used.add("FORMAT/PS")
        source = ctx.genomic_source or ("somatic" if "SOMATIC" in rec.info else None)
        if source == "somatic":
            used.add("INFO/SOMATIC")
        if any(alt.startswith("<") for alt in rec.alts):
            used |= {"INFO/END", "INFO/SVLEN", "INFO/SVTYPE"}
        elif "END" in rec.info:
            used.add("INFO/END")
            if rec.end_ignored is not None:
                ctx.issue("warning", "vcf-end-ignored",
                          f"INFO END={rec.end_ignored} disagrees with REF, which spans {rec.pos}-"
                          f"{rec.pos + len(rec.ref) - 1}: END places symbolic alleles (VCF 4.3 §1.6.1), so the "
                          "variant is placed by POS and REF", rec.where, code="value")
        if plan.mode == "somatic" and not summary.somatic_calls:
            ctx.issue("information", "vcf-somatic-calls-without-gt",
                      f"records without GT are the caller's somatic calls in the tumour sample "
                      f"{(self.header.sample or '')[:40]}; allele fractions come from its read counts", rec.where)
        here = (rec.chrom, rec.pos)
        if here != self._here:
            self._here, self._seen_here = here, {}
        if rec.chrom != self._phase_chrom:
            self._phase_chrom, self._phase = rec.chrom, {}
        out: list[dict[str, Any]] = []
        for allele, kind, so, site in plan.items:
            alt = rec.alts[allele - 1]
            counts = allele_counts(rec, allele, dp)
            used |= counts.used
            occurrence = self._seen_here.get((rec.ref, alt), 0)
            self._seen_here[(rec.ref, alt)] = occurrence + 1
            rid, raw_id = variant_id(ctx, rec, alt, occurrence)
            digits = kind[2:]  # <CN3>: ASCII digits only (float('²') raises)
            copies = float(digits) if cn is None and kind[:2] == "CN" and digits.isascii() and digits.isdigit() else cn
            if plan.mode == "copy-number":
                so = reference.so_of_kind("CNV") or so
            out.append(variant(ctx, rec, gt, allele, so, site, counts.depth, dp, counts.fraction, copies, rid,
                               source))
            if self.origins is not None:
                self.origins[rid] = rec.where
            self._results += raw_id
            summary.variants += 1
            phase = self._phase_of(rec, gt, allele, rid) if gt is not None else None
            if phase is not None:
                phase_res, phase_raw = phase
                out.append(phase_res)
                self._origin(phase_res["id"], f"{rec.where} (FORMAT/GT, FORMAT/PS)")
                self._results += phase_raw
                summary.phase_relationships += 1
        summary.converted += 1
        if plan.mode == "somatic":
            summary.somatic_calls += 1
        elif plan.mode == "copy-number":
            summary.copy_number_calls += 1
        first = plan.items[0]
        self._unmapped.note(record_class(first[1], rec.alts[first[0] - 1].startswith("<"),
                                         plan.mode == "copy-number"), rec, frozenset(used))
        limit = self.options.max_variants
        if limit is not None and summary.variants > limit:
            raise LimitExceeded(f"more than {limit} variants: too many for one Bundle; ask for NDJSON "
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


def _copy_number_allele(rec: Record) -> int | None:
    """The ALT a no-call record's FORMAT CN stands for: its only ALT when that is a DEL/DUP/CNV/<CNn>
    symbolic allele, else the <CNn> whose n is the copy number, else <CNV>."""
    cn = rec.sample("CN")
    if cn is None:
        return None
    kinds = [a[1:-1].split(":")[0] if a.startswith("<") else "" for a in rec.alts]
    able = [i for i, k in enumerate(kinds, 1) if k in _COPY_NUMBER_KINDS or re.fullmatch(r"CN\d+", k)]
    if not able:
        return None
    if len(rec.alts) == 1:
        return 1
    return next((i for i in able if rec.alts[i - 1] == f"<CN{cn}>"), None) or next(
        (i for i in able if rec.alts[i - 1] == "<CNV>"), None)


def _pair(rec: Record, key: str) -> tuple[int, int] | None:
    text = rec.info.get(key) if key in rec.info_raw else None
    if not text:
        return None
    parts = text.split(",")
    if not all(_SIGNED.fullmatch(p) for p in parts) or any(abs(int(p)) > INT32 for p in parts):
        raise ParseError(f"INFO {key} {text[:30]!r} is not two integers", details="vcf-bad-info",
                         expression=rec.where)
    return int(parts[0]), int(parts[-1])


_SIGNED = re.compile(r"[+-]?[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class Conversion(BaseConversion):
    """A converted VCF held in memory: the Bundle, the conversion report and the counts."""

    summary: Summary = field(default_factory=Summary)


def summary_issue(summary: Summary) -> Issue:
    return Issue("information", "informational", "vcf-summary", summary.text())


def to_fhir(data: bytes | Iterable[bytes], options: Options | None = None,
            regions: Mapping[str, Regions] | None = None) -> Conversion:
    """Convert a whole VCF (bytes or byte chunks, plain or gzipped) to one Bundle in memory.

    Raises ParseError / UnsupportedMessage / LimitExceeded. For large inputs use Converter with ndjson() or
    bundle_json()."""
    chunks = [data] if isinstance(data, bytes | bytearray) else data
    conv = Converter(iter_lines(chunks, options), options, regions, origins=True)
    body = b"".join(bundle_json(conv))
    with gc_paused():
        bundle = orjson.loads(body)
    return Conversion(bundle, (*conv.issues, summary_issue(conv.summary)), conv.origins or {},
                      summary=conv.summary)


def indexed_lines(read_at: ReadAt, index_data: bytes, regions: Regions) -> Iterator[bytes]:
    """Header lines, then only the records the index places in `regions`, of a bgzipped VCF read through
    `read_at` (the caller's random access to the file). Feed to Converter(..., numbered=False)."""
    index = parse_index(index_data)
    header = list(header_lines(read_at))
    by_norm = {reference.normalise_chrom(n): n for n in index.names}
    wanted = [(by_norm[c], s, e) for c, s, e in regions.queries() if c in by_norm]
    return chain(header, region_lines(read_at, query(index, wanted)))
