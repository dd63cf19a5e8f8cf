"""What one transfer states besides its content: purpose, references, the day it happens (the pipeline reads the
clock; rules do not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Purpose names a route may use → HL7 v3 PurposeOfUse (ActReason) codes, what Consent.provision.purpose carries.
PURPOSE_OF_USE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PURPOSES = {"treatment": "TREAT", "emergency": "ETREAT", "research": "HRESCH", "clinical-trial": "CLINTRCH",
            "public-health": "PUBHLTH", "payment": "HPAYMT", "operations": "HOPERAT", "patient-request": "PATRQT"}


@dataclass(frozen=True, slots=True)
class Transfer:
    purpose: str  # a route purpose name (PURPOSES) or a v3 ActReason code
    day: str  # YYYY-MM-DD the transfer happens (consent periods, counters' calendar year)
    mechanisms: tuple[str, ...] = ()  # transfer-mechanism ids the request cites (SCC/standard contract, assessment)
    legal_basis: str | None = None
    filing: str | None = None  # the HGR (MOST) filing id the request cites
    consents: tuple[dict[str, Any], ...] = field(default_factory=tuple)  # FHIR R4 Consent resources

    @property
    def purpose_code(self) -> str:
        return PURPOSES.get(self.purpose, self.purpose)
