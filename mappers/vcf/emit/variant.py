"""One ALT allele of a VCF record, as called in the sample → a Variant Observation (IG `variant`).

Reads CHROM, POS, ID, REF, ALT, QUAL, FILTER, INFO END/SVLEN/CIPOS/CIEND, FORMAT GT/AD/DP/PS/CN, and the allele
fraction and depth counts.py derives from the caller's own FORMAT fields.
Coordinates are 0-based intervals (LA30100-4): a sequence allele spans [POS-1, POS-1+len(REF)); a symbolic
allele spans the record, [POS-1, END), its padding base included, as in the IG's structural examples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from mappers.ids import NAMESPACE
from mappers.toolkit import genomics
from mappers.toolkit.genomics import Code
from mappers.vcf import reference
from mappers.vcf.context import Context
from mappers.vcf.emit import DBSNP, LOINC, REFSEQ, SO, vcf_code
from mappers.vcf.model import Genotype, Record

_VCF = {f: vcf_code(f) for f in ("FORMAT/GT", "FORMAT/AD", "FORMAT/DP", "FORMAT/PS", "ALT", "ID", "FILTER", "QUAL",
                                 "INFO/CIPOS", "INFO/CIEND")}


@dataclass(frozen=True, slots=True)
class Site:
    """Where a record sits and what kind of change each of its alleles is."""

    start: int  # 0-based, inclusive
    end: int  # 0-based, exclusive
    cipos: tuple[int, int] | None = None
    ciend: tuple[int, int] | None = None


def sequence_kind(ref: str, alt: str) -> str:
    """SNV, MNV, DEL, INS or DELINS, from the shapes of REF and a sequence ALT."""
    if len(ref) == len(alt):
        return "SNV" if len(ref) == 1 else "MNV"
    if len(alt) < len(ref) and ref.upper().startswith(alt.upper()):
        return "DEL"
    if len(alt) > len(ref) and alt.upper().startswith(ref.upper()):
        return "INS"
    return "DELINS"


def allelic_state(ctx: Context, rec: Record, gt: Genotype | None, allele: int, vaf: float | None) -> str | None:
    """Zygosity of `allele` in the sample's GT; plasmy on chrMT (by allele fraction, else by GT). None without a
    called GT."""
    if rec.chrom == "MT" and vaf is not None:
        return "homoplasmic" if vaf >= ctx.options.homoplasmy_threshold else "heteroplasmic"
    if gt is None or not gt.called:
        return None
    alleles = gt.alleles
    if rec.chrom == "MT":
        return "homoplasmic" if all(a == allele for a in alleles) else "heteroplasmic"
    if any(a is None for a in alleles):
        return None  # a half call: zygosity unknown
    sex_chrom = rec.chrom in ("X", "Y")
    if sex_chrom and ctx.options.sex == "male" and not reference.in_par(ctx.assembly, rec.chrom, rec.pos):
        if len(alleles) == 1 or all(a == allele for a in alleles):
            return "hemizygous"
        ctx.issue("warning", "vcf-heterozygous-male-xy",
                  f"GT {gt.text} is heterozygous on chromosome {rec.chrom} outside the pseudoautosomal regions "
                  "of a male patient; reported as heterozygous, as called", rec.where, code="business-rule")
        return "heterozygous"
    if len(alleles) == 1:
        return "hemizygous" if sex_chrom and ctx.options.sex != "female" else None
    return "homozygous" if all(a == allele for a in alleles) else "heterozygous"


@cache
def _location(asm: str | None, chrom: str, raw: str) -> tuple[Code | None, Code | None, Code | dict[str, Any]]:
    """Assembly, chromosome and genomic reference sequence of a contig (the same for all its variants)."""
    la = reference.loinc_chromosome(chrom)
    acc = reference.refseq(asm, chrom)
    # Without a known accession the contig name stays as text (the binding is an example one), so the
    # location survives a round trip.
    return (Code(LOINC, reference.assembly_loinc(asm), asm) if asm else None,
            Code(LOINC, la[0], la[1]) if la else None,
            Code(REFSEQ, acc) if acc else {"text": raw})


@cache
def _change_type(so: tuple[str, str]) -> Code:
    return Code(SO, so[0], so[1])


def variant(ctx: Context, rec: Record, gt: Genotype | None, allele: int, so: tuple[str, str], site: Site,
            depth: int | None, dp: int | None, vaf: float | None, cn: float | None, rid: str,
            source: str | None) -> dict[str, Any]:
    """The Variant Observation of ALT number `allele` (1-based) of `rec`; `rid` is its id. `gt` is None for a
    somatic caller's call without genotype; `source` the genomic source class (germline | somatic | None)."""
    alt = rec.alts[allele - 1]
    symbolic = alt.startswith("<")
    asm, chrom, ref_seq = _location(ctx.assembly, rec.chrom, rec.chrom_raw)
    facts = genomics.Variant(assembly=asm, chromosome=chrom, genomic_ref_seq=ref_seq,
                             coordinate_system="0-based-interval", ref=rec.ref, change_type=_change_type(so),
                             source_class=source, allele_fraction=vaf, read_depth=depth, copy_number=cn,
                             extra=_verbatim(rec, gt, alt, dp))
    if symbolic:
        if site.cipos or site.ciend:
            lo_ci, hi_ci = site.cipos or (0, 0), site.ciend or (0, 0)
            facts.outer = (site.start + min(lo_ci), site.end + max(hi_ci))
            inner = (site.start + max(lo_ci), site.end + min(hi_ci))
            if inner[0] < inner[1]:
                facts.inner = inner
        else:
            facts.inner = (site.start, site.end)
    else:
        facts.exact = (site.start, site.end)
        facts.alt = alt
    if rec.id != ".":
        facts.variation_codes = [Code(DBSNP, i) for i in rec.id.split(";")
                                 if i.startswith("rs") and i[2:].isascii() and i[2:].isdigit()]
    if source != "somatic" or rec.chrom == "MT":
        facts.allelic_state = allelic_state(ctx, rec, gt, allele, vaf)
    return genomics.variant(facts, rid, subject=ctx.subject, specimen=ctx.specimen)


def _verbatim(rec: Record, gt: Genotype | None, alt: str, dp: int | None) -> list[dict[str, Any]]:
    """The VCF fields FHIR → VCF needs to restore the record exactly (see emit.VCF_SYSTEM)."""
    out = [{"code": _VCF["FORMAT/GT"], "valueString": gt.text}] if gt is not None else []
    ad = rec.sample("AD")
    if ad is not None:
        out.append({"code": _VCF["FORMAT/AD"], "valueString": ad})
    if dp is not None:
        out.append({"code": _VCF["FORMAT/DP"], "valueInteger": dp})
    ps = rec.sample("PS")
    if ps is not None and gt is not None and gt.phased:
        out.append({"code": _VCF["FORMAT/PS"], "valueString": ps})
    if len(rec.alts) > 1 or alt.startswith("<"):
        out.append({"code": _VCF["ALT"], "valueString": ",".join(rec.alts)})
    if rec.id != "." and not all(i.startswith("rs") and i[2:].isascii() and i[2:].isdigit()
                                 for i in rec.id.split(";")):
        out.append({"code": _VCF["ID"], "valueString": rec.id})
    if rec.filter not in ("PASS", "."):
        out.append({"code": _VCF["FILTER"], "valueString": rec.filter})
    if rec.qual != ".":
        out.append({"code": _VCF["QUAL"], "valueString": rec.qual})
    info = rec.info if "CI" in rec.info_raw else {}
    for key in ("CIPOS", "CIEND"):
        if key in info:
            out.append({"code": _VCF[f"INFO/{key}"], "valueString": info[key]})
    return out


def variant_id(ctx: Context, rec: Record, alt: str, occurrence: int) -> tuple[str, bytes]:
    """Deterministic id (text and bytes): the conversion key and the allele's position; `occurrence` tells
    repeated records of the same allele apart."""
    parts = ("Observation", ctx.key, rec.chrom, str(rec.pos), rec.ref, alt)
    return fast_id(*parts, str(occurrence)) if occurrence else fast_id(*parts)


_NS = NAMESPACE.bytes


def fast_id(*key: str) -> tuple[str, bytes]:
    """mappers.ids.resource_id (UUIDv5), as text and as 16 bytes, without building uuid.UUID objects (this
    runs once per variant)."""
    raw = bytearray(hashlib.sha1(_NS + "|".join(key).encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", bytes(raw)


def id_text(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
