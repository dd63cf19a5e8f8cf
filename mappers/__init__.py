"""Pure format mappers: national and exchange formats ⇄ FHIR R4. No I/O, no clock, no randomness."""

from mappers.exceptions import (
    EmitError,
    Issue,
    LimitExceeded,
    MappingError,
    ParseError,
    UnsupportedMessage,
    operation_outcome,
)

__all__ = ["EmitError", "Issue", "LimitExceeded", "MappingError", "ParseError", "UnsupportedMessage",
           "operation_outcome"]
