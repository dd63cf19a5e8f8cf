"""The edge's view of the format registry (mappers.toolkit.registry): how a request names its formats and options.
No format is named here; a new format package is picked up by the registry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mappers.exceptions import ParseError
from mappers.toolkit.registry import HUB, ConvertOptions, UnsupportedFormat, by_media_type, get, pairs, registry
from mappers.toolkit.registry import detect as detect_format
from mappers.toolkit.registry import resolve as resolve_formats

__all__ = ["FHIR_JSON", "FHIR_NDJSON", "FHIR_XML", "GENERIC_MEDIA_TYPES", "HUB", "Converted", "Request",
           "UnsupportedFormat", "detect", "format_params", "media_source", "names", "resolve", "validates_fhir"]

FHIR_JSON = "application/fhir+json; charset=utf-8"
FHIR_XML = "application/fhir+xml; charset=utf-8"
FHIR_NDJSON = "application/fhir+ndjson"
GENERIC_MEDIA_TYPES = {"text/plain", "application/octet-stream", ""}
BUNDLE_TYPES = ("collection", "transaction")


@dataclass(frozen=True, slots=True)
class Converted:
    body: bytes
    media_type: str
    outcome: dict


@dataclass(frozen=True, slots=True)
class Request:
    """What a conversion depends on; every field is part of the cache key (with the mappers' versions).

    allow_invalid: return output that fails validation, its errors in the report (default: refuse it).
    """

    source: str
    target: str
    options: ConvertOptions = field(default_factory=ConvertOptions)
    allow_invalid: bool = False

    def key_parts(self) -> tuple[str, ...]:
        versions = (get(self.source).version, get(self.target).version)
        return (self.source, self.target, *versions, *self.options.key_parts(), f"allow-invalid={self.allow_invalid}")


def names(direction: str = "any") -> list[str]:
    """Format names: 'read' (to FHIR), 'write' (from FHIR) or any."""
    fmts = registry().values()
    if direction == "read":
        return [f.name for f in fmts if f.to_fhir]
    if direction == "write":
        return [f.name for f in fmts if f.from_fhir]
    return [f.name for f in fmts]


def media_source(media: str, data: bytes | None = None) -> str | None:
    """The format a Content-Type names (parameters ignored); None for generic or unknown types. With the body, a
    media type several formats claim goes to the one whose sniff accepts it."""
    fmt = by_media_type(media, data)
    return fmt.name if fmt else None


def detect(data: bytes) -> str | None:
    fmt = detect_format(data)
    return fmt.name if fmt else None


def resolve(data: bytes, source: str | None, target: str | None) -> tuple[str, str]:
    """Settle source and target names, detecting the source when not given. Raises UnsupportedFormat."""
    src, tgt = resolve_formats(data, source, target)
    return src.name, tgt.name


def format_params(source: str, target: str, given: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The format options among `given` (query or Parameters pairs) that the source or target declares, sorted;
    a value outside an option's choices is a ParseError naming them."""
    known = {o.name: o for name in {source, target} for o in get(name).options}
    out = {}
    for name, value in given:
        opt = known.get(name)
        if opt is None:
            continue
        if opt.choices and value not in opt.choices:
            raise ParseError(f"{name} {value!r} must be one of {', '.join(opt.choices)}", details="bad-option",
                             expression=name)
        out[name] = value
    return tuple(sorted(out.items()))


def validates_fhir(target: str) -> bool:
    """Whether a conversion to `target` writes FHIR that the edge validates: the hub, or a writer with `fhir_of`
    (FHIR XML, IPS documents), so the validator must be at hand."""
    return target == HUB or get(target).fhir_of is not None


def conversions() -> str:
    return ", ".join(f"{s}->{t}" for s, t in pairs())
