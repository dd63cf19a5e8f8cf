"""The exchange rules: pure functions on FHIR R4 Bundles (no I/O, no clock, no randomness), one module each.

Each rule takes the Bundle (a dict it may not change), its part of the route and the transfer's facts, and
returns a `Step`: the new Bundle and the `Change`s it made (paths, never values: a diff must not carry the data it
removed), or raises `Refused` naming itself and what would satisfy it. The pipeline (gateway/exchange/pipeline.py)
applies them in `ORDER`; counters and delivery, which need I/O, come after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The fixed order: whether the transfer may happen at all (legal basis, consent, genetic export control) before
# anything is changed, then what is sent (minimisation), then how subjects are named (pseudonymisation last, so that
# consent matched the real patient and nothing dropped is pseudonymised).
ORDER = ("basis", "consent", "genetic", "minimise", "pseudonymise")


@dataclass(frozen=True, slots=True)
class Change:
    """One change a rule made: action is removed | generalised | replaced | withheld; path names the element as
    `Type/id.element[i]` of the Bundle before the change."""

    rule: str
    action: str
    path: str
    note: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"rule": self.rule, "action": self.action, "path": self.path}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(slots=True)
class Step:
    bundle: dict[str, Any]
    changes: list[Change] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # what the audit records (e.g. the HGR class)


class Refused(Exception):
    """A rule refuses the transfer: HTTP 403, CLI exit 3. `satisfy` says what would let it through."""

    def __init__(self, rule: str, message: str, satisfy: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.satisfy = satisfy

    def outcome(self) -> dict[str, Any]:
        return {"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "forbidden",
            "details": {"coding": [{"system": "urn:helixgate:exchange:rule", "code": self.rule}],
                        "text": f"refused by rule {self.rule}: {self.message}"},
            "diagnostics": f"to satisfy it: {self.satisfy}",
            "expression": [f"route.rules.{self.rule}"]}]}
