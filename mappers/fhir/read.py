"""FHIR input as a Bundle: a Bundle as it is, a single resource or a Parameters of resources wrapped in a collection
Bundle (so a variant Observation, or a genomics-operations answer, converts like a Bundle). FHIR XML is read as the
JSON it stands for (http://hl7.org/fhir/R4/xml.html), through the R4 core definitions (profiles.xml)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from mappers.conversion import Conversion
from mappers.exceptions import Issue, ParseError, UnsupportedMessage
from mappers.ids import resource_id

_BOM = b"\xef\xbb\xbf"
_FHIR_NS = re.compile(rb"""xmlns\s*=\s*["']http://hl7\.org/fhir["']""")
SNIFF_BYTES = 4096  # an XML declaration and comments may precede the root element


def is_xml(data: bytes) -> bool:
    """FHIR XML: the first non-blank byte opens markup, and the FHIR namespace is declared near the start."""
    head = data[:SNIFF_BYTES].removeprefix(_BOM).lstrip(b" \t\r\n")
    return head.startswith(b"<") and _FHIR_NS.search(head) is not None


def _from_xml(data: bytes) -> Any:
    """FHIR XML → the JSON representation. The XML format does not say which elements repeat or what JSON type a
    primitive has, so the R4 core StructureDefinitions (the installed hl7.fhir.r4.core package, read once per
    process) decide; they are data, so the same input still gives the same output."""
    from profiles.packages import PackageError
    from profiles.xml import XmlError, xml_to_json

    try:
        return xml_to_json(data, None)
    except XmlError as e:
        raise ParseError(f"the FHIR XML cannot be read: {e}", details="fhir-bad-xml") from None
    except PackageError as e:
        raise UnsupportedMessage(f"FHIR XML is read through the R4 core definitions, which are not installed ({e}); "
                                 "run 'helixgate packages install', or send FHIR JSON",
                                 details="fhir-xml-unreadable") from None


def load(data: bytes | dict[str, Any]) -> dict[str, Any]:
    """The input as a resource dict (FHIR JSON or XML). Raises ParseError for bad JSON/XML or anything but a
    resource."""
    if isinstance(data, dict):
        doc: Any = data
    elif is_xml(data):
        doc = _from_xml(data)
    else:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise ParseError(f"input is not JSON: {e}", details="fhir-bad-json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise ParseError("expected a FHIR resource (a JSON object with a resourceType)", details="fhir-not-a-resource",
                         expression="resourceType")
    return doc


def as_bundle(data: bytes | dict[str, Any]) -> Conversion:
    """The input as a Bundle, with an information issue when it had to be wrapped, a warning for each parameter
    of a Parameters that is not a resource (it has no place in a Bundle), and the origin of each wrapped resource."""
    lines = _ndjson(data)
    doc = load(data) if lines is None else {"resourceType": "NDJSON"}
    if doc["resourceType"] == "Bundle":
        return Conversion(doc, ())
    issues: list[Issue] = []
    if lines is not None:
        found = [(load(line), f"line {n}") for n, line in lines]
        what = f"the {len(found)} resource(s) of an NDJSON input"
    elif doc["resourceType"] == "Parameters":
        found: list[tuple[dict[str, Any], str]] = []
        _parameters(doc.get("parameter"), "Parameters.parameter", found, issues)
        if not found:
            raise ParseError("the Parameters holds no resource to convert", details="fhir-parameters-empty",
                             expression="Parameters.parameter")
        what = f"the {len(found)} resource(s) of a Parameters"
    else:
        found = [(doc, doc["resourceType"])]
        what = f"a single {doc['resourceType']}"
    try:
        canonical = data if lines is not None else orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels): no writer can emit it either
        raise ParseError(f"the {doc['resourceType']} is nested too deeply to convert", details="fhir-too-deep",
                         expression=doc["resourceType"]) from None
    digest = hashlib.sha256(canonical).hexdigest()
    entries = []
    origins: dict[str, str] = {}
    for n, (res, where) in enumerate(found):
        rid = res.get("id") if isinstance(res.get("id"), str) else None
        # Bundle.entry.fullUrl is absolute (R4 bundle.html): a deterministic urn:uuid; readers resolve Type/id too
        entries.append({"fullUrl": f"urn:uuid:{resource_id(res['resourceType'], digest, str(n))}", "resource": res})
        if rid:
            origins.setdefault(rid, where)
    bundle = {"resourceType": "Bundle", "id": resource_id("Bundle", digest), "type": "collection", "entry": entries}
    issues.insert(0, Issue("information", "informational", "fhir-wrapped", f"{what} was read as a collection Bundle"))
    return Conversion(bundle, tuple(issues), origins)


def _ndjson(data: bytes | dict[str, Any]) -> list[tuple[int, bytes]] | None:
    """The numbered non-blank lines of NDJSON input (FHIR bulk data: one resource a line), or None for one document."""
    if not isinstance(data, bytes | bytearray) or is_xml(data):
        return None
    body = data.removeprefix(_BOM).strip()
    if not body.startswith(b"{") or b"\n" not in body:
        return None
    lines = [(n, line) for n, line in enumerate(body.split(b"\n"), 1) if line.strip()]
    if len(lines) < 2 or not lines[0][1].rstrip().endswith(b"}"):
        return None  # a pretty-printed document spans lines; NDJSON keeps each resource on one
    try:
        orjson.loads(lines[0][1])
    except orjson.JSONDecodeError:
        return None
    return lines


def _parameters(params: Any, where: str, found: list[tuple[dict[str, Any], str]], issues: list[Issue]) -> None:
    """Every resource of a Parameters, parts included (genomics-operations nest variants in parts); values that are
    not resources are reported, as a Bundle has no place for them."""
    if params is None:
        return
    if not isinstance(params, list):
        raise ParseError(f"{where} must be a list", details="fhir-wrong-type", expression=where)
    for i, p in enumerate(params):
        here = f"{where}[{i}]"
        if not isinstance(p, dict):
            raise ParseError(f"{here} must be an object", details="fhir-wrong-type", expression=here)
        res = p.get("resource")
        if res is not None:
            if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
                raise ParseError(f"{here}.resource is not a FHIR resource", details="fhir-not-a-resource",
                                 expression=f"{here}.resource")
            if res["resourceType"] == "Bundle":
                entries = res.get("entry")
                for k, e in enumerate(entries if isinstance(entries, list) else []):
                    inner = e.get("resource") if isinstance(e, dict) else None
                    if isinstance(inner, dict) and isinstance(inner.get("resourceType"), str):
                        found.append((inner, f"{here}.resource.entry[{k}].resource"))
            else:
                found.append((res, f"{here}.resource"))
        value = next((k for k in p if k.startswith("value")), None)
        if value is not None:
            shown = p[value] if isinstance(p[value], (str, int, float, bool)) else value
            issues.append(Issue("warning", "informational", "fhir-parameter-not-carried",
                                f"parameter {p.get('name', i)!r} ({shown!r}) is not a resource; a Bundle has no place "
                                "for it, not carried over", f"{here}.{value}"))
        _parameters(p.get("part"), f"{here}.part", found, issues)
