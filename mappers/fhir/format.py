"""FHIR R4 JSON as a helixgate format: the hub (mappers.toolkit.registry.HUB)."""

from __future__ import annotations

from typing import Any

import orjson

from mappers.conversion import Conversion
from mappers.fhir.read import as_bundle
from mappers.toolkit.registry import HUB, ConvertOptions, Format, Rendered

VERSION = "fhir/0.1.0"


def sniff(data: bytes) -> bool:
    return data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def _to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    return as_bundle(data)


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    return Rendered(orjson.dumps(bundle))


FORMAT = Format(
    name=HUB,
    title="FHIR R4 JSON (Bundle, a single resource, or Parameters of resources)",
    version=VERSION,
    media_type="application/fhir+json; charset=utf-8",
    media_types=("application/fhir+json", "application/json+fhir", "application/json"),
    sniff=sniff,
    to_fhir=_to_fhir,
    from_fhir=_from_fhir,
    sniff_order=90,  # any JSON object: after the formats that are JSON of their own (WS 445)
)
