"""IPS 2.0.0 documents as a helixgate writer format (mappers.toolkit.registry): any reader's FHIR Bundle composed
into an International Patient Summary document Bundle (mappers.ips.compose). IPS input is FHIR: the hub reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from mappers.exceptions import Issue, MappingError, ParseError
from mappers.fhir.shape import check_resource
from mappers.ips.compose import VERSION, compose
from mappers.toolkit.registry import ConvertOptions, Format, Rendered

Composer = Callable[[dict[str, Any], ConvertOptions], tuple[dict[str, Any], list[Issue]]]


def checked(composer: Composer, bundle: dict[str, Any], opts: ConvertOptions) -> tuple[dict[str, Any], list[Issue]]:
    """`composer` on a Bundle whose elements have the JSON types FHIR R4 gives them (mappers.fhir.shape, as the
    eHDSI writer checks them); content of another shape is the client's input, refused with a ParseError, never a
    TypeError out of the composition (found by bench/fuzz/fuzz_fhir_to_ips.py)."""
    check_resource(bundle, "Bundle")
    for i, e in enumerate(bundle.get("entry") or []):
        if isinstance(e, dict) and "resource" in e:
            check_resource(e["resource"], f"Bundle.entry[{i}].resource")
    try:
        return composer(bundle, opts)
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as e:
        raise ParseError(f"the Bundle has an element that is not shaped as FHIR R4 JSON says ({type(e).__name__}: "
                         f"{e})", details="fhir-wrong-type", expression="Bundle") from None


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    doc, issues = checked(compose, bundle, opts)
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
