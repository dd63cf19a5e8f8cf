"""gzip and BGZF (blocked gzip, as written by bgzip) decompression over byte chunks, in constant memory.

A BGZF file is a series of gzip members of at most 64 KiB each; `decompress` reads any multi-member gzip,
so plain `gzip` output works too. `read_blocks` decodes the members in a byte range of a BGZF file, which is
how an index (index.py) points into it: a virtual offset is `compressed block offset << 16 | offset inside
the uncompressed block`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator

from mappers.exceptions import ParseError

MAGIC = b"\x1f\x8b"
# The 28-byte empty block bgzip ends every file with; its absence usually means a truncated copy.
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

ReadAt = Callable[[int, int], bytes]  # (offset, size) -> bytes, shorter only at end of file


def is_gzip(head: bytes) -> bool:
    return head[:2] == MAGIC


def decompress(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Uncompressed bytes of a (multi-member) gzip stream given as chunks of any size.

    Raises ParseError when the stream is corrupt or ends inside a member (a truncated file)."""
    d = zlib.decompressobj(31)
    fed = False
    for chunk in chunks:
        while chunk:
            fed = True
            try:
                out = d.decompress(chunk)
            except zlib.error as e:
                raise ParseError(f"the gzip data is corrupt ({e})", details="vcf-bad-gzip") from None
            if out:
                yield out
            if d.eof:  # end of one member; the rest of the chunk starts the next
                chunk = d.unused_data
                d = zlib.decompressobj(31)
                fed = False
            else:
                chunk = b""
    if fed:
        tail = d.flush()
        if tail:
            yield tail
        if not d.eof:
            raise ParseError("the gzip stream ends in the middle of a block: the file is truncated",
                             details="vcf-truncated", expression="end of input")


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
