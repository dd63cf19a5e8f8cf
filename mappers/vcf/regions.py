"""BED region files: parse them and ask whether a record's span overlaps them.

BED intervals are 0-based, end exclusive. Chromosome names are normalised like VCF CHROM (`chr1` = `1`), so a
BED written for UCSC names filters a VCF with Ensembl names. Header lines (`track`, `browser`, `#`) and blank
lines are skipped; CRLF is tolerated.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass

from mappers.exceptions import ParseError
from mappers.vcf.reference import normalise_chrom


@dataclass(frozen=True, slots=True)
class Regions:
    """A BED file: merged intervals per normalised chromosome."""

    name: str  # file name, for messages and the DocumentReference title
    role: str  # "convert" | "studied" | "uncallable"
    data: bytes  # the file itself (embedded in the DocumentReference)
    intervals: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]  # chrom -> (starts, ends), merged and sorted
    count: int  # intervals as listed in the file

    @property
    def bases(self) -> int:
        return sum(e - s for starts, ends in self.intervals.values() for s, e in zip(starts, ends, strict=True))

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.data).hexdigest()

    def overlaps(self, chrom: str, start: int, end: int) -> bool:
        """Whether [start, end) (0-based) on normalised `chrom` overlaps an interval."""
        hit = self.intervals.get(chrom)
        if hit is None:
            return False
        starts, ends = hit
        # Merged intervals also have sorted ends, so the last one starting before `end` reaches furthest.
        i = bisect_right(starts, max(end, start + 1) - 1) - 1
        return i >= 0 and ends[i] > start

    def queries(self) -> list[tuple[str, int, int]]:
        """(normalised chrom, start, end) of every merged interval, for index queries."""
        return [(c, s, e) for c, (starts, ends) in self.intervals.items() for s, e in zip(starts, ends, strict=True)]


def parse_bed(data: bytes, name: str, role: str) -> Regions:
    """Parse BED bytes. Raises ParseError naming the file and line for a line that is not chrom/start/end."""
    raw: dict[str, list[tuple[int, int]]] = {}
    count = 0
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"BED file {name} is not UTF-8 text", details="bed-not-text", expression=name) from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        where = f"{name} line {n}"
        if len(cols) < 3:
            raise ParseError(f"BED line needs chrom, start and end; found {line[:60]!r}", details="bed-bad-line",
                             expression=where)
        try:
            start, end = int(cols[1]), int(cols[2])
        except ValueError:
            raise ParseError(f"BED start/end {cols[1]!r}/{cols[2]!r} are not integers", details="bed-bad-line",
                             expression=where) from None
        if start < 0 or end < start:
            raise ParseError(f"BED interval {start}-{end} is not a 0-based start ≤ end", details="bed-bad-line",
                             expression=where)
        raw.setdefault(normalise_chrom(cols[0].strip()), []).append((start, end))
        count += 1
    merged: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for chrom, ivs in raw.items():
        ivs.sort()
        out: list[list[int]] = []
        for s, e in ivs:
            if out and s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        merged[chrom] = (tuple(s for s, _ in out), tuple(e for _, e in out))
    return Regions(name, role, data, merged, count)
