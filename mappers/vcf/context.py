"""What a VCF conversion depends on (Options), what it counts (Summary), and per-conversion state (Context)."""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mappers.exceptions import Issue, ParseError
from mappers.toolkit.fhirtime import is_instant

# In cache keys, the converter Device/Provenance and the ##source of written VCFs; bump when the output changes.
MAPPER_VERSION = "vcf/0.2.0"
GENOMIC_SOURCES = ("germline", "somatic")
SEXES = ("male", "female", "other", "unknown")
BUNDLE_TYPES = ("collection", "transaction")
MAX_LISTED_ISSUES = 50  # per details code; the rest are counted in one closing issue


@dataclass(frozen=True, slots=True)
class Options:
    """What the caller decides; the mapper reads nothing else.

    sample: the sample column to convert (default: the first).
    genomic_source: 'germline' | 'somatic' → genomic-source-class; germline runs also get allelic-state.
    sex: of the patient; 'male' makes X/Y calls outside the pseudoautosomal regions hemizygous.
    patient: the patient identifier, 'value' or 'system|value'; the Patient id derives from it, so the same
        identifier yields the same Patient as the HL7 v2 mapper. None: identified by the sample name.
    assembly: 'GRCh37' | 'GRCh38', overriding what the header says.
    lenient: skip (and count) a malformed record instead of rejecting the file.
    keep_filtered: convert records whose FILTER is not PASS (kept with their FILTER).
    homoplasmy_threshold: mitochondrial allele fraction at or above which a call is homoplasmic.
    max_variants: refuse (LimitExceeded) to build a Bundle past this many variants; NDJSON has no limit.
    source_name: the input's file name, named in the GenomicStudyAnalysis input; not part of ids.
    recorded: a FHIR instant the caller states for the conversion's Provenance.recorded (a VCF carries no instant
        of its own: ##fileDate is a date); without it no Provenance is emitted. Not part of ids.

    Limits (hostile or broken input ends in a ParseError naming the limit, never unbounded memory or time):
    max_line_bytes: longest line, header lines included (16 MiB: ~4 million samples of `0/0`).
    max_header_bytes, max_header_lines: the header through #CHROM (16 MiB, 200,000 lines; large real headers are a
        few MB: ~3,400 ##contig lines for GRCh38 with alternates and decoys). Each kept line costs ~200 bytes.
    max_samples: sample columns (200,000: more than the largest joint-called cohorts; each costs ~100 bytes).
    max_decompressed_bytes: total gzip/BGZF output (32 GiB, a large whole-genome gVCF); plain text is bounded by
        whoever reads it.
    max_compression_ratio: gzip/BGZF output over input, checked once 1 MiB has been inflated (200; VCFs compress
        5-50 times, a gzip bomb ~1000 times).
    """

    sample: str | None = None
    genomic_source: str | None = None
    sex: str | None = None
    patient: str | None = None
    assembly: str | None = None
    lenient: bool = False
    keep_filtered: bool = False
    bundle_type: str = "collection"
    homoplasmy_threshold: float = 0.99
    max_variants: int | None = None
    source_name: str | None = None
    recorded: str | None = None
    max_line_bytes: int = 16 << 20
    max_header_bytes: int = 16 << 20
    max_header_lines: int = 200_000
    max_samples: int = 200_000
    max_decompressed_bytes: int = 32 << 30
    max_compression_ratio: int = 200

    def __post_init__(self) -> None:
        for name, value, allowed in (("genomic_source", self.genomic_source, GENOMIC_SOURCES),
                                     ("sex", self.sex, SEXES), ("assembly", self.assembly, ("GRCh37", "GRCh38")),
                                     ("bundle_type", self.bundle_type, BUNDLE_TYPES)):
            if value is not None and value not in allowed:
                raise ParseError(f"{name} {value!r} must be one of {', '.join(allowed)}", details="vcf-bad-option",
                                 expression=name)
        if self.recorded is not None and not is_instant(self.recorded):
            raise ParseError(f"recorded {self.recorded!r} is not a FHIR instant (YYYY-MM-DDThh:mm:ss+zz:zz)",
                             details="vcf-bad-option", expression="recorded")
        for name in ("max_line_bytes", "max_header_bytes", "max_header_lines", "max_samples", "max_decompressed_bytes",
                     "max_compression_ratio"):
            if getattr(self, name) < 1:
                raise ParseError(f"{name} must be positive", details="vcf-bad-option", expression=name)
        if self.patient is not None and not self.patient.rpartition("|")[2].strip():
            raise ParseError(f"patient {self.patient!r} has no identifier value (give 'value' or 'system|value')",
                             details="vcf-bad-option", expression="patient")

    def key_parts(self) -> tuple[str, ...]:
        """The options that shape resource ids and content (not source_name, recorded or the limits)."""
        return (self.sample or "", self.genomic_source or "", self.sex or "", self.patient or "",
                self.assembly or "", str(self.keep_filtered), str(self.homoplasmy_threshold))


@dataclass(slots=True)
class Summary:
    """Counts of a conversion, for the summary line and the conversion report."""

    records: int = 0  # data lines read
    converted: int = 0  # records that yielded at least one variant
    variants: int = 0  # variant Observations
    phase_relationships: int = 0
    somatic_calls: int = 0  # converted records without GT: a tumour sample's somatic calls (Strelka-style)
    copy_number_calls: int = 0  # converted records without a called GT whose FORMAT CN was kept
    skipped: Counter[str] = field(default_factory=Counter)  # records, by reason
    alleles_skipped: Counter[str] = field(default_factory=Counter)  # ALT alleles of converted records

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "converted": self.converted, "variants": self.variants,
                "phaseRelationships": self.phase_relationships, "somaticCallsWithoutGenotype": self.somatic_calls,
                "copyNumberWithoutGenotype": self.copy_number_calls, "skipped": dict(sorted(self.skipped.items())),
                "allelesSkipped": dict(sorted(self.alleles_skipped.items()))}

    def text(self) -> str:
        """One line for stderr: 'read 5698 records: converted 3605 (3612 variants, 14 phase relationships);
        skipped 2093 (no-call 1800, filtered 293)'."""
        skipped = sum(self.skipped.values())
        line = (f"read {self.records} records: converted {self.converted} ({self.variants} variants, "
                f"{self.phase_relationships} phase relationships")
        if self.somatic_calls:
            line += f"; {self.somatic_calls} somatic calls without GT"
        if self.copy_number_calls:
            line += f"; {self.copy_number_calls} copy numbers without a called GT"
        line += f"); skipped {skipped}"
        if skipped:
            line += " (" + ", ".join(f"{k} {v}" for k, v in self.skipped.most_common()) + ")"
        if self.alleles_skipped:
            line += "; ALT alleles not converted: " + ", ".join(
                f"{k} {v}" for k, v in self.alleles_skipped.most_common())
        return line


@dataclass(slots=True)
class Context:
    options: Options
    key: str  # digest of the header and the options: the business key every id derives from
    assembly: str | None
    relative_refs: bool  # NDJSON: 'Type/id'; Bundle: 'urn:uuid:id'
    summary: Summary = field(default_factory=Summary)
    issues: list[Issue] = field(default_factory=list)
    _listed: Counter[str] = field(default_factory=Counter)
    subject: dict[str, str] | None = None
    specimen: dict[str, str] | None = None
    genomic_source: str | None = None  # the option, else somatic for the tumour of a tumour/normal pair

    def ref(self, resource_type: str, rid: str) -> dict[str, str]:
        return {"reference": f"{resource_type}/{rid}" if self.relative_refs else f"urn:uuid:{rid}"}

    def issue(self, severity: str, details: str, message: str, where: str | None = None,
              code: str = "informational") -> None:
        """Record an issue; past MAX_LISTED_ISSUES of one kind they are only counted (see close_issues)."""
        self._listed[details] += 1
        if self._listed[details] <= MAX_LISTED_ISSUES:
            self.issues.append(Issue(severity, code, details, message, where))

    def close_issues(self) -> None:
        for details, n in self._listed.items():
            if n > MAX_LISTED_ISSUES:
                self.issues.append(Issue("information", "informational", details,
                                         f"{n - MAX_LISTED_ISSUES} more '{details}' issues not listed"))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building or walking a whole Bundle: millions of containers created next to an
    already large heap otherwise trigger full collections over and over (5-10x slower on a 30 MB Bundle).
    JSON documents hold no cycles; whatever else is garbage is collected once the GC is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
