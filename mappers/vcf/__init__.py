"""VCF 4.0-4.3 ⇄ FHIR R4 (Genomics Reporting IG 3.0.0): stream a sample's called variants into Variant
Observations (Bundle or NDJSON), and turn variant Observations back into a VCF 4.2.

Pure: bytes or byte chunks in, dicts/bytes out; file access (including an index's random reads) is the
caller's, passed in as iterables or a `read_at(offset, size)` callable.
"""

from mappers.vcf.context import Options, Summary, gc_paused
from mappers.vcf.from_fhir import VcfOutput, from_fhir
from mappers.vcf.index import Index, parse_index
from mappers.vcf.model import Genotype, Header, Record
from mappers.vcf.parse import iter_lines, read_header
from mappers.vcf.regions import Regions, parse_bed
from mappers.vcf.serialize import bundle_json, ndjson
from mappers.vcf.to_fhir import Conversion, Converter, indexed_lines, summary_issue, to_fhir

__all__ = [
    "Conversion",
    "Converter",
    "Genotype",
    "Header",
    "Index",
    "Options",
    "Record",
    "Regions",
    "Summary",
    "VcfOutput",
    "bundle_json",
    "from_fhir",
    "gc_paused",
    "indexed_lines",
    "iter_lines",
    "ndjson",
    "parse_bed",
    "parse_index",
    "read_header",
    "summary_issue",
    "to_fhir",
]
