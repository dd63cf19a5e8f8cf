"""`import helixgate`: the Python API for programs that embed the gateway — convert, validate, translate,
exchange. Only a re-export of gateway.api, where they live and are documented; the project's
own packages stay gateway, mappers, profiles and conformance."""

from gateway import __version__
from gateway.api import (
    Conversion,
    Exchange,
    InvalidOutput,
    Issue,
    MappingError,
    Refused,
    Translation,
    Validation,
    as_model,
    convert,
    exchange,
    from_model,
    translate,
    validate,
)

__all__ = ["Conversion", "Exchange", "InvalidOutput", "Issue", "MappingError", "Refused", "Translation", "Validation",
           "__version__", "as_model", "convert", "exchange", "from_model", "translate", "validate"]

