"""INFO and FORMAT keys of converted records that no emitter carried into the output, counted per record class for
the conversion report: "INFO/SOMATIC on 3 SNV records not mapped (first: line 57)".

Bounded whatever the input: at most MAX_TRACKED (class, key) pairs are counted (a record can invent keys the
header never declared); the rest are summed in one closing issue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mappers.exceptions import Issue
from mappers.vcf.model import Record

MAX_TRACKED = 200
# Record classes, by the kind of the record's first converted allele (emit.variant.sequence_kind or symbolic id).
_CLASS = {"SNV": "SNV", "MNV": "MNV", "INS": "insertion", "DEL": "deletion", "DELINS": "deletion-insertion"}


def record_class(kind: str, symbolic: bool, copy_number: bool = False) -> str:
    if copy_number:
        return f"copy-number <{kind}>"
    return f"<{kind}>" if symbolic else _CLASS.get(kind, kind)


@dataclass(slots=True)
class Unmapped:
    counts: dict[tuple[str, str], list[object]] = field(default_factory=dict)  # (class, key) -> [records, first]
    untracked: int = 0  # key occurrences past MAX_TRACKED pairs

    def note(self, cls: str, rec: Record, used: set[str]) -> None:
        """Count the keys of converted record `rec` not in `used` ('INFO/END', 'FORMAT/AD', ...). FORMAT keys
        count only where the sample has a value."""
        keys = [f"INFO/{k}" for k in rec.info]
        if rec.fmt:
            keys += [f"FORMAT/{k}" for k, v in zip(rec.fmt, rec.call, strict=False) if v not in ("", ".")]
        for key in keys:
            if key in used:
                continue
            hit = self.counts.get((cls, key))
            if hit is not None:
                hit[0] += 1  # type: ignore[operator]
            elif len(self.counts) < MAX_TRACKED:
                self.counts[(cls, key)] = [1, rec.where]
            else:
                self.untracked += 1

    def issues(self) -> list[Issue]:
        out = []
        for (cls, key), (n, first) in sorted(self.counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            plural = "record" if n == 1 else "records"
            out.append(Issue("information", "informational", "vcf-key-not-mapped",
                             f"{key[:60]} on {n} {cls} {plural} not mapped (first: {first})", key[:60]))
        if self.untracked:
            out.append(Issue("information", "informational", "vcf-key-not-mapped",
                             f"{self.untracked} more INFO/FORMAT values of keys beyond the first {MAX_TRACKED} "
                             "not mapped (not listed)"))
        return out
