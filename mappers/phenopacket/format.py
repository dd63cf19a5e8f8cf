"""GA4GH Phenopackets v2 JSON as a helixgate format (mappers.toolkit.registry): a Phenopacket, Family or Cohort
(protobuf JSON, as the official `phenopackets` package reads it), or for bulk jobs NDJSON of phenopackets."""

from __future__ import annotations

from typing import Any

import orjson

from mappers.conversion import Conversion
from mappers.exceptions import Issue, MappingError, UnsupportedMessage
from mappers.phenopacket import MAPPER_VERSION, schema
from mappers.phenopacket.from_fhir import from_fhir
from mappers.phenopacket.to_fhir import check_size, convert, members_of
from mappers.toolkit.registry import ConvertOptions, Format, Rendered

_WS = b"\xef\xbb\xbf \t\r\n"
_MARKS = {"metaData", "meta_data", "phenotypicFeatures", "phenotypic_features", "interpretations", "members",
          "proband"}


def _looks(doc: Any) -> bool:
    """A phenopacket schema document: every key a field of Phenopacket, Family or Cohort, and one that no
    other JSON format here uses at the top (metaData, phenotypicFeatures, …)."""
    return isinstance(doc, dict) and "resourceType" not in doc and bool(_MARKS & set(doc)) \
        and schema.kind_of(doc) is not None


def sniff(data: bytes) -> bool:
    """JSON (or NDJSON) whose first object is a phenopacket schema document; FHIR JSON (resourceType) and WS 445
    data sets (keyed by data-element ids) are not."""
    if not data[:64].lstrip(_WS).startswith(b"{") or b'"resourceType"' in data[:4096]:
        return False
    try:
        return _looks(orjson.loads(data))
    except orjson.JSONDecodeError:
        first = data.lstrip(_WS).split(b"\n", 1)[0]
        try:
            return _looks(orjson.loads(first))
        except orjson.JSONDecodeError:
            return False


def _lines(data: bytes) -> list[tuple[str, bytes]]:
    return [(f"line {n}", line) for n, line in enumerate(data.split(b"\n"), 1) if line.strip(_WS)]


def split(data: bytes) -> list[tuple[str, bytes]]:
    """A cohort → its members, NDJSON → its lines, anything else one document (a family stays whole)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _lines(data)
    if isinstance(doc, dict) and schema.kind_of(doc) == "Cohort" and isinstance(doc.get("members"), list):
        try:
            return [(f"members[{i}]", orjson.dumps(m)) for i, m in enumerate(doc["members"])]
        except orjson.JSONEncodeError:  # a member nested past orjson's 255 levels: read whole, refused with a path
            return [("document 1", data)]
    return [("document 1", data)]


def _to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    try:
        raw = schema.loads(data)
        check_size("document", members_of(raw))
        document = schema.read(raw)
    except MappingError:
        lines = _lines(data) if len(data) <= schema.MAX_BYTES else []
        if len(lines) > 1 and all(_parses(line) for _, line in lines[:3]):
            raise UnsupportedMessage(f"NDJSON of {len(lines)} phenopackets: convert it as a bulk job (each line "
                                     "its own Bundle)", details="phenopacket-ndjson") from None
        raise
    return convert(document, opts.bundle_type)


def _parses(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    data, issues = from_fhir(bundle)
    return Rendered(data, tuple(issues))


def check_output(data: bytes) -> list[Issue]:
    """What from_fhir wrote must read back with the official schema as a Phenopacket."""
    try:
        schema.read(data, "Phenopacket")
    except MappingError as e:
        return [Issue("error", "structure", "phenopacket-invalid-output", f"the written phenopacket does not read "
                      f"back: {i.message}", i.expression) for i in e.issues]
    return []


FORMAT = Format(
    name="phenopacket",
    title="GA4GH Phenopackets v2 JSON (Phenopacket, Family, Cohort; NDJSON of phenopackets in bulk)",
    version=MAPPER_VERSION,
    media_type="application/x-phenopacket+json; charset=utf-8",
    media_types=("application/x-phenopacket+json", "application/x-phenopackets+json",
                 "application/x-phenopacket+ndjson"),
    sniff=sniff,
    to_fhir=_to_fhir,
    from_fhir=_from_fhir,
    split=split,
    check_output=check_output,
    sniff_order=30,  # after WS 445 (20), before FHIR JSON (90): both are JSON objects
)
