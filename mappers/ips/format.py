"""IPS 2.0.0 documents as a helixgate writer format (mappers.toolkit.registry): any reader's FHIR Bundle composed
into an International Patient Summary document Bundle (mappers.ips.compose). IPS input is FHIR: the hub reads it."""

from __future__ import annotations

from typing import Any

import orjson

from mappers.exceptions import MappingError
from mappers.ips.compose import VERSION, compose
from mappers.toolkit.registry import ConvertOptions, Format, Rendered


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    doc, issues = compose(bundle, opts)
    return Rendered(orjson.dumps(doc), tuple(issues))


def fhir_of(data: bytes) -> dict[str, Any]:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:  # our own output: a bug, said plainly
        raise MappingError(f"the IPS document written cannot be read back: {e}", details="ips-unreadable",
                           code="exception") from None


FORMAT = Format(
    name="ips",
    title="HL7 International Patient Summary 2.0.0 document (written from FHIR; IPS input is read as fhir)",
    version=VERSION,
    media_type="application/fhir+json; charset=utf-8",
    media_types=(),  # IPS documents are FHIR JSON: the hub reads them
    sniff=lambda data: False,
    from_fhir=_from_fhir,
    fhir_of=fhir_of,
)
