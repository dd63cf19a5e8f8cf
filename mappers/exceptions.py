"""Errors raised by the mappers, each carrying OperationOutcome-shaped issues.

    MappingError                 base: the input could not be converted
    ├── ParseError               the bytes are not a well-formed message of the claimed format (HTTP 400)
    ├── UnsupportedMessage       well-formed, but a type or structure no mapper handles (HTTP 422)
    └── EmitError                the content breaks a rule the target format needs (HTTP 422)

Every error holds `issues`; each issue names a FHIR IssueType code, a stable kebab-case details code,
a human message and, where known, an expression into the source (`OBX[3]-5`, `line 4`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding, rendered as an OperationOutcome.issue."""

    severity: str  # fatal | error | warning | information
    code: str  # FHIR IssueType: structure, value, not-supported, informational, ...
    details: str  # stable kebab-case identifier, e.g. "hl7v2-field-not-mapped"
    message: str
    expression: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "details": {
                "coding": [{"system": "urn:helixgate:issue", "code": self.details}],
                "text": self.message,
            },
        }
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    """An OperationOutcome listing `issues`; an empty list gives the spec's 'all ok' information issue."""
    if not issues:
        issues = [Issue("information", "informational", "ok", "No issues.")]
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


class MappingError(Exception):
    """Base class: conversion failed; `issues` says why and where."""

    def __init__(self, message: str, *, details: str, code: str = "invalid", expression: str | None = None,
                 issues: list[Issue] | None = None) -> None:
        super().__init__(message)
        self.issues = [Issue("error", code, details, message, expression), *(issues or [])]

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class ParseError(MappingError):
    """Raised when the input is not well-formed for its format (bad framing, no MSH, broken JSON...)."""

    def __init__(self, message: str, *, details: str = "parse-error", expression: str | None = None) -> None:
        super().__init__(message, details=details, code="structure", expression=expression)


class LimitExceeded(MappingError):
    """Raised when the input is larger than a configured limit allows (bytes, lines, segments, samples...): bounded
    work per input. The message names the limit, so the user knows what to split or which option to raise; it is
    answered 422 `too-costly` over HTTP (413 is the edge's request-size limit)."""

    def __init__(self, message: str, *, details: str, expression: str | None = None) -> None:
        super().__init__(message, details=details, code="too-costly", expression=expression)


class UnsupportedMessage(MappingError):
    """Raised when the input parses but is of a type or structure that no mapper converts."""

    def __init__(self, message: str, *, details: str = "unsupported-message", expression: str | None = None) -> None:
        super().__init__(message, details=details, code="not-supported", expression=expression)


class EmitError(MappingError):
    """Raised when the source content cannot be expressed in the target (e.g. a Bundle with no Patient)."""

    def __init__(self, message: str, *, details: str = "emit-error", expression: str | None = None) -> None:
        super().__init__(message, details=details, code="business-rule", expression=expression)
