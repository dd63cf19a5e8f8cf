"""Source/target formats the gateway converts between, how each is recognised, and the converters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson

from mappers.exceptions import MappingError
from mappers.hl7v2.context import Options
from mappers.hl7v2.emit.provenance import MAPPER_VERSION
from mappers.hl7v2.from_fhir import EmitOptions, from_fhir
from mappers.hl7v2.to_fhir import to_fhir

FHIR_JSON = "application/fhir+json; charset=utf-8"
HL7V2_ER7 = "x-application/hl7-v2+er7; charset=utf-8"

# Media types (without parameters) that name a source format.
MEDIA_TYPES = {
    "x-application/hl7-v2+er7": "hl7v2",
    "application/hl7-v2": "hl7v2",
    "application/hl7-v2+er7": "hl7v2",
    "application/edi-hl7": "hl7v2",
    "application/fhir+json": "fhir",
    "application/json+fhir": "fhir",
    "application/json": "fhir",
}
GENERIC_MEDIA_TYPES = {"text/plain", "application/octet-stream", ""}


class UnsupportedFormat(MappingError):
    """Raised when the source or target format is unknown, or the pair has no converter (HTTP 415)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, details="unsupported-format", code="not-supported")


@dataclass(frozen=True, slots=True)
class Converted:
    body: bytes
    media_type: str
    outcome: dict


@dataclass(frozen=True, slots=True)
class Request:
    """What a conversion depends on; every field but `received` is part of the cache key.

    `params` holds format-specific options (e.g. a VCF sample name) as sorted (name, value) pairs.
    """

    source: str
    target: str
    bundle_type: str = "collection"
    timezone: str | None = None
    received: datetime | None = None
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.params if k == name), default)

    def key_parts(self) -> tuple[str, ...]:
        extra = tuple(f"{k}={v}" for k, v in sorted(self.params))
        return (self.source, self.target, self.bundle_type, self.timezone or "", MAPPER_VERSION, *extra)


def _hl7v2_to_fhir(data: bytes, req: Request) -> Converted:
    conv = to_fhir(data, Options(bundle_type=req.bundle_type, timezone=req.timezone, received=req.received))
    return Converted(orjson.dumps(conv.bundle), FHIR_JSON, conv.outcome)


def _fhir_to_hl7v2(data: bytes, req: Request) -> Converted:
    msg = from_fhir(data, EmitOptions(timestamp=req.received))
    return Converted(msg.data, HL7V2_ER7, msg.outcome)


CONVERTERS: dict[tuple[str, str], Callable[[bytes, Request], Converted]] = {
    ("hl7v2", "fhir"): _hl7v2_to_fhir,
    ("fhir", "hl7v2"): _fhir_to_hl7v2,
}
SOURCES = sorted({s for s, _ in CONVERTERS})
DEFAULT_TARGET = {"hl7v2": "fhir", "fhir": "hl7v2"}


def detect(data: bytes) -> str | None:
    """Guess the source format from the first bytes (after a BOM, MLLP start byte and whitespace)."""
    head = data[:64].lstrip(b"\xef\xbb\xbf\x0b \t\r\n")
    if head.startswith((b"MSH", b"FHS", b"BHS")):
        return "hl7v2"
    if head.startswith(b"{"):
        return "fhir"
    return None


def resolve(data: bytes, source: str | None, target: str | None) -> tuple[str, str]:
    """Settle source and target, detecting the source when not given. Raises UnsupportedFormat."""
    src = source or detect(data)
    if src is None:
        raise UnsupportedFormat(f"cannot tell the input format; name it (one of: {', '.join(SOURCES)})")
    if src not in DEFAULT_TARGET:
        raise UnsupportedFormat(f"unknown source format {src!r}; supported: {', '.join(SOURCES)}")
    tgt = target or DEFAULT_TARGET[src]
    if (src, tgt) not in CONVERTERS:
        pairs = ", ".join(f"{s}->{t}" for s, t in CONVERTERS)
        raise UnsupportedFormat(f"no conversion from {src} to {tgt}; supported: {pairs}")
    return src, tgt
