"""Reference data: assemblies, chromosome names ⇄ RefSeq/LOINC, pseudoautosomal regions, allele kinds ⇄ SO.

Tables are data (tables/assemblies.json, tables/vcf-allele-kind-to-sequence-ontology.json); this module only
looks things up. Chromosome names are normalised to `1`-`22`, `X`, `Y`, `MT` (`chr7`, `CHR7`, `7` → `7`;
`M`, `chrM`, `MT` → `MT`); other contigs keep their name.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from mappers.terminology import translate

TABLES = Path(__file__).parent / "tables"
ASSEMBLIES = ("GRCh37", "GRCh38")
_CHR_PREFIX = re.compile(r"^chr", re.I)


@cache
def _table(name: str) -> dict[str, Any]:
    return json.loads((TABLES / f"{name}.json").read_text("utf-8"))


def assemblies() -> dict[str, Any]:
    return _table("assemblies")["assemblies"]


_PRIMARY_NAMES = frozenset([*(str(n) for n in range(1, 23)), "X", "Y"])


@cache
def normalise_chrom(name: str) -> str:
    """`chr7`/`7` → `7`; `chrX`/`x` → `X`; `M`/`chrM`/`MT` → `MT`; other contigs unchanged."""
    bare = _CHR_PREFIX.sub("", name)
    up = bare.upper()
    if up in ("M", "MT"):
        return "MT"
    if up in _PRIMARY_NAMES:  # 1-22, X, Y: a string test (int() of '²' or of 5,000 digits raises)
        return up
    return name


def is_primary(chrom: str) -> bool:
    """A normalised name of an assembled human chromosome (1-22, X, Y, MT)."""
    return chrom in assemblies()["GRCh38"]["chromosomes"]


def refseq(assembly: str | None, chrom: str) -> str | None:
    """RefSeq accession of normalised chromosome `chrom` in `assembly`, or None when either is unknown."""
    if assembly is None:
        return None
    entry = assemblies()[assembly]["chromosomes"].get(chrom)
    return entry["refseq"] if entry else None


@cache
def _by_accession() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for asm, spec in assemblies().items():
        for chrom, entry in spec["chromosomes"].items():
            out.setdefault(entry["refseq"], (asm, chrom))
    return out


def chrom_of_accession(accession: str) -> tuple[str | None, str] | None:
    """(assembly, normalised chromosome) of a RefSeq chromosome accession; the assembly is None for chrMT,
    whose accession (NC_012920.1) both assemblies share."""
    hit = _by_accession().get(accession)
    if hit is None:
        return None
    asm, chrom = hit
    return (None if chrom == "MT" else asm), chrom


def length(assembly: str | None, chrom: str) -> int | None:
    if assembly is None:
        return None
    entry = assemblies()[assembly]["chromosomes"].get(chrom)
    return entry["length"] if entry else None


def assembly_loinc(assembly: str) -> str:
    return assemblies()[assembly]["loinc"]


def assembly_of_loinc(code: str) -> str | None:
    return next((a for a, s in assemblies().items() if s["loinc"] == code), None)


def assembly_from_name(text: str) -> str | None:
    """The assembly a header value names (`GRCh38`, `hg19`, `b37`, `.../human_g1k_v37.fasta`, `NCBI build 37`)."""
    low = text.lower()
    for asm, spec in assemblies().items():
        for alias in spec["aliases"]:
            if alias.isdigit():
                continue
            if re.search(rf"(?<![a-z0-9]){re.escape(alias)}(?![0-9])", low):
                return asm
    m = re.search(r"(?:build|ncbi|grch)\s*(37|38)\b", low)
    return {"37": "GRCh37", "38": "GRCh38"}[m.group(1)] if m else None


def assembly_from_lengths(lengths: dict[str, int]) -> str | None:
    """The assembly whose chromosome lengths the header's ##contig lines match (chr1 alone is decisive)."""
    votes = {a: 0 for a in ASSEMBLIES}
    for chrom, n in lengths.items():
        for asm in ASSEMBLIES:
            if length(asm, chrom) == n and chrom != "MT":
                votes[asm] += 1
    best = max(votes, key=lambda a: votes[a])
    return best if votes[best] and list(votes.values()).count(votes[best]) == 1 else None


def in_par(assembly: str | None, chrom: str, pos: int) -> bool:
    """Whether 1-based `pos` on X/Y lies in a pseudoautosomal region (diploid in males). Unknown assembly:
    False, so calls keep the zygosity their GT states."""
    if assembly is None:
        return False
    return any(lo <= pos <= hi for lo, hi in assemblies()[assembly]["par"].get(chrom, ()))


def loinc_chromosome(chrom: str) -> tuple[str, str] | None:
    """(LA code, display) in LOINC LL2938-0 of a normalised chromosome; None for MT and contigs."""
    t = translate("chromosome-name-to-loinc-ll2938-0", chrom)
    return (t.code, t.display) if t else None


def chrom_of_loinc(code: str) -> str | None:
    t = translate("chromosome-name-to-loinc-ll2938-0", code, reverse=True)
    return t.code if t else None


@cache
def _kinds() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    group = _table("vcf-allele-kind-to-sequence-ontology")["group"][0]
    fwd = {e["code"]: (e["target"][0]["code"], e["target"][0]["display"]) for e in group["element"]}
    rev: dict[str, str] = {}
    for kind, (so, _) in fwd.items():
        rev.setdefault(so, kind)
    return fwd, rev


def so_of_kind(kind: str) -> tuple[str, str] | None:
    """(SO code, display) of an allele kind: a symbolic id (`DUP:TANDEM`, falling back to `DUP`) or SNV/MNV/..."""
    fwd = _kinds()[0]
    if re.fullmatch(r"CN\d+", kind):  # VCF 4.3 copy-number alleles <CN0>, <CN3>
        return fwd["CNV"]
    return fwd.get(kind) or fwd.get(kind.split(":", 1)[0] if not kind.startswith("INS:ME") else "INS:ME")


def kind_of_so(code: str) -> str | None:
    return _kinds()[1].get(code)
