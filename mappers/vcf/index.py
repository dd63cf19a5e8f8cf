"""Tabix (.tbi) and CSI (.csi) indexes of bgzipped VCFs: parse them, and read only the records of some regions.

Both formats (hts-specs `tabix.tex`, `CSIv1.tex`) map each reference sequence to bins of a hierarchical binning
scheme, and each bin to chunks: [start, end) virtual offsets of the records assigned to that bin. A query
collects the chunks of every bin that overlaps a region, merges them, and reads them in file order, so each
record is read once; records are then filtered by their own span (the caller does that with its regions).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mappers.exceptions import ParseError
from mappers.vcf.bgzf import ReadAt, read_blocks


@dataclass(frozen=True, slots=True)
class Index:
    kind: str  # "tbi" | "csi"
    names: tuple[str, ...]  # sequence names as spelled in the VCF, in index order
    bins: tuple[dict[int, list[tuple[int, int]]], ...]  # per sequence: bin -> chunks (virtual offsets)
    linear: tuple[tuple[int, ...], ...]  # tbi only: per sequence, min virtual offset of each 16 kb window
    min_shift: int
    depth: int


class _Buf:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ParseError(f"the {self.what} index ends early at byte {self.pos}: it is truncated",
                             details="vcf-bad-index", expression=f"{self.what} byte {self.pos}")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ParseError(f"the {self.what} index ends early at byte {self.pos}: it is truncated",
                             details="vcf-bad-index", expression=f"{self.what} byte {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


def _names(blob: bytes) -> tuple[str, ...]:
    return tuple(n.decode("utf-8", "replace") for n in blob.split(b"\0") if n)


def parse_index(data: bytes) -> Index:
    """Parse the bytes of a .tbi or .csi file (BGZF-compressed, as tabix/bcftools write them).

    Raises ParseError when the bytes are not such an index."""
    raw = data
    try:
        if data[:2] == b"\x1f\x8b":  # BGZF: several gzip members, so decompress member by member
            parts, rest = [], data
            while rest:
                d = zlib.decompressobj(31)
                parts.append(d.decompress(rest))
                rest = d.unused_data
            raw = b"".join(parts)
    except zlib.error as e:
        raise ParseError(f"the index is not valid BGZF ({e})", details="vcf-bad-index") from None
    magic = raw[:4]
    if magic == b"TBI\x01":
        return _parse_tbi(_Buf(raw, "tbi"))
    if magic == b"CSI\x01":
        return _parse_csi(_Buf(raw, "csi"))
    raise ParseError("the index is neither tabix (TBI) nor CSI", details="vcf-bad-index")


def _parse_tbi(b: _Buf) -> Index:
    b.raw(4)
    (n_ref,) = b.take("<i")
    b.take("<6i")  # format, col_seq, col_beg, col_end, meta, skip
    (l_nm,) = b.take("<i")
    names = _names(b.raw(l_nm))
    bins, linear = [], []
    for _ in range(n_ref):
        seq: dict[int, list[tuple[int, int]]] = {}
        (n_bin,) = b.take("<i")
        for _ in range(n_bin):
            bin_no, n_chunk = b.take("<Ii")
            flat = b.take(f"<{2 * n_chunk}Q")
            seq[bin_no] = list(zip(flat[::2], flat[1::2], strict=True))
        (n_intv,) = b.take("<i")
        linear.append(b.take(f"<{n_intv}Q"))
        bins.append(seq)
    return Index("tbi", names, tuple(bins), tuple(linear), 14, 5)


def _parse_csi(b: _Buf) -> Index:
    b.raw(4)
    min_shift, depth, l_aux = b.take("<3i")
    aux = b.raw(l_aux)
    names: tuple[str, ...] = ()
    if l_aux >= 28:  # a tabix-style header: format, col_seq, col_beg, col_end, meta, skip, l_nm, names
        (l_nm,) = struct.unpack_from("<i", aux, 24)
        names = _names(aux[28:28 + l_nm])
    (n_ref,) = b.take("<i")
    bins = []
    for _ in range(n_ref):
        seq: dict[int, list[tuple[int, int]]] = {}
        (n_bin,) = b.take("<i")
        for _ in range(n_bin):
            bin_no, _loffset, n_chunk = b.take("<IQi")
            flat = b.take(f"<{2 * n_chunk}Q")
            seq[bin_no] = list(zip(flat[::2], flat[1::2], strict=True))
        bins.append(seq)
    return Index("csi", names, tuple(bins), (), min_shift, depth)


def reg2bins(beg: int, end: int, min_shift: int, depth: int) -> list[int]:
    """Bins overlapping the 0-based half-open interval [beg, end) (hts-specs reg2bins)."""
    end -= 1
    out: list[int] = []
    t, s = 0, min_shift + depth * 3
    for level in range(depth + 1):
        out.extend(range(t + (beg >> s), t + (end >> s) + 1))
        t += 1 << (level * 3)
        s -= 3
    return out


def query(index: Index, regions: Iterable[tuple[str, int, int]]) -> list[tuple[int, int]]:
    """Merged, sorted chunks (virtual offsets) holding every record that may overlap `regions`
    ((name as in the index, 0-based start, end exclusive)); names the index lacks hold no records."""
    pseudo = ((1 << ((index.depth + 1) * 3)) - 1) // 7 + 1  # metadata bin, not records
    where = {n: i for i, n in enumerate(index.names)}
    found: list[tuple[int, int]] = []
    for name, beg, end in regions:
        tid = where.get(name)
        if tid is None or end <= beg:
            continue
        seq = index.bins[tid]
        min_off = 0
        if index.linear and index.linear[tid]:
            lin = index.linear[tid]
            min_off = lin[min(beg >> 14, len(lin) - 1)]
        for bin_no in reg2bins(beg, end, index.min_shift, index.depth):
            if bin_no == pseudo:
                continue
            found.extend(c for c in seq.get(bin_no, ()) if c[1] > min_off)
    found.sort()
    merged: list[tuple[int, int]] = []
    for beg_v, end_v in found:
        if merged and beg_v <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end_v))
        else:
            merged.append((beg_v, end_v))
    return merged


def header_lines(read_at: ReadAt) -> Iterator[bytes]:
    """The '#' lines at the start of a bgzipped VCF, read block by block from offset 0."""
    rest = b""
    for _, data in read_blocks(read_at, 0, 1 << 62):
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if not line.startswith(b"#"):
                return
            yield line
    if rest.startswith(b"#"):
        yield rest


def region_lines(read_at: ReadAt, chunks: list[tuple[int, int]]) -> Iterator[bytes]:
    """The record lines inside `chunks` (from `query`), in file order."""
    for vbeg, vend in chunks:
        cbeg, ubeg = vbeg >> 16, vbeg & 0xFFFF
        cend, uend = vend >> 16, vend & 0xFFFF
        pieces = []
        for offset, data in read_blocks(read_at, cbeg, cend):
            lo = ubeg if offset == cbeg else 0
            hi = uend if offset == cend else len(data)
            pieces.append(data[lo:hi])
        text = b"".join(pieces)
        for line in text.split(b"\n"):
            if line and not line.startswith(b"#"):
                yield line
