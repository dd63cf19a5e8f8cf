"""FHIR R4 (JSON or XML) as a helixgate format: the hub (mappers.toolkit.registry.HUB)."""

from __future__ import annotations

from typing import Any

import orjson

from mappers.conversion import Conversion
from mappers.fhir.read import as_bundle, is_xml
from mappers.toolkit.registry import HUB, ConvertOptions, Format, Rendered

VERSION = "fhir/0.2.0"  # 0.2.0: FHIR XML read; wrapped resources get urn:uuid fullUrls and origins


def sniff(data: bytes) -> bool:
    return data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") or is_xml(data)


def _to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    return as_bundle(data)


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    return Rendered(orjson.dumps(bundle))


FORMAT = Format(
    name=HUB,
    title="FHIR R4 JSON or XML (Bundle, a single resource, or Parameters of resources)",
    version=VERSION,
    media_type="application/fhir+json; charset=utf-8",
    media_types=("application/fhir+json", "application/json+fhir", "application/json", "application/fhir+xml",
                 "application/xml+fhir"),
    sniff=sniff,
    to_fhir=_to_fhir,
    from_fhir=_from_fhir,
    sniff_order=90,  # any JSON object: after the formats that are JSON of their own (WS 445)
)
