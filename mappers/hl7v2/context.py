"""Per-conversion state: options, the issues found, and which source fields were used."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mappers.exceptions import Issue
from mappers.hl7v2.model import Message, Segment

# Segments whose absence of use is not worth a report: framing and structure only.
_STRUCTURAL_FIELDS = {("MSH", 1), ("MSH", 2)}


@dataclass(frozen=True, slots=True)
class Options:
    """What the caller decides; mappers read nothing else.

    bundle_type: 'collection' or 'transaction' (conditional create on Patient identifier).
    timezone: '+HH:MM' assumed for v2 times that carry none; None keeps only their date and warns.
    received: when the edge received the input; becomes Provenance.recorded.
    """

    bundle_type: str = "collection"
    timezone: str | None = None
    received: datetime | None = None


@dataclass(slots=True)
class Context:
    message: Message
    options: Options = field(default_factory=Options)
    issues: list[Issue] = field(default_factory=list)
    _whole: set[tuple[str, int, int]] = field(default_factory=set)  # (segment, occurrence, field)
    _parts: dict[tuple[str, int, int], set[int]] = field(default_factory=dict)  # components used

    def use(self, seg: Segment, *fields: int) -> None:
        """Mark whole fields of `seg` as mapped."""
        for n in fields:
            self._whole.add((seg.name, seg.occurrence, n))

    def use_component(self, seg: Segment, n: int, *comps: int) -> None:
        self._parts.setdefault((seg.name, seg.occurrence, n), set()).update(comps)

    def use_segment(self, seg: Segment) -> None:
        for n in range(1, len(seg.fields)):
            self._whole.add((seg.name, seg.occurrence, n))

    def warn(self, details: str, message: str, where: str | None = None, code: str = "value") -> None:
        self.issues.append(Issue("warning", code, details, message, where))

    def inform(self, details: str, message: str, where: str | None = None, code: str = "informational") -> None:
        self.issues.append(Issue("information", code, details, message, where))

    def unmapped(self) -> list[Issue]:
        """One issue per non-empty field (or component) that no emitter marked as used."""
        out: list[Issue] = []
        for seg in self.message.segments:
            start = 3 if seg.name == "MSH" else 1
            present = [n for n in range(start, len(seg.fields)) if seg.fields[n]]
            if not present:
                continue
            if not any((seg.name, seg.occurrence, n) in self._whole or (seg.name, seg.occurrence, n) in self._parts
                       for n in present):
                sev = "warning" if seg.name.startswith("Z") else "information"
                kind = "Z-segment" if seg.name.startswith("Z") else "segment"
                out.append(Issue(sev, "informational", "hl7v2-segment-not-mapped",
                                 f"{kind} {seg.name} (line {seg.line}) was kept but not mapped to FHIR", seg.ref))
                continue
            for n in present:
                key = (seg.name, seg.occurrence, n)
                if key in self._whole or (seg.name, n) in _STRUCTURAL_FIELDS:
                    continue
                used = self._parts.get(key)
                if used is None:
                    out.append(Issue("information", "informational", "hl7v2-field-not-mapped",
                                     f"{seg.name}-{n} was not mapped", f"{seg.ref}-{n}"))
                    continue
                for rep, raw in enumerate(seg.repetitions(n), 1):
                    for c, text in enumerate(raw.split(seg.delims.component), 1):
                        if text and c not in used:
                            where = f"{seg.ref}-{n}.{c}" if rep == 1 else f"{seg.ref}-{n}({rep}).{c}"
                            out.append(Issue("information", "informational", "hl7v2-component-not-mapped",
                                             f"{seg.name}-{n}.{c} was not mapped", where))
        return out
