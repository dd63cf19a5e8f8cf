"""Variant Observations (a Bundle, NDJSON, or a single resource) → VCF 4.2 of one sample.

Reads per Variant: genomic-ref-seq (48013-7) / chromosome (48000-4) / assembly (62374-4), coordinate-system
(92822-6) with exact-start-end (81254-5) or outer/inner-start-end (81301-4/81302-2), ref/alt (69547-8/69551-0),
coding-change-type (48019-4), variation-code (81252-9, dbSNP), allelic-state (53034-5), allelic frequency
(81258-6) and read depth (82121-5), copy number (82155-3), and the verbatim VCF fields (urn:helixgate:vcf) that
VCF → FHIR keeps, so GT/AD/DP/ALT/ID/FILTER/QUAL come back exactly. Variants from other sources (e.g. HL7 v2)
get GT from allelic-state and AD from read depth. Positions are shifted from any coordinate system to 1-based.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from mappers.exceptions import EmitError, Issue, ParseError, operation_outcome
from mappers.fhir.genomics import upgrade
from mappers.fhir.shape import check_resource
from mappers.vcf import reference
from mappers.vcf.context import MAPPER_VERSION, gc_paused
from mappers.vcf.emit import DBSNP, LOINC, REFSEQ, SAMPLE_SYSTEM, VCF_SYSTEM

# coordinate system -> what to add to `low` and `high` for 1-based POS and (inclusive) END
ONE_BASED = {"LA30102-0": (0, 0), "LA30100-4": (1, 0), "LA30101-2": (1, 1)}
GT_OF_STATE = {"LA6705-3": "1/1", "LA6706-1": "0/1", "LA6707-9": "1", "LA6704-6": "1", "LA6703-8": "0/1"}
NOT_CALLED = {"LA9634-2", "LA18198-4", "LA11884-6"}  # Absent, No call, Indeterminate
ALT_DESCRIPTIONS = {"DEL": "Deletion", "DUP": "Duplication", "DUP:TANDEM": "Tandem duplication",
                    "INV": "Inversion", "INS": "Insertion", "INS:ME": "Mobile element insertion",
                    "CNV": "Copy number variable region"}
FORMATS = (
    ("GT", '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">'),
    ("AD", '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths for the ref and alt alleles">'),
    ("DP", '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">'),
    ("PS", '##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">'),
    ("AF", '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction of the sample (FHIR 81258-6)">'),
    ("CN", '##FORMAT=<ID=CN,Number=1,Type=Float,Description="Copy number (FHIR 82155-3)">'),
)
INFOS = (
    ("SVTYPE", '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">'),
    ("END", '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the variant">'),
    ("CIPOS", '##INFO=<ID=CIPOS,Number=2,Type=Integer,Description="Confidence interval around POS">'),
    ("CIEND", '##INFO=<ID=CIEND,Number=2,Type=Integer,Description="Confidence interval around END">'),
)


@dataclass(frozen=True, slots=True)
class VcfOutput:
    data: bytes
    issues: tuple[Issue, ...]

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


@dataclass(slots=True)
class _Row:
    chrom: str  # normalised
    contig: str | None  # a contig name to keep as spelled (non-primary contigs)
    pos: int
    ref: str
    alt: str
    all_alts: str | None
    fields: dict[str, str] = field(default_factory=dict)  # FORMAT key -> value
    info: dict[str, str] = field(default_factory=dict)
    id: str = "."
    qual: str = "."
    filter: str = "PASS"


def resources_of(data: bytes) -> list[dict[str, Any]]:
    """The resources of a Bundle, of NDJSON (one per line), or a single resource. Raises ParseError."""
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        if doc.get("resourceType") == "Bundle":
            check_resource(doc, "Bundle")  # JSON types of what is read, before reading it (mappers.fhir.shape)
            return [e["resource"] for e in doc.get("entry", []) if isinstance(e, dict) and "resource" in e]
        if "resourceType" in doc:
            return [doc]
    if doc is not None:
        raise ParseError("expected a FHIR Bundle, NDJSON or a resource", details="fhir-not-bundle")
    out = []
    for n, line in enumerate(text.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            res = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise ParseError(f"NDJSON line {n} is not JSON: {e}", details="bad-json", expression=f"line {n}") from None
        if not isinstance(res, dict) or "resourceType" not in res:
            raise ParseError(f"NDJSON line {n} is not a FHIR resource", details="fhir-not-resource",
                             expression=f"line {n}")
        out.append(res)
    return out


def _code(cc: dict[str, Any] | None, system: str | None = None) -> str | None:
    for c in (cc or {}).get("coding", []):
        if system is None or c.get("system") == system:
            return c.get("code")
    return None


def is_variant(res: dict[str, Any]) -> bool:
    return res.get("resourceType") == "Observation" and (
        any(p.endswith("/variant") for p in res.get("meta", {}).get("profile", []))
        or _code(res.get("code"), LOINC) == "69548-6")


class _Builder:
    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.assemblies: set[str] = set()
        self.subjects: set[str] = set()

    def warn(self, details: str, message: str, where: str) -> None:
        self.issues.append(Issue("warning", "value", details, message, where))

    def row(self, obs: dict[str, Any], where: str) -> _Row | None:
        if obs.get("status") == "entered-in-error" or _code(obs.get("valueCodeableConcept")) in NOT_CALLED:
            self.issues.append(Issue("information", "informational", "vcf-variant-not-called",
                                     "variant is not reported as present; not written", where))
            return None
        comps: dict[str, list[dict[str, Any]]] = {}
        verbatim: dict[str, Any] = {}
        for c in obs.get("component", []):
            coding = (c.get("code", {}).get("coding") or [{}])[0]
            if coding.get("system") == VCF_SYSTEM:
                verbatim[coding.get("code")] = next((c[k] for k in c if k.startswith("value")), None)
            else:
                comps.setdefault(coding.get("code", ""), []).append(c)

        def first(code: str) -> dict[str, Any] | None:
            return comps.get(code, [None])[0]

        chrom, contig, asm = self._location(first("48013-7"), first("48000-4"))
        asm_code = _code((first("62374-4") or {}).get("valueCodeableConcept"))
        asm = reference.assembly_of_loinc(asm_code or "") or asm
        if asm:
            self.assemblies.add(asm)
        if obs.get("subject", {}).get("reference"):
            self.subjects.add(obs["subject"]["reference"])
        ref = (first("69547-8") or {}).get("valueString")
        if chrom is None or not ref:
            self.warn("vcf-variant-not-located", "variant has no genomic-ref-seq/chromosome or no ref-allele; "
                      "not a VCF-like variant, not written", where)
            return None
        shift = ONE_BASED.get(_code((first("92822-6") or {}).get("valueCodeableConcept")) or "")
        if shift is None:
            shift = (0, 0)
            self.warn("vcf-coordinate-system-assumed", "no coordinate-system (92822-6); positions read as "
                      "1-based (LA30102-0)", where)
        exact, outer, inner = first("81254-5"), first("81301-4"), first("81302-2")
        alt = (first("69551-0") or {}).get("valueString")
        info: dict[str, str] = {}
        start, end = _bounds(exact)[0] if exact is not None else None, None
        if exact is None and (outer is not None or inner is not None):
            start, end = self._sv_span(outer, inner, verbatim, shift)
        if (exact is not None or outer is not None or inner is not None) and start is None:
            self.warn("vcf-variant-not-located", "the variant's start-end range states no start (or a structural "
                      "variant's no end); not written", where)
            return None
        if exact is not None:
            pos = start + shift[0]
        elif outer is not None or inner is not None:
            pos = start
            kind = reference.kind_of_so(_code((first("48019-4") or {}).get("valueCodeableConcept")) or "")
            if alt is None and verbatim.get("ALT") is None and kind is None:
                self.warn("vcf-sv-without-type", "structural variant without alt allele or SO change type; "
                          "not written", where)
                return None
            alt = alt or f"<{kind}>"
            info["SVTYPE"] = (kind or alt.strip("<>")).split(":")[0]
            info["END"] = str(end)
            for key in ("CIPOS", "CIEND"):
                if verbatim.get(f"INFO/{key}"):
                    info[key] = verbatim[f"INFO/{key}"]
        else:
            self.warn("vcf-variant-not-located", "variant has no exact-start-end nor outer/inner-start-end; "
                      "not written", where)
            return None
        if not alt:
            self.warn("vcf-variant-without-alt", "variant has no alt-allele; not written", where)
            return None
        position = _position(pos)
        if position is None or ("END" in info and _position(end) is None):
            self.warn("vcf-bad-position", f"the variant's position {str(pos)[:40]!r} (or its end) is not an "
                      f"integer from 0 to {MAX_POSITION} (VCF 4.3 §1.6.1, as BCF stores it); not written", where)
            return None
        row = _Row(chrom, contig, position, ref, alt, verbatim.get("ALT"), info=info)
        gt = verbatim.get("FORMAT/GT") or GT_OF_STATE.get(_code((first("53034-5") or {}).get(
            "valueCodeableConcept")) or "", ".")
        row.fields["GT"] = gt
        def quantity(code: str) -> Any:
            """The component's valueQuantity.value; None (warned) when it states its value otherwise."""
            comp = first(code)
            value = (comp.get("valueQuantity") or {}).get("value") if comp is not None else None
            if comp is not None and value is None:
                self.warn("vcf-component-not-a-quantity", f"component {code} has no valueQuantity.value; not "
                          "written", where)
            return value

        if verbatim.get("FORMAT/AD") is not None:
            row.fields["AD"] = verbatim["FORMAT/AD"]
        elif (depth := quantity("82121-5")) is not None:
            row.fields["AD"] = f".,{_num(depth)}"
        if verbatim.get("FORMAT/DP") is not None:
            row.fields["DP"] = str(verbatim["FORMAT/DP"])
        if verbatim.get("FORMAT/PS") is not None:
            row.fields["PS"] = verbatim["FORMAT/PS"]
        if verbatim.get("FORMAT/AD") is None and (fraction := quantity("81258-6")) is not None:
            row.fields["AF"] = _num(fraction)
        if first("82155-3") is not None and "valueQuantity" in first("82155-3"):  # type: ignore[operator]
            row.fields["CN"] = _num(first("82155-3")["valueQuantity"].get("value"))  # type: ignore[index]
        rs = [_code(c.get("valueCodeableConcept"), DBSNP) for c in comps.get("81252-9", [])]
        row.id = verbatim.get("ID") or ";".join(r for r in rs if r) or "."
        row.qual = verbatim.get("QUAL") or "."
        row.filter = verbatim.get("FILTER") or "PASS"
        return row

    def _location(self, refseq: dict[str, Any] | None, chrom_comp: dict[str, Any] | None
                  ) -> tuple[str | None, str | None, str | None]:
        cc = (refseq or {}).get("valueCodeableConcept") or {}
        acc = _code(cc, REFSEQ)
        if acc:
            hit = reference.chrom_of_accession(acc)
            if hit:
                return hit[1], None, hit[0]
        la = _code((chrom_comp or {}).get("valueCodeableConcept"), LOINC)
        if la and reference.chrom_of_loinc(la):
            return reference.chrom_of_loinc(la), None, None
        text = cc.get("text") or acc
        if text:
            norm = reference.normalise_chrom(text)
            return norm, (None if reference.is_primary(norm) else text), None
        return None, None, None

    @staticmethod
    def _sv_span(outer: dict[str, Any] | None, inner: dict[str, Any] | None, verbatim: dict[str, Any],
                 shift: tuple[int, int]) -> tuple[int | None, int | None]:
        """POS and END back from the ranges VCF → FHIR wrote (see emit/variant.py): the outer range is the
        record's span widened by CIPOS/CIEND; without confidence intervals the inner range is the span. (None, None)
        when the range lacks a bound."""
        if outer is not None:
            try:
                cipos = [int(x) for x in str(verbatim.get("INFO/CIPOS") or "0,0").split(",")]
                ciend = [int(x) for x in str(verbatim.get("INFO/CIEND") or "0,0").split(",")]
            except ValueError:  # not the integers VCF → FHIR kept: no interval
                cipos = ciend = [0]
            low, high = _bounds(outer)
            if low is None or high is None:
                return None, None
            return low - min(cipos) + shift[0], high - max(ciend) + shift[1]
        assert inner is not None
        low, high = _bounds(inner)
        if low is None or high is None:
            return None, None
        return low + shift[0], high + shift[1]


MAX_POSITION = 2**31 - 1  # BCF's int32 POS; htslib refuses larger


def _position(value: Any) -> int | None:
    """An integral position in 0..MAX_POSITION (0 and N+1 are the telomeres), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if 0 <= value <= MAX_POSITION else None


def _bounds(comp: dict[str, Any]) -> tuple[Any, Any]:
    """(low, high) values of a component's valueRange; None where the range does not state one as a number."""
    rng = comp.get("valueRange") or {}
    values = ((rng.get("low") or {}).get("value"), (rng.get("high") or {}).get("value"))
    return tuple(v if isinstance(v, int | float) and not isinstance(v, bool) else None  # type: ignore[return-value]
                 for v in values)


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _sample(resources: Iterable[dict[str, Any]]) -> str:
    for res in resources:
        if res.get("resourceType") == "Specimen":
            for ident in res.get("identifier", []):
                if ident.get("system") == SAMPLE_SYSTEM and ident.get("value"):
                    return ident["value"]
    for res in resources:
        if res.get("resourceType") == "Patient":
            for ident in res.get("identifier", []):
                if ident.get("value"):
                    return ident["value"]
    return "SAMPLE"


def _contig_order(chrom: str) -> tuple[int, str]:
    order = list(reference.assemblies()["GRCh38"]["chromosomes"])
    return (order.index(chrom), "") if chrom in order else (len(order), chrom)


def from_fhir(data: bytes, chrom_style: str | None = None) -> VcfOutput:
    """Convert the variant Observations in `data` to a sorted VCF 4.2 of one sample.

    chrom_style: 'chr' (chr7) or 'bare' (7); default: 'chr' for GRCh38, 'bare' otherwise (UCSC hg38 vs
    1000 Genomes b37 conventions). Raises ParseError for unreadable input and EmitError when it holds no
    variant or variants of more than one subject."""
    with gc_paused():
        return _from_fhir(data, chrom_style)


def _from_fhir(data: bytes, chrom_style: str | None) -> VcfOutput:
    # Variants of earlier Genomics Reporting releases (STU1 coordinates, nuccore RefSeq URLs) read as STU3 ones
    resources = []
    for i, res in enumerate(resources_of(data)):
        check_resource(res, f"resource {i}")  # ParseError naming an element of the wrong JSON type
        resources.append(upgrade(res))
    b = _Builder()
    rows: list[_Row] = []
    for i, res in enumerate(resources):
        if is_variant(res):
            row = b.row(res, f"Observation/{res.get('id', i)}")
            if row:
                rows.append(row)
    if not rows:
        raise EmitError("the input holds no variant Observation (code 69548-6) with a position, ref and alt "
                        "allele", details="vcf-no-variants")
    if len(b.subjects) > 1:
        raise EmitError(f"the variants belong to {len(b.subjects)} subjects; a VCF written here holds one sample",
                        details="vcf-many-subjects")
    if len(b.assemblies) > 1:
        raise EmitError(f"the variants mix assemblies ({', '.join(sorted(b.assemblies))})",
                        details="vcf-mixed-assemblies")
    assembly = next(iter(b.assemblies), None)
    style = chrom_style or ("chr" if assembly == "GRCh38" else "bare")
    records = _merge(rows)
    records.sort(key=lambda r: (_contig_order(r.chrom), r.pos, r.ref, r.alt))
    text = _header(records, assembly, style, _sample(resources))
    for r in records:
        keys = [k for k, _ in FORMATS if k in r.fields]
        info = ";".join(f"{k}={r.info[k]}" for k, _ in INFOS if k in r.info) or "."
        text.append("\t".join((_name(r, style), str(r.pos), r.id, r.ref, r.alt, r.qual, r.filter, info,
                               ":".join(keys), ":".join(r.fields[k] for k in keys))))
    return VcfOutput(("\n".join(text) + "\n").encode(), tuple(b.issues))


def _merge(rows: list[_Row]) -> list[_Row]:
    """Variants split from one multi-allelic record (same place, same verbatim ALT list and GT) → one record."""
    merged: dict[tuple[str, int, str, str, str], _Row] = {}
    out: list[_Row] = []
    for r in rows:
        if r.all_alts is None:
            out.append(r)
            continue
        key = (r.chrom, r.pos, r.ref, r.all_alts, r.fields.get("GT", ""))
        if key not in merged:
            r.alt = r.all_alts
            merged[key] = r
            out.append(r)
    return out


def _name(r: _Row, style: str) -> str:
    if r.contig:
        return r.contig
    if style == "chr":
        return "chrM" if r.chrom == "MT" else f"chr{r.chrom}"
    return r.chrom


def _header(records: list[_Row], assembly: str | None, style: str, sample: str) -> list[str]:
    lines = ["##fileformat=VCFv4.2", f"##source=helixgate {MAPPER_VERSION} (FHIR Genomics Reporting → VCF)"]
    if assembly:
        lines.append(f"##reference={assembly}")
    seen: list[_Row] = []
    names: set[str] = set()
    for r in records:
        name = _name(r, style)
        if name not in names:
            names.add(name)
            seen.append(r)
    for r in seen:
        attrs = f"ID={_name(r, style)}"
        n = reference.length(assembly, r.chrom) if not r.contig else None
        if n:
            attrs += f",length={n}"
        if assembly:
            attrs += f",assembly={assembly}"
        lines.append(f"##contig=<{attrs}>")
    used_info = {k for r in records for k in r.info}
    lines += [h for k, h in INFOS if k in used_info]
    kinds = sorted({a[1:-1] for r in records for a in r.alt.split(",") if a.startswith("<")})
    lines += [f'##ALT=<ID={k},Description="{ALT_DESCRIPTIONS.get(k, k)}">' for k in kinds]
    lines.append('##FILTER=<ID=PASS,Description="All filters passed">')
    for f in sorted({f for r in records for f in r.filter.split(";")} - {"PASS", "."}):
        lines.append(f'##FILTER=<ID={f},Description="Filter {f}, as in the source">')
    used_fmt = {k for r in records for k in r.fields}
    lines += [h for k, h in FORMATS if k in used_fmt]
    lines.append("\t".join(("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample)))
    return lines
