"""MLLP framing: 0x0B <message> 0x1C 0x0D, read as a stream (a frame may span any number of reads).

Bytes outside a frame are skipped and counted. A frame larger than `max_bytes` is not buffered: its first bytes
are kept (to answer with a NAK naming the message), the rest is skipped up to the frame's end.
"""

from __future__ import annotations

from dataclasses import dataclass

START = b"\x0b"
END = b"\x1c\x0d"
HEAD_BYTES = 4096  # of an oversized frame, enough for its MSH


def frame(message: bytes) -> bytes:
    """`message` wrapped in an MLLP frame."""
    return START + message + END


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete message (without its framing bytes)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Oversized:
    """A frame that exceeded the limit: `head` holds its first bytes, `size` how many it had."""

    head: bytes
    size: int


class Framer:
    """Feed it bytes as they arrive; it returns the frames completed so far."""

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._in_frame = False
        self._skipping = False  # inside an oversized frame
        self._skipped = 0  # its size so far
        self._head = b""
        self._resume = 0  # where the search for END resumes in an unfinished frame (no quadratic rescans)
        self.junk = 0  # bytes seen outside any frame

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """Whether a frame has started and not ended yet (its bytes may all have been skipped or be to come)."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame | Oversized]:
        out: list[Frame | Oversized] = []
        buf = self._buf
        buf += data
        pos = 0
        while pos < len(buf):
            if not self._in_frame:
                start = buf.find(START, pos)
                if start < 0:
                    self.junk += len(buf) - pos
                    pos = len(buf)
                    break
                self.junk += start - pos
                pos = start + 1
                self._in_frame = True
                continue
            end = buf.find(END, pos + self._resume)
            self._resume = 0
            if self._skipping:
                if end < 0:
                    keep = 1 if buf.endswith(b"\x1c") else 0  # END may straddle two reads
                    self._skipped += len(buf) - pos - keep
                    pos = len(buf) - keep
                    break
                self._skipped += end - pos
                out.append(Oversized(self._head, self._skipped))
                self._skipping, self._in_frame, self._head = False, False, b""
                pos = end + 2
                continue
            if end < 0:
                if len(buf) - pos > self.max_bytes:
                    self._head = bytes(buf[pos:pos + HEAD_BYTES])
                    keep = 1 if buf.endswith(b"\x1c") else 0
                    self._skipped = len(buf) - pos - keep
                    self._skipping = True
                    pos = len(buf) - keep
                else:
                    self._resume = max(0, len(buf) - pos - 1)
                break
            if end - pos > self.max_bytes:
                out.append(Oversized(bytes(buf[pos:min(end, pos + HEAD_BYTES)]), end - pos))
            else:
                nested = buf.rfind(START, pos, end)  # a new start inside: the earlier frame was cut off
                if nested >= 0:
                    self.junk += nested + 1 - pos
                    pos = nested + 1
                out.append(Frame(bytes(buf[pos:end])))
            self._in_frame = False
            pos = end + 2
        del buf[:pos]
        return out
