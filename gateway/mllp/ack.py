"""HL7 v2 acknowledgements (v2.5.1 §2.9) and the intake check the listener makes before enqueueing.

Original mode (MSH-15 and MSH-16 empty): AA / AE / AR. Enhanced mode: a commit ACK CA / CE / CR, sent as MSH-15
asks (AL always, NE never, ER on failure only, SU on success only). The ACK's MSH swaps sender and receiver
(MSH-3/4 ↔ MSH-5/6); MSA-2 is the original MSH-10; a failure carries MSA-3 and an ERR segment (ERR-2 location,
ERR-3 HL7 table 0357 code, ERR-4 severity E). Which of AE/AR a failure gets is configurable per sending facility.

The intake check is structural (MSH, delimiters, message type, MSH-10, MSH-12, then segment IDs and ORU^R01
grouping on segment names only), cheap enough to run before every ACK; the worker does the full parse and conversion.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass

from gateway.mllp.structure import walk
from mappers.hl7v2.structure import SUPPORTED

ACK_FAILURES = ("unparseable", "rejected", "too-large")
DEFAULT_CODES = {"unparseable": "AE", "rejected": "AR", "too-large": "AR"}
_ERL = re.compile(r"[A-Z][A-Z0-9]{2}(\^\d+)*")  # an ERR-2 location: segment ID^sequence^field…
_COMMIT = {"AA": "CA", "AE": "CE", "AR": "CR"}
_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Header:
    """The raw MSH of a message: `fields[n]` is MSH-n as bytes, still escaped with the message's delimiters."""

    fields: tuple[bytes, ...]

    def get(self, n: int) -> bytes:
        return self.fields[n] if n < len(self.fields) else b""

    def component(self, n: int, c: int = 1) -> bytes:
        parts = self.get(n).split(self.fields[2][:1] or b"^")
        return parts[c - 1] if c <= len(parts) else b""

    @property
    def separator(self) -> bytes:
        return self.fields[1]

    @property
    def facility(self) -> str:
        """MSH-4's namespace id (its first component), for per-partner settings."""
        return self.component(4).decode("latin-1")

    @property
    def control_id(self) -> str:
        return self.get(10).decode("latin-1")

    @property
    def enhanced(self) -> bool:
        return bool(self.get(15).strip() or self.get(16).strip())


class Refused(Exception):
    """Raised by `check` when a message is not accepted: `failure` (unparseable | rejected | too-large),
    `error` an HL7 table 0357 code, `location` an ERR-2 value such as MSH^1^9."""

    def __init__(self, failure: str, error: str, location: str, text: str, header: Header | None = None) -> None:
        super().__init__(text)
        self.failure = failure
        self.error = error
        self.location = location
        self.text = text
        self.header = header


def read_header(data: bytes) -> Header | None:
    """The MSH of `data` (after a BOM, MLLP bytes and blank lines), or None when it does not start with one."""
    start = 0
    n = len(data)
    while start < n and data[start] in b"\xef\xbb\xbf\x0b\r\n \t":
        start += 1
    if data[start:start + 3] != b"MSH" or n - start < 8:
        return None
    end = len(data)
    for term in (b"\r", b"\n"):
        i = data.find(term, start)
        if 0 <= i < end:
            end = i
    line = data[start:end]
    sep = line[3:4]
    if sep.isalnum() or sep in (b"", b" "):
        return None
    parts = line.split(sep)
    return Header((b"MSH", sep, *parts[1:]))


def check(data: bytes, max_segments: int = 0) -> Header:
    """The header of an acceptable message; raises Refused saying what is wrong and where (ERR-2).

    Beyond MSH, the segments are walked as the worker will group them (`gateway.mllp.structure`), so a message
    it can never convert (no OBR, e.g. cut short) or would silently drop rows of (a misspelled segment ID, an OBX
    outside any order) is refused here rather than acknowledged. `max_segments` (0: no cap) bounds the walk.
    """
    header = read_header(data)
    if header is None:
        raise Refused("unparseable", "100", "", "the message does not start with an MSH segment")
    enc = header.get(2)
    if len(enc) < 4 or len(set(header.separator + enc)) != len(enc) + 1:
        raise Refused("unparseable", "102", "MSH^1^2", "MSH-2 must hold four distinct encoding characters", header)
    mtype = header.component(9, 1).decode("latin-1")
    event = header.component(9, 2).decode("latin-1")
    structure = header.component(9, 3).decode("latin-1")
    if f"{mtype}^{event}" not in SUPPORTED and not (mtype == "ORU" and structure == "ORU_R01"):
        supported_types = {s.split("^")[0] for s in SUPPORTED}
        error = "201" if mtype in supported_types else "200"
        raise Refused("rejected", error, "MSH^1^9",
                      f"unsupported message type {mtype}^{event}; accepted: {', '.join(SUPPORTED)}", header)
    if not header.get(10).strip():
        raise Refused("rejected", "101", "MSH^1^10", "MSH-10 (message control ID) is empty", header)
    if not header.component(12, 1).startswith(b"2."):
        raise Refused("rejected", "203", "MSH^1^12", "MSH-12 must name an HL7 version 2.x", header)
    if max_segments:
        # Counted before splitting, so an oversized message costs a C-speed scan, not a Python loop.
        count = data.count(b"\r") or data.count(b"\n")
        if count > max_segments:
            raise Refused("too-large", "207", "", f"the message has about {count} segments, over the limit of "
                          f"{max_segments} (HELIXGATE_MLLP_MAX_SEGMENTS)", header)
    body = data.replace(b"\r\n", b"\r")
    lines = body.split(b"\r") if b"\r" in body else body.split(b"\n")
    found = walk(lines, header.separator, header.component(12, 1))
    if found is not None:
        raise Refused(found[0], "100", found[1], found[2], header)
    return header


@dataclass(frozen=True, slots=True)
class AckPolicy:
    """Which NAK code (AE or AR) each failure gets, per sending facility (MSH-4) or '*' for all."""

    codes: tuple[tuple[str, str, str], ...] = ()

    def code(self, failure: str, facility: str = "") -> str:
        chosen = DEFAULT_CODES.get(failure, "AR")
        for who, what, code in self.codes:
            if what == failure and who == "*":
                chosen = code
        for who, what, code in self.codes:
            if what == failure and who != "*" and who == facility:
                chosen = code
        return chosen


def should_send(header: Header | None, code: str) -> bool:
    """Whether MSH-15 (enhanced mode) asks for this accept acknowledgement."""
    if header is None or not header.enhanced:
        return True
    want = header.get(15).strip().upper() or b"AL"
    if want == b"NE":
        return False
    if want == b"ER":
        return code != "AA"
    if want == b"SU":
        return code == "AA"
    return True


def _timestamp() -> bytes:
    return time.strftime("%Y%m%d%H%M%S+0000", time.gmtime()).encode()


def _escape(text: str, sep: bytes, enc: bytes) -> bytes:
    raw = text.encode("ascii", "replace")
    esc = enc[2:3] or b"\\"
    out = raw.replace(esc, esc + b"E" + esc)
    for char, code in ((sep, b"F"), (enc[0:1], b"S"), (enc[1:2], b"R"), (enc[3:4], b"T")):
        if char:
            out = out.replace(char, esc + code + esc)
    return out.replace(b"\r", b" ").replace(b"\n", b" ")


def build_ack(header: Header | None, code: str, text: str = "", error: str = "", location: str = "") -> bytes:
    """The ACK (segments joined by CR, unframed). `code` is AA/AE/AR; in enhanced mode it becomes CA/CE/CR.

    Without a usable header (no MSH at all) the ACK has empty sender/receiver fields and MSA-2.
    """
    sep = header.separator if header else b"|"
    enc = header.get(2) if header else b"^~\\&"
    if header is not None and header.enhanced:
        code = _COMMIT[code]
    h = header or Header((b"MSH", b"|", b"^~\\&"))
    comp = enc[0:1]
    trigger = h.component(9, 2)
    msg_type = b"ACK" + (comp + trigger + comp + b"ACK" if trigger else b"")
    control = f"A{int(time.time()):x}{next(_counter):07d}".encode()[:20]
    msh = [b"MSH", enc, h.get(5), h.get(6), h.get(3), h.get(4), _timestamp(), b"", msg_type, control,
           h.get(11) or b"P", h.get(12) or b"2.5.1"]
    if h.get(18):
        msh += [b"", b"", b"", b"", b"", h.get(18)]
    segments = [sep.join(msh)]
    msa = [b"MSA", code.encode(), h.get(10)]
    if text:
        msa.append(_escape(text, sep, enc))
    segments.append(sep.join(msa))
    if error:
        cwe = comp.join([error.encode(), _escape(_ERROR_NAMES.get(error, ""), sep, enc), b"HL70357"])
        loc = comp.join(p.encode() for p in location.split("^")) if _ERL.fullmatch(location) else b""
        err = [b"ERR", b"", loc, cwe, b"E", b"", b"", b"", _escape(text, sep, enc)]
        segments.append(sep.join(err))
    return b"\r".join(segments) + b"\r"


_ERROR_NAMES = {
    "0": "Message accepted", "100": "Segment sequence error", "101": "Required field missing",
    "102": "Data type error", "103": "Table value not found", "200": "Unsupported message type",
    "201": "Unsupported event code", "202": "Unsupported processing id", "203": "Unsupported version id",
    "204": "Unknown key identifier", "205": "Duplicate key identifier", "206": "Application record locked",
    "207": "Application internal error",
}
