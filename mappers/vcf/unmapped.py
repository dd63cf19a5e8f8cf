"""INFO and FORMAT keys of converted records that no emitter carried into the output, counted per record class for
the conversion report: "INFO/SOMATIC on 3 SNV records not mapped (first: line 57)".

Bounded whatever the input: at most MAX_TRACKED (class, key) pairs are counted (a record can invent keys the
header never declared); the rest are summed in one closing issue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mappers.exceptions import Issue
from mappers.vcf.model import Record

MAX_TRACKED = 200
MAX_SHAPES = 1000
# Record classes, by the kind of the record's first converted allele (emit.variant.sequence_kind or symbolic id).
_CLASS = {"SNV": "SNV", "MNV": "MNV", "INS": "insertion", "DEL": "deletion", "DELINS": "deletion-insertion"}


def record_class(kind: str, symbolic: bool, copy_number: bool = False) -> str:
    if copy_number:
        return f"copy-number <{kind}>"
    return f"<{kind}>" if symbolic else _CLASS.get(kind, kind)


@dataclass(slots=True)
class Unmapped:
    """Counts by record shape first (class, INFO keys, FORMAT keys with a value, keys used): records of one file
    mostly share a few shapes, so a record costs one dictionary update; shapes become per-key counts in issues()."""

    # shape (class, INFO keys, FORMAT keys, used) -> [records, first where, order of the first]
    shapes: dict[tuple[str, tuple[str, ...], tuple[str, ...], frozenset[str]], list[Any]] = field(default_factory=dict)
    counts: dict[tuple[str, str], list[Any]] = field(default_factory=dict)  # (class, key) -> [records, first, order]
    untracked: int = 0  # key occurrences past MAX_TRACKED pairs
    seen: int = 0

    def note(self, cls: str, rec: Record, used: frozenset[str]) -> None:
        """Count the keys of converted record `rec` not in `used` ('INFO/END', 'FORMAT/AD', ...). FORMAT keys
        count only where the sample has a value."""
        self.seen += 1
        fmt = tuple(k for k, v in zip(rec.fmt, rec.call, strict=False) if v and v != ".")
        shape = (cls, tuple(rec.info), fmt, used)
        hit = self.shapes.get(shape)
        if hit is not None:
            hit[0] += 1
        elif len(self.shapes) < MAX_SHAPES:
            self.shapes[shape] = [1, rec.where, self.seen]
        else:  # a file of ever-new shapes: count key by key (bounded by MAX_TRACKED)
            self._add(shape, 1, rec.where, self.seen)

    def _add(self, shape: tuple[str, tuple[str, ...], tuple[str, ...], frozenset[str]], n: int, first: str,
             order: int) -> None:
        cls, info, fmt, used = shape
        for key in (*(f"INFO/{k}" for k in info), *(f"FORMAT/{k}" for k in fmt)):
            if key in used:
                continue
            hit = self.counts.get((cls, key))
            if hit is not None:
                hit[0] += n
                if order < hit[2]:
                    hit[1:] = [first, order]
            elif len(self.counts) < MAX_TRACKED:
                self.counts[(cls, key)] = [n, first, order]
            else:
                self.untracked += n

    def issues(self) -> list[Issue]:
        for shape, (n, first, order) in sorted(self.shapes.items(), key=lambda kv: kv[1][2]):
            self._add(shape, n, first, order)
        self.shapes.clear()
        out = []
        for (cls, key), (n, first, _) in sorted(self.counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            plural = "record" if n == 1 else "records"
            out.append(Issue("information", "informational", "vcf-key-not-mapped",
                             f"{key[:60]} on {n} {cls} {plural} not mapped (first: {first})", key[:60]))
        if self.untracked:
            out.append(Issue("information", "informational", "vcf-key-not-mapped",
                             f"{self.untracked} more INFO/FORMAT values of keys beyond the first {MAX_TRACKED} "
                             "not mapped (not listed)"))
        return out
