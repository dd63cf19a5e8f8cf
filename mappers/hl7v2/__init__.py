"""HL7 v2.5.1 ⇄ FHIR R4 (Genomics Reporting IG 3.0.0): parse ER7, convert ORU^R01 to a Bundle and back."""

from mappers.hl7v2.context import Options
from mappers.hl7v2.from_fhir import EmitOptions, V2Message, from_fhir
from mappers.hl7v2.model import Batch, Delimiters, Message, Segment
from mappers.hl7v2.parse import LimitExceeded, Limits, parse_batch, parse_message
from mappers.hl7v2.to_fhir import Conversion, to_fhir

__all__ = [
    "Batch",
    "Conversion",
    "Delimiters",
    "EmitOptions",
    "LimitExceeded",
    "Limits",
    "Message",
    "Options",
    "Segment",
    "V2Message",
    "from_fhir",
    "parse_batch",
    "parse_message",
    "to_fhir",
]
