"""The segment-level part of the MLLP intake check: every line a segment, one MSH, and the ORU^R01 shape, on
segment names only (no field parsing but OBR-25: it runs before every ACK).

It mirrors `mappers.hl7v2.structure.group_oru`, which the worker uses: that function needs a parsed Message
(~6× the cost of the whole intake check), so the rule is restated here over raw segment IDs, with the mapper's
own segment list and OBR-25 codes; `tests/gateway/test_mllp.py` cuts and misspells the sample messages to check
the two agree. What only a conversion can tell (an OBX that yields no Observation) is left to the worker, which
dead-letters such a message at once.
What it refuses is what the worker can never convert (no OBR; orders without any OBX while OBR-25 does not say
results are still to come: both signs of a message cut short) or would drop without an error (a segment ID no
HL7 v2 has, e.g. a misspelled OBX; an OBX or SPM outside any order). From v2.8 an OBX may follow the PID
(PATIENT_OBSERVATION): that is valid HL7, so it is let through (the conversion report lists it as not mapped).
"""

from __future__ import annotations

import re

from mappers.hl7v2.structure import NO_RESULT_YET as _NO_RESULT_YET
from mappers.hl7v2.structure import known_segments

_SEGMENT = re.compile(rb"[A-Z][A-Z0-9]{2}")

# Segment IDs that are not misspellings: every ID HL7 v2 defines (the mapper's list; a defined segment out of place
# is kept and reported by the conversion, nothing is lost) and the batch envelope. Z-segments are always allowed.
KNOWN = frozenset(s.encode() for s in known_segments()) | {b"FHS", b"BHS", b"BTS", b"FTS"}
# OBR-25 (table 0123) values saying no result exists yet: the mapper refuses an ORU without OBX unless all say so.
NO_RESULT_YET = frozenset(v.encode() for v in _NO_RESULT_YET)


def walk(lines: list[bytes], separator: bytes, version: bytes) -> tuple[str, str, str] | None:
    """The first reason the worker could not convert a message of these lines (split at its terminators), as
    (failure, ERR-2 location, text), or None: a line that is not a segment, a second MSH, then the ORU^R01 shape.
    One tight pass over the lines: it runs before every ACK."""
    in_order = False  # an OBR opened an order that OBX/SPM can join (a PID closes it, as in group_oru)
    have_result = False  # an OBX inside an order
    statuses: list[bytes] = []  # OBR-25 of each order
    seen_msh = False
    for number, line in enumerate(lines, 1):
        name = line[:3]
        if name == b"OBX" and line[3:4] in (separator, b""):  # the common case first
            if in_order:
                have_result = True
            elif not _at_least(version, (2, 8)):  # from v2.8 an OBX may follow the PID (PATIENT_OBSERVATION)
                return _outside(lines, number)
            continue
        line = line.strip(b"\n")
        if not line.strip():
            continue
        name = line[:3]
        if not (name in KNOWN or _SEGMENT.fullmatch(name)) or (len(line) > 3 and line[3:4] != separator):
            if not seen_msh and line.lstrip(b"\xef\xbb\xbf\x0b \t").startswith(b"MSH"):
                seen_msh = True
                continue
            return ("unparseable", f"line {number}",
                    f"line {number} is not a segment (3-character ID and the field separator)")
        if name == b"OBR":
            in_order = True
            fields = line.split(separator, 26)
            statuses.append(fields[25].strip() if len(fields) > 25 else b"")
        elif name == b"PID":
            in_order = False
        elif name == b"OBX":  # after a stray LF
            if in_order:
                have_result = True
            elif not _at_least(version, (2, 8)):
                return _outside(lines, number)
        elif name == b"SPM":
            if not in_order:
                return _outside(lines, number)
        elif name == b"MSH":
            if seen_msh:
                return ("rejected", f"line {number}", "the frame holds more than one message; send one message per "
                        "frame")
            seen_msh = True
        elif name not in KNOWN and name[:1] != b"Z":
            text = name.decode("latin-1")
            return ("unparseable", f"{text}^{_occurrence(lines, number)}", f"line {number}: {text} is not an HL7 v2 "
                    "segment (misspelled?); its row would be lost. Z-segments are accepted")
    if not statuses:
        return ("unparseable", "OBR^1", "the ORU^R01 has no OBR, so there is no result to convert (was it cut "
                "short?)")
    if not have_result:
        for n, status in enumerate(statuses, 1):
            if status not in NO_RESULT_YET:
                pending = ", ".join(sorted(v.decode() for v in NO_RESULT_YET))
                return ("unparseable", f"OBR^{n}^25", f"the ORU^R01 has no OBX although OBR[{n}]-25 is "
                        f"{status.decode('latin-1')!r}, not a status saying results are still to come ({pending}): "
                        "there is no result to convert (was it cut short?)")
    return None


def _outside(lines: list[bytes], number: int) -> tuple[str, str, str]:
    text = lines[number - 1].strip(b"\n")[:3].decode()
    return ("unparseable", f"{text}^{_occurrence(lines, number)}", f"line {number}: {text} outside an order (no OBR "
            "before it since the last PID); it cannot be converted and would be lost")


def _occurrence(lines: list[bytes], number: int) -> int:
    """The rank of line `number`'s segment among those of its name so far (counted only for an error)."""
    name = lines[number - 1].strip(b"\n")[:3]
    return sum(1 for line in lines[:number] if line.strip(b"\n")[:3] == name)


def _at_least(version: bytes, wanted: tuple[int, int]) -> bool:
    """Whether an MSH-12 version such as b"2.8.2" is `wanted` or later (unreadable versions: no)."""
    parts = version.split(b".")
    try:
        return (int(parts[0]), int(parts[1] if len(parts) > 1 else 0)) >= wanted
    except ValueError:
        return False
