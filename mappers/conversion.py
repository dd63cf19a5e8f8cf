"""What every mapper to FHIR returns, and how every mapper from FHIR reads its input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from mappers.exceptions import Issue, ParseError, operation_outcome


@dataclass(frozen=True, slots=True)
class Conversion:
    """A converted input: the Bundle and the conversion report (what was not mapped, what was guessed)."""

    bundle: dict[str, Any]
    issues: tuple[Issue, ...]

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def load_bundle(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The input Bundle as a dict. Raises ParseError for bad JSON or another resource type."""
    if isinstance(data, dict):
        doc = data
    else:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise ParseError(f"input is not JSON: {e}", details="fhir-bad-json") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        raise ParseError("expected a FHIR Bundle (resourceType 'Bundle')", details="fhir-not-a-bundle",
                         expression="resourceType")
    return doc
