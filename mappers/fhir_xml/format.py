"""FHIR R4 XML as a helixgate writer format (mappers.toolkit.registry): what the hub would write as FHIR JSON,
written as XML (http://hl7.org/fhir/R4/xml.html). Reading FHIR XML is the hub's (`fhir`) job: it sniffs XML in
the FHIR namespace.

The XML element order and which elements are attributes come from the R4 core StructureDefinitions (the installed
hl7.fhir.r4.core package, read once per process through profiles, as mappers.fhir.read reads XML); they are data,
so the same Bundle still gives the same bytes. `fhir_of` reads the written bytes back, so the edge validates what
was written, not what was meant to be.
"""

from __future__ import annotations

from typing import Any

from mappers.exceptions import MappingError, UnsupportedMessage
from mappers.toolkit.registry import ConvertOptions, Format, Rendered

VERSION = "fhir-xml/1.0.0"
MEDIA_TYPE = "application/fhir+xml; charset=utf-8"


def _no_definitions(e: Exception) -> UnsupportedMessage:
    return UnsupportedMessage(f"FHIR XML is written through the R4 core definitions, which are not installed ({e}); "
                              "run 'helixgate packages install', or ask for FHIR JSON",
                              details="fhir-xml-unwritable")


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    from profiles.packages import PackageError
    from profiles.xmlwrite import XmlWriteError, json_to_xml

    try:
        return Rendered(json_to_xml(bundle))
    except XmlWriteError as e:
        raise MappingError(f"the FHIR output cannot be written as XML: {e}", details="fhir-xml-unwritable",
                           code="processing", expression=e.path or None) from None
    except PackageError as e:
        raise _no_definitions(e) from None


def _fhir_of(data: bytes) -> dict[str, Any]:
    from profiles.packages import PackageError
    from profiles.xml import XmlError, xml_to_json

    try:
        return xml_to_json(data, None)
    except XmlError as e:  # the writer's own output: a bug, said plainly rather than validated as something else
        raise MappingError(f"the FHIR XML written cannot be read back: {e}", details="fhir-xml-unreadable",
                           code="exception") from None
    except PackageError as e:
        raise _no_definitions(e) from None


FORMAT = Format(
    name="fhir-xml",
    title="FHIR R4 XML (written from FHIR; FHIR XML input is read as fhir)",
    version=VERSION,
    media_type=MEDIA_TYPE,
    media_types=(),  # application/fhir+xml input is the hub's
    sniff=lambda data: False,
    from_fhir=_from_fhir,
    fhir_of=_fhir_of,
)
