"""Source/target formats the gateway converts between, how each is recognised, and the converters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson

from mappers import cda_cn, ws445
from mappers.cda_cn.context import CHINA_TZ
from mappers.cda_cn.emit import MAPPER_VERSION as CN_MAPPER_VERSION
from mappers.exceptions import MappingError
from mappers.hl7v2.context import Options
from mappers.hl7v2.emit.provenance import MAPPER_VERSION
from mappers.hl7v2.from_fhir import EmitOptions, from_fhir
from mappers.hl7v2.to_fhir import to_fhir
from mappers.vcf import Options as VcfOptions
from mappers.vcf import from_fhir as vcf_from_fhir
from mappers.vcf import to_fhir as vcf_to_fhir
from mappers.vcf.context import MAPPER_VERSION as VCF_MAPPER_VERSION

FHIR_JSON = "application/fhir+json; charset=utf-8"
FHIR_NDJSON = "application/fhir+ndjson"
HL7V2_ER7 = "x-application/hl7-v2+er7; charset=utf-8"
VCF_TEXT = "text/vcf; charset=utf-8"
CDA_XML = "application/cda+xml; charset=utf-8"
WS445_JSON = "application/x-ws445+json; charset=utf-8"
VCF_BUNDLE_MAX_VARIANTS = 20_000  # a Bundle is built in memory; NDJSON streams any number
# Query/Parameters names of the VCF options (Request.params) -> VcfOptions fields.
VCF_PARAMS = {"sample": "sample", "genomicSource": "genomic_source", "sex": "sex", "patient": "patient",
              "assembly": "assembly", "lenient": "lenient", "keepFiltered": "keep_filtered"}

# Media types (without parameters) that name a source format.
MEDIA_TYPES = {
    "x-application/hl7-v2+er7": "hl7v2",
    "application/hl7-v2": "hl7v2",
    "application/hl7-v2+er7": "hl7v2",
    "application/edi-hl7": "hl7v2",
    "application/fhir+json": "fhir",
    "application/json+fhir": "fhir",
    "application/json": "fhir",
    "text/vcf": "vcf",
    "text/x-vcf": "vcf",
    "application/cda+xml": "cda-cn",
    "application/hl7-cda+xml": "cda-cn",
    "application/xml": "cda-cn",
    "text/xml": "cda-cn",
    "application/x-ws445+json": "ws445",
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
        version = VCF_MAPPER_VERSION if "vcf" in (self.source, self.target) else MAPPER_VERSION
        if {"cda-cn", "ws445"} & {self.source, self.target}:
            version = CN_MAPPER_VERSION
        return (self.source, self.target, self.bundle_type, self.timezone or "", version, *extra)


def _hl7v2_to_fhir(data: bytes, req: Request) -> Converted:
    conv = to_fhir(data, Options(bundle_type=req.bundle_type, timezone=req.timezone, received=req.received))
    return Converted(orjson.dumps(conv.bundle), FHIR_JSON, conv.outcome)


def _fhir_to_hl7v2(data: bytes, req: Request) -> Converted:
    msg = from_fhir(data, EmitOptions(timestamp=req.received))
    return Converted(msg.data, HL7V2_ER7, msg.outcome)


def vcf_options(req: Request, **extra: object) -> VcfOptions:
    """VcfOptions from the request's params (see VCF_PARAMS); raises ParseError for a bad value."""
    kw: dict[str, object] = {}
    for name, fld in VCF_PARAMS.items():
        value = req.param(name)
        if value is not None:
            kw[fld] = value.lower() in ("1", "true", "yes") if fld in ("lenient", "keep_filtered") else value
    return VcfOptions(bundle_type=req.bundle_type, received=req.received, **kw, **extra)  # type: ignore[arg-type]


def _vcf_to_fhir(data: bytes, req: Request) -> Converted:
    conv = vcf_to_fhir(data, vcf_options(req, max_variants=VCF_BUNDLE_MAX_VARIANTS))
    return Converted(orjson.dumps(conv.bundle), FHIR_JSON, conv.outcome)


def _fhir_to_vcf(data: bytes, req: Request) -> Converted:
    out = vcf_from_fhir(data)
    return Converted(out.data, VCF_TEXT, out.outcome)


def _cn_options(req: Request) -> cda_cn.Options:
    # China has one time zone; WS/T 500 and WS 445 times carry none, so +08:00 unless the caller names another.
    return cda_cn.Options(bundle_type=req.bundle_type, timezone=req.timezone or CHINA_TZ, received=req.received)


def _cda_cn_to_fhir(data: bytes, req: Request) -> Converted:
    conv = cda_cn.to_fhir(data, _cn_options(req))
    return Converted(orjson.dumps(conv.bundle), FHIR_JSON, conv.outcome)


def _fhir_to_cda_cn(data: bytes, req: Request) -> Converted:
    doc = cda_cn.from_fhir(data)
    return Converted(doc.data, CDA_XML, doc.outcome)


def _ws445_to_fhir(data: bytes, req: Request) -> Converted:
    conv = ws445.to_fhir(data, _cn_options(req))
    return Converted(orjson.dumps(conv.bundle), FHIR_JSON, conv.outcome)


def _fhir_to_ws445(data: bytes, req: Request) -> Converted:
    out = ws445.from_fhir(data)
    return Converted(out.data, WS445_JSON, out.outcome)


CONVERTERS: dict[tuple[str, str], Callable[[bytes, Request], Converted]] = {
    ("hl7v2", "fhir"): _hl7v2_to_fhir,
    ("fhir", "hl7v2"): _fhir_to_hl7v2,
    ("vcf", "fhir"): _vcf_to_fhir,
    ("fhir", "vcf"): _fhir_to_vcf,
    ("cda-cn", "fhir"): _cda_cn_to_fhir,
    ("fhir", "cda-cn"): _fhir_to_cda_cn,
    ("ws445", "fhir"): _ws445_to_fhir,
    ("fhir", "ws445"): _fhir_to_ws445,
}
SOURCES = sorted({s for s, _ in CONVERTERS})
DEFAULT_TARGET = {"hl7v2": "fhir", "fhir": "hl7v2", "vcf": "fhir", "cda-cn": "fhir", "ws445": "fhir"}


def detect(data: bytes) -> str | None:
    """Guess the source format from the first bytes (after a BOM, MLLP start byte and whitespace)."""
    head = data[:64].lstrip(b"\xef\xbb\xbf\x0b \t\r\n")
    if head.startswith((b"MSH", b"FHS", b"BHS")):
        return "hl7v2"
    if head.startswith(b"##fileformat=VCF") or data[:2] == b"\x1f\x8b":  # VCF, or gzip (bgzipped VCF)
        return "vcf"
    if head.startswith(b"<") and _is_cda_cn(data):
        return "cda-cn"
    if head.startswith(b"{"):
        return "ws445" if _is_ws445(data) else "fhir"
    return None


def _is_cda_cn(data: bytes) -> bool:
    """XML with a ClinicalDocument root and a China realm or OID (GB18030 keeps ASCII markup as bytes)."""
    head = data[:8192]
    return b"ClinicalDocument" in head and (b"2.16.156.10011" in head or b'realmCode code="CN"' in head)


def _is_ws445(data: bytes) -> bool:
    """A JSON object keyed by data-element ids (DE02.01.039.00 …): parsed only when no resourceType is in sight."""
    if b'"resourceType"' in data[:4096]:
        return False
    try:
        return ws445.looks_like(orjson.loads(data))
    except orjson.JSONDecodeError:
        return False


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
