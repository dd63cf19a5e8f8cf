"""What every mapper to FHIR returns, and how every mapper from FHIR reads its input."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from mappers.exceptions import Issue, ParseError, operation_outcome


@dataclass(frozen=True, slots=True)
class Conversion:
    """A converted input: the Bundle and the conversion report (what was not mapped, what was guessed)."""

    bundle: dict[str, Any]
    issues: tuple[Issue, ...]
    # Where each output resource (key: its id) or element (key: "id:path", path as FHIRPath from the resource,
    # e.g. "abc:effectiveDateTime") came from in the source, as a source expression (`OBX[3]-14`, `line 12`,
    # an XPath). Lets an error in the output name the source field that produced it (mappers.toolkit.origins).
    origins: dict[str, str] = field(default_factory=dict)

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
