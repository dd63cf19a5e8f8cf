"""gzip and BGZF (blocked gzip, as written by bgzip) decompression over byte chunks, in constant memory.

A BGZF file is a series of gzip members of at most 64 KiB each; `decompress` reads any multi-member gzip,
so plain `gzip` output works too. `read_blocks` decodes the members in a byte range of a BGZF file, which is
how an index (index.py) points into it: a virtual offset is `compressed block offset << 16 | offset inside
the uncompressed block`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator

from mappers.exceptions import LimitExceeded, ParseError

MAGIC = b"\x1f\x8b"
# The 28-byte empty block bgzip ends every file with; its absence usually means a truncated copy.
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

ReadAt = Callable[[int, int], bytes]  # (offset, size) -> bytes, shorter only at end of file


def is_gzip(head: bytes) -> bool:
    return head[:2] == MAGIC


STEP = 1 << 20  # most bytes one inflate call may produce: a bomb never inflates in one piece
RATIO_GRACE = 1 << 20  # the compression ratio is checked once this much has been inflated (headers compress well)


def decompress(chunks: Iterable[bytes], max_bytes: int = 32 << 30, max_ratio: int = 200) -> Iterator[bytes]:
    """Uncompressed bytes of a (multi-member) gzip stream given as chunks of any size, in pieces of at most
    1 MiB, so memory stays flat whatever the ratio.

    Raises ParseError when the stream is corrupt, ends inside a member (a truncated file), inflates past
    `max_bytes` in all, or past `max_ratio` times the compressed bytes read so far (a decompression bomb)."""
    d = zlib.decompressobj(31)
    fed = False
    produced = consumed = 0
    for chunk in chunks:
        data = chunk
        while data:
            fed = True
            try:
                out = d.decompress(data, STEP)
            except zlib.error as e:
                raise ParseError(f"the gzip data is corrupt ({e})", details="vcf-bad-gzip") from None
            rest = d.unused_data if d.eof else d.unconsumed_tail
            consumed += len(data) - len(rest)
            if d.eof:  # end of one member; the rest starts the next
                d = zlib.decompressobj(31)
                fed = False
            data = rest
            if out:
                produced += len(out)
                _check(produced, consumed, max_bytes, max_ratio)
                yield out
            while fed and not data and len(out) == STEP:  # output still pending from input already read
                out = d.decompress(b"", STEP)
                produced += len(out)
                _check(produced, consumed, max_bytes, max_ratio)
                if out:
                    yield out
                if d.eof:
                    data = d.unused_data
                    d = zlib.decompressobj(31)
                    fed = False
    if fed:
        tail = d.flush()
        if tail:
            produced += len(tail)
            _check(produced, consumed, max_bytes, max_ratio)
            yield tail
        if not d.eof:
            raise ParseError("the gzip stream ends in the middle of a block: the file is truncated",
                             details="vcf-truncated", expression="end of input")


def _check(produced: int, consumed: int, max_bytes: int, max_ratio: int) -> None:
    if produced > max_bytes:
        raise LimitExceeded(f"the gzip data inflates past {max_bytes:,} bytes (limit max_decompressed_bytes)",
                            details="vcf-too-large", expression="gzip input")
    if produced > RATIO_GRACE and produced > max_ratio * max(consumed, 1):
        raise LimitExceeded(f"the gzip data inflates more than {max_ratio} times its size ({produced:,} bytes from "
                            f"{consumed:,}; limit max_compression_ratio): a decompression bomb, not a VCF",
                            details="vcf-compression-ratio", expression="gzip input")


def block_size(header: bytes) -> int | None:
    """Total size of the BGZF block starting with `header` (its BC extra field), or None if not BGZF."""
    if len(header) < 18 or header[:4] != b"\x1f\x8b\x08\x04":
        return None
    xlen = int.from_bytes(header[10:12], "little")
    extra = header[12:12 + xlen]
    i = 0
    while i + 4 <= len(extra):
        sub, slen = extra[i:i + 2], int.from_bytes(extra[i + 2:i + 4], "little")
        if sub == b"BC" and slen == 2:
            return int.from_bytes(extra[i + 4:i + 6], "little") + 1
        i += 4 + slen
    return None


def read_blocks(read_at: ReadAt, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(compressed offset, uncompressed data) of each BGZF block from offset `start` through the block that
    starts at `end` (inclusive). `read_at` is the caller's random access to the file."""
    offset = start
    while offset <= end:
        header = read_at(offset, 18)
        if not header:
            return
        size = block_size(header)
        if size is None:
            raise ParseError(f"no BGZF block at byte {offset}: the index does not match this file",
                             details="vcf-bad-bgzf", expression=f"byte {offset}")
        block = read_at(offset, size)
        if len(block) < size:
            raise ParseError(f"the BGZF block at byte {offset} is cut short: the file is truncated",
                             details="vcf-truncated", expression=f"byte {offset}")
        try:
            data = zlib.decompress(block, 31)
        except zlib.error as e:
            raise ParseError(f"the BGZF block at byte {offset} is corrupt ({e})", details="vcf-bad-gzip",
                             expression=f"byte {offset}") from None
        yield offset, data
        offset += size
