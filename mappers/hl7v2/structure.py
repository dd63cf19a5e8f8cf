"""ORU^R01 segment grouping (HL7 v2.5.1 §7.3.1): PATIENT_RESULT → ORDER_OBSERVATION → OBSERVATION / SPECIMEN."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from mappers.exceptions import UnsupportedMessage
from mappers.hl7v2.model import Message, Segment

SUPPORTED = ("ORU^R01",)
# OBR-25 (HL7 table 0123) values saying no result exists yet: an order without OBX is then complete as sent.
NO_RESULT_YET = {"O", "I", "S"}


@cache
def known_segments() -> frozenset[str]:
    """Segment IDs HL7 v2 defines (tables/segments.json)."""
    path = Path(__file__).parent / "tables" / "segments.json"
    return frozenset(json.loads(path.read_text(encoding="utf-8"))["segments"])


@dataclass(slots=True, init=False)
class Observation:
    """One OBX row with its NTE notes, and what every emitter reads of it: OBX-2 (value type) and OBX-4 (sub-ID),
    read once here."""

    obx: Segment
    notes: list[Segment]
    # The LRI genetic variable the row carries (mappers.hl7v2.variable_names.Recognised), set by the mapper;
    # apart: the row names a variable it cannot be (code and name disagree, or its value does not fit), so it is
    # kept as a result of its own, never inside a variant.
    variable: Any
    apart: bool
    vt: str  # OBX-2
    sub: str  # OBX-4
    group: str  # its variant group: OBX-4 up to the first '.' (mappers.hl7v2.emit.genomics.group_key)
    plan: Any  # how a variant takes the row, read with its variable (mappers.hl7v2.emit.genomics), else None

    def __init__(self, obx: Segment, notes: list[Segment] | None = None) -> None:
        self.obx = obx
        self.notes = [] if notes is None else notes
        self.variable = None
        self.apart = False
        self.plan = None
        # both are short codes, read as they stand when they hold no delimiter (what Segment.get gives, without
        # two calls per row)
        fields, d = obx.fields, obx.delims
        vt, sub = (fields[2], fields[4]) if len(fields) > 4 else (obx.get(2), obx.get(4))
        cs, rs, ss, es = d.component, d.repetition, d.subcomponent, d.escape
        self.vt = obx.get(2) if cs in vt or rs in vt or ss in vt or es in vt else vt
        self.sub = sub = obx.get(4) if cs in sub or rs in sub or ss in sub or es in sub else sub
        self.group = sub.split(".", 1)[0] if "." in sub else sub


@dataclass(slots=True)
class Specimen:
    spm: Segment
    observations: list[Observation] = field(default_factory=list)


@dataclass(slots=True)
class Order:
    obr: Segment
    orc: Segment | None = None
    notes: list[Segment] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    specimens: list[Specimen] = field(default_factory=list)


@dataclass(slots=True)
class PatientResult:
    pid: Segment | None
    notes: list[Segment] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)


def group_oru(msg: Message) -> list[PatientResult]:
    """Group the segments of an ORU^R01. Raises UnsupportedMessage for other types, an ORU with no OBR, or one
    whose orders carry no OBX although OBR-25 does not say results are still to come (a truncated message, or a
    corrected report sent without its results: converting it would deliver an empty report).

    Segments outside the groups (SFT, PD1, PV1, TQ1, CTD, FT1, DSC, Z-segments) are left for the
    conversion report.
    """
    mtype = msg.message_type
    if mtype not in SUPPORTED and not (mtype == "ORU" and msg.msh.get(9, 3) == "ORU_R01"):
        raise UnsupportedMessage(
            f"unsupported message type {mtype or '(empty MSH-9)'}: helixgate converts {', '.join(SUPPORTED)} to FHIR",
            details="hl7v2-unsupported-message-type", expression="MSH-9")
    results: list[PatientResult] = []
    order: Order | None = None
    pending_orc: Segment | None = None
    specimen: Specimen | None = None
    last: Observation | Order | PatientResult | None = None
    for seg in msg.segments[1:]:
        name = seg.name
        if name == "PID":
            results.append(PatientResult(seg))
            order, specimen, last = None, None, results[-1]
        elif name == "ORC":
            pending_orc = seg
        elif name == "OBR":
            if not results:
                results.append(PatientResult(None))
            order = Order(seg, pending_orc)
            pending_orc, specimen, last = None, None, order
            results[-1].orders.append(order)
        elif name == "OBX" and order is not None:
            obs = Observation(seg)
            (specimen.observations if specimen else order.observations).append(obs)
            last = obs
        elif name == "SPM" and order is not None:
            specimen = Specimen(seg)
            order.specimens.append(specimen)
            last = None
        elif name == "NTE" and last is not None:
            last.notes.append(seg)
    if not any(r.orders for r in results):
        raise UnsupportedMessage("ORU^R01 without an OBR: there is no result to convert",
                                 details="hl7v2-no-order", expression="OBR")
    orders = [o for r in results for o in r.orders]
    if not any(o.observations or any(s.observations for s in o.specimens) for o in orders):
        pending = [o for o in orders if o.obr.get(25) in NO_RESULT_YET]
        if len(pending) < len(orders):
            first = next(o for o in orders if o not in pending).obr
            status = first.get(25)
            raise UnsupportedMessage(
                f"ORU^R01 without any OBX: {first.ref} ({first.get(4, 2) or first.get(4) or 'no OBR-4'}) carries no "
                f"result although OBR-25 is {status or 'empty'!r}, not a status saying results are still to come "
                f"({', '.join(sorted(NO_RESULT_YET))}); the message may be truncated. Nothing to convert",
                details="hl7v2-no-result", expression=f"{first.ref}-25")
    return results
