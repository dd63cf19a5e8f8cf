"""China WS 445 datasets as a helixgate format (mappers.toolkit.registry)."""

from __future__ import annotations

from typing import Any

import orjson

from mappers import ws445
from mappers.cda_cn.format import options
from mappers.conversion import Conversion
from mappers.toolkit.registry import ConvertOptions, Format, Rendered


def sniff(data: bytes) -> bool:
    """A JSON object keyed by data-element ids (DE02.01.039.00 …): parsed only when no resourceType is in sight."""
    if not data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") or b'"resourceType"' in data[:4096]:
        return False
    try:
        return ws445.looks_like(orjson.loads(data))
    except orjson.JSONDecodeError:
        return False


def _to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    return ws445.to_fhir(data, options(opts))


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    out = ws445.from_fhir(bundle)
    return Rendered(out.data, out.issues)


FORMAT = Format(
    name="ws445",
    title="China WS 445 dataset (JSON keyed by WS 363 data-element ids)",
    version=ws445.MAPPER_VERSION,
    media_type="application/x-ws445+json; charset=utf-8",
    media_types=("application/x-ws445+json",),
    sniff=sniff,
    to_fhir=_to_fhir,
    from_fhir=_from_fhir,
    sniff_order=20,
)
