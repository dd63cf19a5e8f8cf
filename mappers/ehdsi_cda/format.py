"""MyHealth@EU (eHDSI) Patient Summary CDA as a helixgate format (mappers.toolkit.registry)."""

from __future__ import annotations

from typing import Any

from mappers.conversion import Conversion
from mappers.ehdsi_cda import codes as C
from mappers.ehdsi_cda.from_fhir import from_fhir
from mappers.ehdsi_cda.rules import check
from mappers.ehdsi_cda.to_fhir import MAPPER_VERSION, to_fhir
from mappers.toolkit.registry import ConvertOptions, Format, Option, Rendered

_MARK = C.EHDSI.encode() + b".1."  # every eHDSI document templateId starts so


def sniff(data: bytes) -> bool:
    """XML with a ClinicalDocument root and an eHDSI document templateId near the top."""
    head = data[:8192]
    return (head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and b"ClinicalDocument" in head
            and _MARK in head)


def _to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    return to_fhir(data, opts.timezone, opts.bundle_type)


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    out, issues = from_fhir(bundle, opts)
    return Rendered(out, tuple(issues))


FORMAT = Format(
    name="ehdsi-cda",
    title="MyHealth@EU (eHDSI) CDA: Patient Summary L3 ⇄ IPS document, ePrescription → MedicationRequests",
    version=MAPPER_VERSION,
    media_type="application/cda+xml; charset=utf-8",
    media_types=("application/cda+xml", "application/hl7-cda+xml", "application/xml", "text/xml"),
    sniff=sniff,
    to_fhir=_to_fhir,
    from_fhir=_from_fhir,
    options=(Option("language", "the document's languageCode (xx-XX) when the Bundle states none, or only the "
                    "language (en)", metavar="LANG"),),
    check_output=check,
    sniff_order=19,  # before China CDA: an eHDSI document about a Chinese patient may carry China OIDs
)
