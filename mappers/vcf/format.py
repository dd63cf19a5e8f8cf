"""VCF 4.x as a helixgate format (mappers.toolkit.registry). Large files stream through vcf.Converter instead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from mappers.conversion import Conversion
from mappers.exceptions import ParseError
from mappers.toolkit.registry import ConvertOptions, Format, Option, Rendered
from mappers.vcf.context import GENOMIC_SOURCES, MAPPER_VERSION, SEXES, Options
from mappers.vcf.from_fhir import from_fhir
from mappers.vcf.parse import iter_lines
from mappers.vcf.serialize import ndjson
from mappers.vcf.to_fhir import Converter, to_fhir

# A Bundle is built in memory (~39 KB per variant: 5,000 ≈ 200 MB); NDJSON streams any number.
BUNDLE_MAX_VARIANTS = 5_000

OPTIONS = (
    Option("sample", "sample column to convert (default: the first)"),
    Option("genomicSource", "genomic source class", choices=GENOMIC_SOURCES, aliases=("--source",)),
    Option("sex", "patient sex; male makes X/Y calls outside the PARs hemizygous", choices=SEXES),
    Option("patient", "patient identifier (default: the sample name)", metavar="[SYSTEM|]ID"),
    Option("assembly", "reference assembly (default: from the header)", choices=("GRCh37", "GRCh38")),
    Option("lenient", "skip and count malformed records instead of failing", flag=True),
    Option("keepFiltered", "also convert records whose FILTER is not PASS", flag=True),
)


def options(opts: ConvertOptions, **extra: Any) -> Options:
    """The VCF mapper's Options from generic ones; raises ParseError for a bad value."""
    return Options(sample=opts.param("sample"), genomic_source=opts.param("genomicSource"), sex=opts.param("sex"),
                   patient=opts.param("patient"), assembly=opts.param("assembly"), lenient=opts.flag("lenient"),
                   keep_filtered=opts.flag("keepFiltered"), bundle_type=opts.bundle_type, recorded=opts.recorded,
                   **extra)


def sniff(data: bytes) -> bool:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"##fileformat=VCF") or data[:2] == b"\x1f\x8b"  # VCF, or gzip (bgzipped VCF)


def _to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    # The reader's limits (Options.max_*) keep their defaults: they are not request options, so a client cannot
    # raise them.
    return to_fhir(data, options(opts, max_variants=BUNDLE_MAX_VARIANTS))


def _ndjson(data: bytes, opts: ConvertOptions) -> Iterator[bytes]:
    """The whole input is checked first, so bad input is refused before the first line."""
    mapper_options = options(opts)
    Converter(iter_lines([data]), mapper_options).validate()
    yield from ndjson(Converter(iter_lines([data]), mapper_options, relative_refs=True))


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    try:
        data = orjson.dumps(bundle)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels)
        raise ParseError("the Bundle is nested too deeply to convert", details="fhir-too-deep",
                         expression="Bundle") from None
    out = from_fhir(data)
    return Rendered(out.data, out.issues)


FORMAT = Format(
    name="vcf",
    title="VCF 4.0-4.3 (plain, gzip or bgzip)",
    version=MAPPER_VERSION,
    media_type="text/vcf; charset=utf-8",
    media_types=("text/vcf", "text/x-vcf"),
    sniff=sniff,
    to_fhir=_to_fhir,
    from_fhir=_from_fhir,
    options=OPTIONS,
    ndjson=_ndjson,
    sniff_order=10,
)
