"""The sample's read counts for one ALT allele: its allele fraction and allelic read depth, by the conventions of
the callers that write them. The first rule whose FORMAT fields the record has decides:

1. FORMAT AF (Number=A), the sample's allele fraction (GATK Mutect2 and others; VCF 4.3 reserves only INFO AF,
   which is a cohort frequency and never used).
2. FORMAT AD (Number=R, VCF 4.3 §1.6.2): fraction AD[allele]/DP, else AD[allele]/sum(AD); depth AD[allele].
3. FORMAT AO/RO (freeBayes: "alternate/reference allele observation count"): fraction AO[i]/(RO+sum(AO)),
   the allele's share of the observations; depth AO[i].
4. Strelka somatic SNVs, FORMAT AU/CU/GU/TU ("Number of 'A' alleles used in tiers 1,2", ...): the Strelka user
   guide ("Somatic variant allele frequencies") takes the tier-1 values, refCounts = {REF}U[0] and
   altCounts = {ALT}U[0], and reports altCounts/(altCounts+refCounts); depth altCounts.
5. Strelka somatic indels, FORMAT TIR/TAR ("reads strongly supporting indel / alternate allele for tiers
   1,2"): the same guide's tier-1 TIR[0]/(TIR[0]+TAR[0]); depth TIR[0].

Every value read is checked (parse.integers / parse.reals): a count that is not a VCF Integer or a fraction that
is not a finite number in [0, 1] makes the record malformed (ParseError naming the field), never an overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

from mappers.vcf.model import Record
from mappers.vcf.parse import integers, reals

_AF, _AD, _AO, _RO = frozenset({"FORMAT/AF"}), frozenset({"FORMAT/AD"}), frozenset({"FORMAT/AO"}), "FORMAT/RO"
_TIERS = frozenset({"FORMAT/TIR", "FORMAT/TAR"})


@dataclass(frozen=True, slots=True)
class AlleleCounts:
    fraction: float | None
    depth: int | None
    used: frozenset[str]  # the FORMAT keys the rule read, as 'FORMAT/AD' (for the not-mapped report)


def allele_counts(rec: Record, allele: int, dp: int | None) -> AlleleCounts:
    """Fraction and depth of ALT number `allele` (1-based) in the sample, by the rules above."""
    nalts = len(rec.alts)
    af = reals(rec, "AF", 1.0)
    fraction = None
    used: frozenset[str] = frozenset()
    if af is not None:
        value = af[allele - 1] if len(af) == nalts else af[allele] if len(af) == nalts + 1 else None
        if value is not None:
            fraction = value
            used = _AF
    ad = integers(rec, "AD")
    if ad is not None and len(ad) == nalts + 1:  # another layout is a caller's own: kept verbatim only
        used |= _AD
        depth = ad[allele]
        if fraction is None and depth is not None:
            if dp:
                fraction = min(depth / dp, 1.0)
            else:
                total = sum(d for d in ad if d is not None)
                fraction = depth / total if total else None
        return AlleleCounts(fraction, depth, used)
    ao = integers(rec, "AO")
    if ao is not None and len(ao) == nalts:
        ro = integers(rec, "RO")
        depth = ao[allele - 1]
        total = sum(a for a in ao if a is not None) + ((ro or [0])[0] or 0)
        if fraction is None and depth is not None and total:
            fraction = depth / total
        return AlleleCounts(fraction, depth, used | _AO | ({_RO} if ro is not None else set()))
    alt = rec.alts[allele - 1].upper()
    ref = rec.ref.upper()
    if len(alt) == 1 == len(ref) and f"{alt}U" in rec.fmt and f"{ref}U" in rec.fmt:
        alt_n, ref_n = _tier1(rec, f"{alt}U"), _tier1(rec, f"{ref}U")
        return _strelka(fraction, alt_n, ref_n, used | {f"FORMAT/{alt}U", f"FORMAT/{ref}U"})
    if "TIR" in rec.fmt and "TAR" in rec.fmt:
        return _strelka(fraction, _tier1(rec, "TIR"), _tier1(rec, "TAR"), used | _TIERS)
    return AlleleCounts(fraction, None, used)


def _tier1(rec: Record, key: str) -> int | None:
    values = integers(rec, key)
    return values[0] if values else None


def _strelka(fraction: float | None, alt_n: int | None, ref_n: int | None, used: frozenset[str]) -> AlleleCounts:
    if fraction is None and alt_n is not None and ref_n is not None and alt_n + ref_n:
        fraction = alt_n / (alt_n + ref_n)
    return AlleleCounts(fraction, alt_n, used)
