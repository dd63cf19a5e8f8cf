"""ER7 (pipe-and-hat) parsing: bytes → Batch/Message.

Reads MLLP-framed or bare input, CR/LF/CRLF segment terminators, a UTF-8 BOM, batch and file envelopes
(FHS/BHS/BTS/FTS) and any number of MSH. Each message is decoded with the character set of its own MSH-18
(HL7 table 0211); when MSH-18 is empty, unknown or wrong, UTF-8 then GB 18030 are tried and a warning says so.
"""

from __future__ import annotations

import re

from mappers.exceptions import Issue, ParseError, UnsupportedMessage
from mappers.hl7v2.charsets import ASCII_TRAIL_CODECS, FALLBACKS, codec_for
from mappers.hl7v2.model import Batch, Delimiters, Message, Segment

_MLLP = bytes.maketrans(b"", b"")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_ENVELOPE = {"FHS", "BHS", "BTS", "FTS"}
_BOM = b"\xef\xbb\xbf"


def parse_batch(data: bytes | str) -> Batch:
    """Parse one or many messages, with or without a batch envelope.

    Raises ParseError when there is no MSH, a line is not a segment, or MSH-1/MSH-2 are unusable.
    """
    lines, forced = _split_lines(data)
    header: list[Segment] = []
    trailer: list[Segment] = []
    groups: list[list[tuple[int, bytes | str]]] = []
    for lineno, line in lines:
        tag = line[:3]
        tag = tag.decode("latin-1") if isinstance(tag, bytes) else tag
        if tag == "MSH":
            groups.append([(lineno, line)])
        elif tag in _ENVELOPE:
            seg = _envelope_segment(lineno, line)
            (trailer if tag in ("BTS", "FTS") else header).append(seg)
        elif not groups:
            raise ParseError(f"line {lineno}: expected MSH (or FHS/BHS) to open the message, found {tag!r}",
                             details="hl7v2-missing-msh", expression=f"line {lineno}")
        else:
            groups[-1].append((lineno, line))
    if not groups:
        raise ParseError("no MSH segment: the input is not an HL7 v2 message", details="hl7v2-missing-msh")
    messages = tuple(_message(g, forced) for g in groups)
    warnings: list[Issue] = []
    bts = next((s for s in trailer if s.name == "BTS"), None)
    count = bts.get(1).strip() if bts is not None else ""
    if bts is not None and count.isascii() and count.isdigit() and int(count) != len(messages):
        warnings.append(Issue("warning", "structure", "hl7v2-batch-count",
                              f"BTS-1 declares {bts.get(1)} messages, the batch holds {len(messages)}", bts.ref + "-1"))
    return Batch(messages, tuple(header), tuple(trailer), tuple(warnings))


def parse_message(data: bytes | str) -> Message:
    """Parse exactly one message. Raises ParseError, or UnsupportedMessage for a batch of several."""
    batch = parse_batch(data)
    if len(batch.messages) != 1:
        raise UnsupportedMessage(f"input holds {len(batch.messages)} messages; send them one at a time or as a batch",
                                 details="hl7v2-batch-not-single")
    msg = batch.messages[0]
    if batch.warnings:
        msg = Message(msg.segments, msg.delims, msg.encoding, msg.warnings + batch.warnings)
    return msg


def _split_lines(data: bytes | str) -> tuple[list[tuple[int, bytes | str]], str | None]:
    """Strip MLLP framing and a BOM, split on CR/LF/CRLF, number non-blank lines (1-based)."""
    forced: str | None = None
    if isinstance(data, str):
        data = data.lstrip("\ufeff").replace("\x0b", "").replace("\x1c", "")
        sep = "\r" if "\r" in data else "\n"
        raw = data.replace("\r\n", "\r").split(sep) if sep == "\r" else data.split("\n")
        return [(i, ln.strip("\n")) for i, ln in enumerate(raw, 1) if ln.strip("\n").strip()], None
    data = data.translate(_MLLP, b"\x0b\x1c")
    if data.startswith(_BOM):
        data, forced = data[len(_BOM):], "utf-8"
    # CR is the standard terminator; when present, a bare LF inside a segment is text, not a break.
    raw_b = data.replace(b"\r\n", b"\r").split(b"\r") if b"\r" in data else data.split(b"\n")
    return [(i, ln.strip(b"\n")) for i, ln in enumerate(raw_b, 1) if ln.strip(b"\n").strip()], forced


def _delimiters(line: str, lineno: int) -> Delimiters:
    if len(line) < 8:
        raise ParseError(f"line {lineno}: MSH is too short to hold MSH-1 and MSH-2", details="hl7v2-bad-msh",
                         expression="MSH-2")
    fs = line[3]
    enc = line[4:].split(fs, 1)[0]
    if fs.isalnum() or len(enc) < 4 or len(set(fs + enc)) != len(fs + enc):
        raise ParseError(f"line {lineno}: MSH-1/MSH-2 must be distinct delimiter characters, found {line[3:9]!r}",
                         details="hl7v2-bad-delimiters", expression="MSH-2")
    return Delimiters(fs, enc[0], enc[1], enc[2], enc[3], enc[4] if len(enc) > 4 else "")


def _decode(lines: list[tuple[int, bytes | str]], forced: str | None) -> tuple[list[tuple[int, str]], str, list[Issue]]:
    first = lines[0][1]
    if isinstance(first, str):
        return [(n, ln) for n, ln in lines if isinstance(ln, str)], "", []
    blob = b"\r".join(ln for _, ln in lines if isinstance(ln, bytes))
    declared = _declared_charset(first)
    warnings: list[Issue] = []
    codec = forced or codec_for(declared)
    if declared and codec is None:
        warnings.append(Issue("warning", "code-invalid", "hl7v2-unknown-charset",
                              f"MSH-18 character set {declared!r} is not in HL7 table 0211; decoded by trial",
                              "MSH-18"))
    tried = [codec] if codec else []
    tried += [c for c in FALLBACKS if c not in tried]
    for i, c in enumerate(tried):
        try:
            text = blob.decode(c)
        except UnicodeDecodeError:
            continue
        if i > 0 and codec:
            warnings.append(Issue("warning", "value", "hl7v2-charset-mismatch",
                                  f"bytes are not valid {declared!r} (MSH-18); decoded as {c}", "MSH-18"))
        elif i > 0 and not declared:
            warnings.append(Issue("warning", "value", "hl7v2-charset-guessed",
                                  f"MSH-18 is empty and the bytes are not {tried[0]}; decoded as {c}", "MSH-18"))
        return list(zip([n for n, _ in lines], text.split("\r"), strict=True)), c, warnings
    text = blob.decode("latin-1")
    warnings.append(Issue("warning", "value", "hl7v2-charset-undetected",
                          "bytes are neither UTF-8 nor GB 18030 and MSH-18 did not help; decoded as ISO 8859-1",
                          "MSH-18"))
    return list(zip([n for n, _ in lines], text.split("\r"), strict=True)), "latin-1", warnings


def _declared_charset(msh: bytes) -> str:
    """MSH-18 (its first repetition) read from the raw bytes of the MSH line.

    Latin-1 keeps every byte in place, but in GB 18030, Big5 or Shift_JIS a character before MSH-18 may end in the
    byte '|' or '^' and shift the fields; so when the line is not ASCII, a reading under such a codec wins when it
    declares that very codec.
    """
    if not msh.isascii():
        for codec in ASCII_TRAIL_CODECS:
            try:
                declared = _msh18(msh.decode(codec))
            except UnicodeDecodeError:
                continue
            if codec_for(declared) == codec:
                return declared
    return _msh18(msh.decode("latin-1"))


def _msh18(msh: str) -> str:
    fs = msh[3] if len(msh) > 3 else "|"
    parts = msh.split(fs)
    return parts[17].split(msh[5] if len(msh) > 5 else "~")[0].strip() if len(parts) > 17 else ""


def _message(raw_lines: list[tuple[int, bytes | str]], forced: str | None) -> Message:
    lines, encoding, warnings = _decode(raw_lines, forced)
    d = _delimiters(lines[0][1], lines[0][0])
    seen: dict[str, int] = {}
    segments: list[Segment] = []
    for lineno, line in lines:
        parts = line.split(d.field)
        name = parts[0].strip()
        if not _SEGMENT_ID.match(name):
            raise ParseError(f"line {lineno}: {name[:20]!r} is not an HL7 segment ID (3 upper-case letters/digits)",
                             details="hl7v2-bad-segment", expression=f"line {lineno}")
        seen[name] = seen.get(name, 0) + 1
        fields = (name, d.field, *parts[1:]) if name == "MSH" else (name, *parts[1:])
        segments.append(Segment(name, fields, seen[name], lineno, d, encoding or "utf-8"))
    return Message(tuple(segments), d, encoding, tuple(warnings))


def _envelope_segment(lineno: int, line: bytes | str) -> Segment:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    fs = text[3] if len(text) > 3 else "|"
    if text[:3] in ("FHS", "BHS"):
        enc = text[4:].split(fs, 1)[0]
        d = Delimiters(fs, *enc[:4]) if len(enc) >= 4 else Delimiters(fs)
        parts = text.split(fs)
        return Segment(text[:3], (text[:3], fs, *parts[1:]), 1, lineno, d)
    return Segment(text[:3], tuple(text.split(fs)), 1, lineno, Delimiters(fs))
