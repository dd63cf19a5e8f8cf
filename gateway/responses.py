"""FHIR responses rendered with orjson, and OperationOutcome error responses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from gateway.formats import FHIR_JSON
from mappers.exceptions import Issue, operation_outcome


class FHIRResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


def outcome_response(status: int, code: str, details: str, message: str, *,
                     headers: dict[str, str] | None = None) -> FHIRResponse:
    """An error as an OperationOutcome with one issue."""
    severity = "fatal" if status >= 500 else "error"
    return FHIRResponse(operation_outcome([Issue(severity, code, details, message)]), status_code=status,
                        headers=headers)
