"""FHIR responses rendered with orjson, and OperationOutcome error responses."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from gateway.formats import FHIR_JSON
from mappers.exceptions import Issue, operation_outcome

log = logging.getLogger("helixgate.http")


class FHIRResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        """orjson's bytes; content it cannot write (nested deeper than 255 levels, integers beyond 64 bits: both
        reachable from client input) becomes an OperationOutcome with status 422 instead of an exception."""
        if isinstance(content, bytes):
            return content
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError as e:
            from_input = any(s in str(e) for s in ("Recursion limit", "64-bit"))  # else a bug: a 500, logged
            if not from_input:
                log.error("response not serialisable: %s", e)
            self.status_code = 422 if from_input else 500
            return orjson.dumps(operation_outcome([Issue(
                "error" if from_input else "fatal", "too-costly" if from_input else "exception",
                "unwritable-response", f"the result cannot be written as JSON: {e}")]))


def outcome_response(status: int, code: str, details: str, message: str, *,
                     headers: dict[str, str] | None = None) -> FHIRResponse:
    """An error as an OperationOutcome with one issue."""
    severity = "fatal" if status >= 500 else "error"
    return FHIRResponse(operation_outcome([Issue(severity, code, details, message)]), status_code=status,
                        headers=headers)
