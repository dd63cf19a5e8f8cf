"""The ORU^R01 shape the intake check enforces, on segment names only (no field parsing: it runs before every ACK).

It mirrors `mappers.hl7v2.structure.group_oru`, which the worker uses: that function needs a parsed Message
(~6× the cost of the whole intake check), so the rule is restated here over raw segment IDs, and
`tests/gateway/test_mllp.py` checks the two agree on every truncation and misspelling of the sample messages.
What it refuses is what the worker can never convert (no OBR; orders without any OBX while OBR-25 does not say
results are still to come: both signs of a message cut short) or would drop without an error (a segment ID no
ORU^R01 has, e.g. a misspelled OBX; an OBX or SPM outside any order). From v2.8 an OBX may follow the PID
(PATIENT_OBSERVATION): that is valid HL7, so it is let through (the conversion report lists it as not mapped).
"""

from __future__ import annotations

# Every segment an ORU^R01 may hold in HL7 v2.3 to v2.9 (v2.5.1 §7.3.1 and its successors), plus the batch
# envelope the parser understands. Z-segments are always allowed (kept, reported as not mapped).
ORU_R01 = frozenset({b"MSH", b"SFT", b"UAC", b"PID", b"PD1", b"PRT", b"ARV", b"NTE", b"NK1", b"PV1", b"PV2",
                     b"ORC", b"OBR", b"TQ1", b"TQ2", b"CTD", b"OBX", b"FT1", b"CTI", b"SPM", b"DEV", b"DSC"})
ENVELOPE = frozenset({b"FHS", b"BHS", b"BTS", b"FTS"})
KNOWN = ORU_R01 | ENVELOPE
try:  # OBR-25 (table 0123) values saying no result exists yet: the mapper's own, where it refuses empty reports
    from mappers.hl7v2.structure import NO_RESULT_YET as _NO_RESULT_YET

    NO_RESULT_YET: frozenset[bytes] | None = frozenset(v.encode() for v in _NO_RESULT_YET)
except ImportError:  # a mapper that converts an ORU without OBX: nothing to mirror
    NO_RESULT_YET = None


class OruShape:
    """Feed it the segment IDs after MSH, in order; `feed` and `finish` return (ERR-2 location, text) for the
    first problem, or None."""

    __slots__ = ("_counts", "_have_result", "_in_order", "_obr_status", "_patient_obx", "_separator")

    def __init__(self, version: bytes = b"2.5.1", separator: bytes = b"|") -> None:
        self._in_order = False  # an OBR opened an order that OBX/SPM can join (a PID closes it, as in group_oru)
        self._have_result = False  # an OBX inside an order
        self._obr_status: list[bytes] = []  # OBR-25 of each order
        self._counts: dict[bytes, int] = {}
        self._patient_obx = _at_least(version, (2, 8))
        self._separator = separator

    def feed(self, name: bytes, line: int, text: bytes = b"") -> tuple[str, str] | None:
        """`text` is the segment's line; only OBR's is read (OBR-25)."""
        occurrence = self._counts[name] = self._counts.get(name, 0) + 1
        if name == b"OBR":
            self._in_order = True
            fields = text.split(self._separator, 26)
            self._obr_status.append(fields[25].strip() if len(fields) > 25 else b"")
        elif name == b"PID":
            self._in_order = False
        elif name == b"OBX" or name == b"SPM":
            if self._in_order:
                self._have_result = self._have_result or name == b"OBX"
            elif not (self._patient_obx and name == b"OBX"):
                text = name.decode()
                return (f"{text}^{occurrence}", f"line {line}: {text} outside an order (no OBR before it since the "
                        "last PID); it cannot be converted and would be lost")
        elif name not in KNOWN and name[:1] != b"Z":
            text = name.decode("latin-1")
            return (f"{text}^{occurrence}", f"line {line}: {text} is not a segment of an ORU^R01 (misspelled?); "
                    "it would be lost. Z-segments are accepted")
        return None

    def finish(self) -> tuple[str, str] | None:
        if not self._obr_status:
            return ("OBR^1", "the ORU^R01 has no OBR, so there is no result to convert (was it cut short?)")
        if not self._have_result and NO_RESULT_YET is not None:
            for n, status in enumerate(self._obr_status, 1):
                if status not in NO_RESULT_YET:
                    return (f"OBR^{n}^25", f"the ORU^R01 has no OBX although OBR[{n}]-25 is "
                            f"{status.decode('latin-1')!r}, not a status saying results are still to come "
                            f"({', '.join(sorted(v.decode() for v in NO_RESULT_YET))}): there is no result to "
                            "convert (was it cut short?)")
        return None


def _at_least(version: bytes, wanted: tuple[int, int]) -> bool:
    """Whether an MSH-12 version such as b"2.8.2" is `wanted` or later (unreadable versions: no)."""
    parts = version.split(b".")
    try:
        return (int(parts[0]), int(parts[1] if len(parts) > 1 else 0)) >= wanted
    except ValueError:
        return False
