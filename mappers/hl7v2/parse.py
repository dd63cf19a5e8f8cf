"""ER7 (pipe-and-hat) parsing: bytes → Batch/Message.

Reads MLLP-framed or bare input, CR/LF/CRLF segment terminators, a UTF-8 BOM, batch and file envelopes
(FHS/BHS/BTS/FTS) and any number of MSH. Each message is decoded with the character set of its own MSH-18
(HL7 table 0211); when MSH-18 is empty, unknown or wrong, UTF-8 then GB 18030 are tried and a warning says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import itemgetter

from mappers import exceptions
from mappers.exceptions import Issue, ParseError, UnsupportedMessage
from mappers.hl7v2.charsets import ASCII_TRAIL_CODECS, FALLBACKS, codec_for
from mappers.hl7v2.model import Batch, Delimiters, Message, Segment, dialect_of, segment

_MLLP = bytes.maketrans(b"", b"")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_ENVELOPE = {"FHS", "BHS", "BTS", "FTS"}
_ENVELOPE_BYTES = {e.encode() for e in _ENVELOPE}
_NUMBER, _TEXT = itemgetter(0), itemgetter(1)  # of a (line number, line) pair
_IDS: set[str] = set()  # segment IDs seen valid (at most 26 × 36 × 36)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on one message, so time and memory stay proportional to what a real message needs (hostile input is
    refused before it is expanded). Exceeding one raises UnsupportedMessage naming the limit (HTTP 422).

    max_segments: segments per message (an LRI report of 200 variants is about 5,000).
    max_fields: fields per segment (v2.9 OBX has 33).
    max_field_length: characters per field (an embedded PDF in OBX-5 is the largest field seen: 8 MiB of base64
        is a 6 MiB document).
    max_repetitions: repetitions per field.
    max_components: components per repetition, and subcomponents per component (v2.9 XCN has 23 components).
    """

    max_segments: int = 10_000
    max_fields: int = 500
    max_field_length: int = 8 * 1024 * 1024
    max_repetitions: int = 1_000
    max_components: int = 100


class LimitExceeded(exceptions.LimitExceeded):
    """The input exceeds one of Limits; `details` is hl7v2-limit-<name>."""

    def __init__(self, message: str, limit: str, expression: str | None = None) -> None:
        super().__init__(message, details=f"hl7v2-limit-{limit}", expression=expression)


def parse_batch(data: bytes | str, limits: Limits | None = None) -> Batch:
    """Parse one or many messages, with or without a batch envelope.

    Raises ParseError when there is no MSH, a line is not a segment, or MSH-1/MSH-2 are unusable, and
    LimitExceeded when a message is larger than `limits` allow (default Limits()).
    """
    limits = limits or Limits()
    lines, forced, text = _split_lines(data)
    header: list[Segment] = []
    trailer: list[Segment] = []
    groups: list[list[tuple[int, bytes | str]]] = []
    msh, envelope = ("MSH", _ENVELOPE) if isinstance(data, str) else (b"MSH", _ENVELOPE_BYTES)
    if lines and lines[0][1][:3] == msh and text.count(msh) == 1 and not any(e in text for e in envelope):
        groups.append(lines)  # one message, no envelope: its lines as they are (the usual input)
        lines = []
    for item in lines:
        lineno, line = item
        tag = line[:3]  # bytes or text, as the input
        if tag == msh:
            groups.append([item])
        elif tag in envelope:
            seg = _envelope_segment(lineno, line)
            (trailer if seg.name in ("BTS", "FTS") else header).append(seg)
        elif not groups:
            shown = tag.decode("latin-1") if isinstance(tag, bytes) else tag
            raise ParseError(f"line {lineno}: expected MSH (or FHS/BHS) to open the message, found {shown!r}",
                             details="hl7v2-missing-msh", expression=f"line {lineno}")
        else:
            groups[-1].append(item)
    if not groups:
        raise ParseError("no MSH segment: the input is not an HL7 v2 message", details="hl7v2-missing-msh")
    messages = tuple(_message(g, forced, limits) for g in groups)
    warnings: list[Issue] = []
    bts = next((s for s in trailer if s.name == "BTS"), None)
    count = bts.get(1).strip() if bts is not None else ""
    if bts is not None and count.isascii() and count.isdigit() and int(count) != len(messages):
        warnings.append(Issue("warning", "structure", "hl7v2-batch-count",
                              f"BTS-1 declares {bts.get(1)} messages, the batch holds {len(messages)}", bts.ref + "-1"))
    return Batch(messages, tuple(header), tuple(trailer), tuple(warnings))


def parse_message(data: bytes | str, limits: Limits | None = None) -> Message:
    """Parse exactly one message. Raises ParseError, or UnsupportedMessage for a batch of several or input
    beyond `limits` (checked before the input is split, so a huge input costs no more than a scan)."""
    limits = limits or Limits()
    _check_line_count(data, limits.max_segments)
    batch = parse_batch(data, limits)
    if len(batch.messages) != 1:
        raise UnsupportedMessage(f"input holds {len(batch.messages)} messages; send them one at a time or as a batch",
                                 details="hl7v2-batch-not-single")
    msg = batch.messages[0]
    if batch.warnings:
        msg = Message(msg.segments, msg.delims, msg.encoding, msg.warnings + batch.warnings)
    return msg


def _check_line_count(data: bytes | str, cap: int) -> None:
    """Refuse input holding more than `cap` non-blank lines, before anything is split (blank lines do not count)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    sep = b"\r" if b"\r" in raw else b"\n"
    if raw.count(sep) < cap:
        return
    count, pos, n = 0, 0, len(raw)
    while pos < n:
        end = raw.find(sep, pos)
        end = n if end < 0 else end
        if raw[pos:end].strip(b"\n \t\x0b\x1c"):
            count += 1
            if count > cap:
                raise LimitExceeded(f"the message has more than {cap} segments (limit max_segments); split it or "
                                    "raise the limit", "segments")
        pos = end + 1


def _split_lines(data: bytes | str) -> tuple[list[tuple[int, bytes | str]], str | None, bytes | str]:
    """Strip MLLP framing and a BOM, split on CR/LF/CRLF, number non-blank lines (1-based); with the codec a BOM
    forces and the input without its framing."""
    forced: str | None = None
    if isinstance(data, str):
        data = data.lstrip("\ufeff").replace("\x0b", "").replace("\x1c", "")
        sep = "\r" if "\r" in data else "\n"
        raw = data.replace("\r\n", "\r").split(sep) if sep == "\r" else data.split("\n")
        return [(i, ln.strip("\n")) for i, ln in enumerate(raw, 1) if ln.strip("\n").strip()], None, data
    data = data.translate(_MLLP, b"\x0b\x1c")
    if data.startswith(_BOM):
        data, forced = data[len(_BOM):], "utf-8"
    # CR is the standard terminator; when present, a bare LF inside a segment is text, not a break.
    raw_b = data.replace(b"\r\n", b"\r").split(b"\r") if b"\r" in data else data.split(b"\n")
    return [(i, ln) for i, line in enumerate(raw_b, 1) if (ln := line.strip(b"\n")).strip()], forced, data


def _delimiters(line: str, lineno: int) -> Delimiters:
    if len(line) < 8:
        raise ParseError(f"line {lineno}: MSH is too short to hold MSH-1 and MSH-2", details="hl7v2-bad-msh",
                         expression="MSH-2")
    fs = line[3]
    enc = line[4:].split(fs, 1)[0]
    if fs.isalnum() or len(enc) < 4 or len(enc) > 5 or len(set(fs + enc)) != len(fs + enc):
        raise ParseError(f"line {lineno}: {_delimiter_fault(fs, enc)}{_type_note(line, fs)}",
                         details="hl7v2-bad-delimiters", expression="MSH-2")
    return Delimiters(fs, enc[0], enc[1], enc[2], enc[3], enc[4] if len(enc) > 4 else "")


def _delimiter_fault(fs: str, enc: str) -> str:
    """What is wrong with MSH-1/MSH-2, in plain words (HL7 v2.5.1 §2.5.4: a field separator, then four distinct
    encoding characters, component ^, repetition ~, escape \\, subcomponent &; v2.7 adds truncation #)."""
    usual = "they are normally ^~\\&"
    if fs.isalnum():
        return f"MSH-1, the field separator, is {_shown(fs)}, a letter or digit; it is normally '|'"
    if enc.count("\\") > 1:
        return (f"MSH-2 is {_shown(enc)}: the escape character \\ is doubled (a backslash escaped twice, as a "
                f"program's string literal writes it); the encoding characters must be four distinct characters, "
                f"{usual}")
    if len(enc) < 4:
        return (f"MSH-2 is {_shown(enc)}: it needs four encoding characters (component, repetition, escape, "
                f"subcomponent); {usual}")
    if len(enc) > 5:
        return f"MSH-2 is {_shown(enc)}: it holds more than the five encoding characters HL7 v2 defines; {usual}"
    if fs in enc:
        return f"MSH-2 is {_shown(enc)}: it reuses the field separator {_shown(fs)}; {usual}"
    twice = sorted({c for c in enc if enc.count(c) > 1})
    return (f"MSH-2 is {_shown(enc)}: it repeats {', '.join(map(_shown, twice))}; the encoding characters must be "
            f"distinct, {usual}")


def _shown(text: str) -> str:
    """Text quoted as written (repr would double every backslash, the very fault being described)."""
    return f"'{text}'" if text.isprintable() else repr(text)


def _type_note(line: str, fs: str) -> str:
    """MSH-9 as far as it can be read without delimiters, so a refusal names the message type too."""
    parts = line.split(fs)
    mtype = parts[8].split("^")[:2] if len(parts) > 8 else []
    if not mtype or not mtype[0].isalnum():
        return ""
    name = "^".join(p for p in mtype if p.isalnum())
    if name in ("ORU^R01", "ORU"):
        return ""
    return f"; besides, MSH-9 names an unsupported message type {name} (helixgate converts ORU^R01 only)"


def _decode(lines: list[tuple[int, bytes | str]], forced: str | None) -> tuple[list[tuple[int, str]], str, list[Issue]]:
    first = lines[0][1]
    if isinstance(first, str):
        return [(n, ln) for n, ln in lines if isinstance(ln, str)], "", []
    blob = b"\r".join(map(_TEXT, lines))  # type: ignore[arg-type]  # all bytes: the lines of one input
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
        return list(zip(map(_NUMBER, lines), text.split("\r"), strict=True)), c, warnings
    text = blob.decode("latin-1")
    warnings.append(Issue("warning", "value", "hl7v2-charset-undetected",
                          "bytes are neither UTF-8 nor GB 18030 and MSH-18 did not help; decoded as ISO 8859-1",
                          "MSH-18"))
    return list(zip(map(_NUMBER, lines), text.split("\r"), strict=True)), "latin-1", warnings


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


def _message(raw_lines: list[tuple[int, bytes | str]], forced: str | None, limits: Limits) -> Message:
    if len(raw_lines) > limits.max_segments:
        raise LimitExceeded(f"the message has {len(raw_lines)} segments, more than {limits.max_segments} "
                            "(limit max_segments); split it or raise the limit", "segments")
    lines, encoding, warnings = _decode(raw_lines, forced)
    d = _delimiters(lines[0][1], lines[0][0])
    seen: dict[str, int] = {}
    segments: list[Segment] = []
    # A line within every limit as a whole has no field, repetition or component over one: most lines are.
    short, few, wide = limits.max_field_length, min(limits.max_repetitions, limits.max_components), limits.max_fields
    fs, rs, cs, ss = d.field, d.repetition, d.component, d.subcomponent
    codec = encoding or "utf-8"
    dialect = dialect_of(d, codec)
    for lineno, line in lines:
        parts = line.split(fs)
        name = parts[0].strip()
        if name in _IDS:
            pass
        elif _SEGMENT_ID.match(name):
            _IDS.add(name)
        else:
            raise ParseError(f"line {lineno}: {name[:20]!r} is not an HL7 segment ID (3 upper-case letters/digits)",
                             details="hl7v2-bad-segment", expression=f"line {lineno}")
        occurrence = seen.get(name, 0) + 1
        if len(line) > short or len(parts) > wide or (len(line) >= few and (
                line.count(rs) >= few or line.count(cs) >= few or line.count(ss) >= few)):
            _check_fields(name, occurrence, parts, d, limits)  # some field may be over a limit
        seen[name] = occurrence
        parts[0] = name
        if name == "MSH":
            parts.insert(1, fs)
        segments.append(segment(name, tuple(parts), occurrence, lineno, d, codec, dialect))
    return Message(tuple(segments), d, encoding, tuple(warnings))


def _check_fields(name: str, occurrence: int, parts: list[str], d: Delimiters, limits: Limits) -> None:
    ref = f"{name}[{occurrence}]"
    if len(parts) - 1 > limits.max_fields:
        raise LimitExceeded(f"{ref} has {len(parts) - 1} fields, more than {limits.max_fields} (limit max_fields)",
                            "fields", ref)
    for n, part in enumerate(parts[1:], 2 if name == "MSH" else 1):
        if len(part) > limits.max_field_length:
            raise LimitExceeded(f"{ref}-{n} is {len(part)} characters long, more than {limits.max_field_length} "
                                "(limit max_field_length)", "field-length", f"{ref}-{n}")
        if d.repetition in part and part.count(d.repetition) >= limits.max_repetitions:
            raise LimitExceeded(f"{ref}-{n} has {part.count(d.repetition) + 1} repetitions, more than "
                                f"{limits.max_repetitions} (limit max_repetitions)", "repetitions", f"{ref}-{n}")
        cap = limits.max_components
        for sep, what in ((d.component, "components"), (d.subcomponent, "subcomponents")):
            if part.count(sep) < cap:  # cheap: the whole field is within the cap
                continue
            pieces = part.split(d.repetition) if what == "components" else re.split(
                "[" + re.escape(d.repetition + d.component) + "]", part)
            if max(p.count(sep) for p in pieces) >= cap:
                raise LimitExceeded(f"{ref}-{n} has more than {cap} {what} in one "
                                    f"{'repetition' if what == 'components' else 'component'} (limit max_components)",
                                    "components", f"{ref}-{n}")


def _envelope_segment(lineno: int, line: bytes | str) -> Segment:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    fs = text[3] if len(text) > 3 else "|"
    if text[:3] in ("FHS", "BHS"):
        enc = text[4:].split(fs, 1)[0]
        d = Delimiters(fs, *enc[:4]) if len(enc) >= 4 else Delimiters(fs)
        parts = text.split(fs)
        return Segment(text[:3], (text[:3], fs, *parts[1:]), 1, lineno, d)
    return Segment(text[:3], tuple(text.split(fs)), 1, lineno, Delimiters(fs))
