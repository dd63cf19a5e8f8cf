"""`import helixgate`: the Python API for programs that embed the gateway — convert, validate, translate (and
exchange, not yet in-process). Only a re-export of gateway.api, where they live and are documented; the project's
own packages stay gateway, mappers, profiles and conformance."""

from gateway import __version__
from gateway.api import (
    Conversion,
    InvalidOutput,
    Issue,
    MappingError,
    Translation,
    Validation,
    as_model,
    convert,
    exchange,
    from_model,
    translate,
    validate,
)

__all__ = ["Conversion", "InvalidOutput", "Issue", "MappingError", "Translation", "Validation", "__version__",
           "as_model", "convert", "exchange", "from_model", "translate", "validate"]
