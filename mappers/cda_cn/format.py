"""China WS/T 500-2016 CDA documents as a helixgate format (mappers.toolkit.registry)."""

from __future__ import annotations

from typing import Any

from mappers import cda_cn
from mappers.cda_cn.context import CHINA_TZ
from mappers.cda_cn.emit import MAPPER_VERSION
from mappers.conversion import Conversion
from mappers.toolkit.registry import ConvertOptions, Format, Option, Rendered


def options(opts: ConvertOptions) -> cda_cn.Options:
    # China has one time zone; WS/T 500 and WS 445 times carry none, so +08:00 unless the caller names another.
    return cda_cn.Options(bundle_type=opts.bundle_type, timezone=opts.timezone or CHINA_TZ, recorded=opts.recorded)


def sniff(data: bytes) -> bool:
    """XML with a ClinicalDocument root and a China realm or OID (GB18030 keeps ASCII markup as bytes)."""
    head = data[:8192]
    return (head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and b"ClinicalDocument" in head
            and (b"2.16.156.10011" in head or b'realmCode code="CN"' in head))


def _to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    return cda_cn.to_fhir(data, options(opts))


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    doc = cda_cn.from_fhir(bundle, document=opts.param("document"))
    return Rendered(doc.data, doc.issues)


FORMAT = Format(
    name="cda-cn",
    title="China WS/T 500-2016 CDA (lab C0007, exam C0006)",
    version=MAPPER_VERSION,
    media_type="application/cda+xml; charset=utf-8",
    media_types=("application/cda+xml", "application/hl7-cda+xml", "application/xml", "text/xml"),
    sniff=sniff,
    to_fhir=_to_fhir,
    from_fhir=_from_fhir,
    options=(Option("document", "written from FHIR: 'summary' = the medical-record summary (C0001) of an IPS "
                    "document (its default), 'report' = the lab/exam record (C0007/C0006) of its DiagnosticReport "
                    "(the default for other Bundles)", choices=("summary", "report")),),
    sniff_order=20,
)
