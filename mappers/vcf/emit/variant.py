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
from mappers.vcf import reference
from mappers.vcf.context import Context
from mappers.vcf.emit import (
    ALLELIC_FREQUENCY,
    ALLELIC_READ_DEPTH,
    ALLELIC_STATE,
    ALLELIC_STATES,
    ALT_ALLELE,
    ASSEMBLY,
    CATEGORIES,
    CHANGE_TYPE,
    CHROMOSOME,
    COORDINATE_SYSTEM,
    COPY_NUMBER,
    DBSNP,
    EXACT_START_END,
    GENOMIC_REF_SEQ,
    GR,
    INNER_START_END,
    LOINC,
    OUTER_START_END,
    PRESENT,
    REF_ALLELE,
    REFSEQ,
    SO,
    SOURCE_CLASS,
    SOURCE_CLASSES,
    UCUM,
    VARIATION_CODE,
    ZERO_BASED,
    vcf_code,
)
from mappers.vcf.model import Genotype, Record

CODE = {"coding": [{"system": LOINC, "code": "69548-6", "display": "Genetic variant assessment"}]}
PROFILE = {"profile": [GR + "variant"]}
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


_SOURCE_COMPONENTS = {k: {"code": SOURCE_CLASS, "valueCodeableConcept": v} for k, v in SOURCE_CLASSES.items()}
_STATE_COMPONENTS = {k: {"code": ALLELIC_STATE, "valueCodeableConcept": v} for k, v in ALLELIC_STATES.items()}
_COORDINATES = {"code": COORDINATE_SYSTEM, "valueCodeableConcept": ZERO_BASED}


@cache
def _location(asm: str | None, chrom: str, raw: str) -> tuple[dict[str, Any], ...]:
    """Assembly, chromosome, genomic-ref-seq and coordinate-system components: the same for every variant of a
    contig, so built once (emitted objects are serialised, never edited)."""
    comps = []
    if asm:
        comps.append({"code": ASSEMBLY, "valueCodeableConcept": {"coding": [
            {"system": LOINC, "code": reference.assembly_loinc(asm), "display": asm}]}})
    la = reference.loinc_chromosome(chrom)
    if la:
        comps.append({"code": CHROMOSOME, "valueCodeableConcept": {"coding": [
            {"system": LOINC, "code": la[0], "display": la[1]}]}})
    acc = reference.refseq(asm, chrom)
    # Without a known accession the contig name stays as text (the binding is an example one), so the
    # location survives a round trip.
    comps.append({"code": GENOMIC_REF_SEQ, "valueCodeableConcept":
                  {"coding": [{"system": REFSEQ, "code": acc}]} if acc else {"text": raw}})
    comps.append(_COORDINATES)
    return tuple(comps)


@cache
def _change_type(so: tuple[str, str]) -> dict[str, Any]:
    return {"code": CHANGE_TYPE, "valueCodeableConcept": {"coding": [{"system": SO, "code": so[0], "display": so[1]}]}}


def _quantity(value: float) -> dict[str, Any]:
    """A unitless Quantity; values are bounded by the reader (parse.integers/reals), so int() cannot overflow."""
    return {"value": int(value) if float(value).is_integer() else round(value, 4), "system": UCUM, "code": "1"}


def _range(lo: int, hi: int) -> dict[str, Any]:
    return {"low": {"value": lo}, "high": {"value": hi}}


def variant(ctx: Context, rec: Record, gt: Genotype | None, allele: int, so: tuple[str, str], site: Site,
            depth: int | None, dp: int | None, vaf: float | None, cn: float | None, rid: str,
            source: str | None) -> dict[str, Any]:
    """The Variant Observation of ALT number `allele` (1-based) of `rec`; `rid` is its id. `gt` is None for a
    somatic caller's call without genotype; `source` the genomic source class (germline | somatic | None)."""
    alt = rec.alts[allele - 1]
    symbolic = alt.startswith("<")
    comps = list(_location(ctx.assembly, rec.chrom, rec.chrom_raw))
    if symbolic:
        if site.cipos or site.ciend:
            lo_ci, hi_ci = site.cipos or (0, 0), site.ciend or (0, 0)
            comps.append({"code": OUTER_START_END,
                          "valueRange": _range(site.start + min(lo_ci), site.end + max(hi_ci))})
            inner = (site.start + max(lo_ci), site.end + min(hi_ci))
            if inner[0] < inner[1]:
                comps.append({"code": INNER_START_END, "valueRange": _range(*inner)})
        else:
            comps.append({"code": INNER_START_END, "valueRange": _range(site.start, site.end)})
    else:
        comps.append({"code": EXACT_START_END, "valueRange": _range(site.start, site.end)})
    comps.append({"code": REF_ALLELE, "valueString": rec.ref})
    if not symbolic:
        comps.append({"code": ALT_ALLELE, "valueString": alt})
    comps.append(_change_type(so))
    for ident in rec.id.split(";"):
        if ident.startswith("rs") and ident[2:].isascii() and ident[2:].isdigit():
            comps.append({"code": VARIATION_CODE, "valueCodeableConcept": {"coding": [
                {"system": DBSNP, "code": ident}]}})
    if source:
        comps.append(_SOURCE_COMPONENTS[source])
    if source != "somatic" or rec.chrom == "MT":
        state = allelic_state(ctx, rec, gt, allele, vaf)
        if state:
            comps.append(_STATE_COMPONENTS[state])
    if vaf is not None:
        comps.append({"code": ALLELIC_FREQUENCY, "valueQuantity": _quantity(vaf)})
    if depth is not None:
        comps.append({"code": ALLELIC_READ_DEPTH, "valueQuantity": _quantity(depth)})
    if cn is not None:
        comps.append({"code": COPY_NUMBER, "valueQuantity": _quantity(cn)})
    comps.extend(_verbatim(rec, gt, alt, dp))
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "meta": PROFILE,
        "status": "final",
        "category": CATEGORIES,
        "code": CODE,
    }
    if ctx.subject:
        obs["subject"] = ctx.subject
    obs["valueCodeableConcept"] = PRESENT
    if ctx.specimen:
        obs["specimen"] = ctx.specimen
    obs["component"] = comps
    return obs


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
