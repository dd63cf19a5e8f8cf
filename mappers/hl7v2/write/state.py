"""What one FHIR → v2 conversion shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from mappers.exceptions import Issue
from mappers.fhir.genomics import GenomicContent
from mappers.fhir.ledger import Ledger

TARGET = "HL7 v2 ORU^R01"


@dataclass(slots=True)
class State:
    content: GenomicContent
    ledger: Ledger = field(default_factory=lambda: Ledger(TARGET))
    issues: list[Issue] = field(default_factory=list)

    def warn(self, details: str, message: str, where: str | None = None, code: str = "informational") -> None:
        self.issues.append(Issue("warning", code, details, message, where))

    def inform(self, details: str, message: str, where: str | None = None) -> None:
        self.issues.append(Issue("information", "informational", details, message, where))
