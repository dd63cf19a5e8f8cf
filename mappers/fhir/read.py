"""FHIR input as a Bundle: a Bundle as it is, a single resource or a Parameters of resources wrapped in a collection
Bundle (so a variant Observation, or a genomics-operations answer, converts like a Bundle)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from mappers.conversion import Conversion
from mappers.exceptions import Issue, ParseError
from mappers.ids import resource_id


def load(data: bytes | dict[str, Any]) -> dict[str, Any]:
    """The input as a resource dict. Raises ParseError for bad JSON or anything but a resource."""
    if isinstance(data, dict):
        doc: Any = data
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
    """The input as a Bundle, with an information issue when it had to be wrapped."""
    doc = load(data)
    if doc["resourceType"] == "Bundle":
        return Conversion(doc, ())
    if doc["resourceType"] == "Parameters":
        resources = list(_parameter_resources(doc.get("parameter")))
        if not resources:
            raise ParseError("the Parameters holds no resource to convert", details="fhir-parameters-empty",
                             expression="Parameters.parameter")
        what = f"the {len(resources)} resources of a Parameters"
    else:
        resources = [doc]
        what = f"a single {doc['resourceType']}"
    digest = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
    entries = []
    for n, res in enumerate(resources):
        rid = res.get("id") if isinstance(res.get("id"), str) else None
        url = f"urn:uuid:{resource_id(res['resourceType'], digest, str(n))}"
        if rid:
            url = f"{res['resourceType']}/{rid}"
        entries.append({"fullUrl": url, "resource": res})
    bundle = {"resourceType": "Bundle", "id": resource_id("Bundle", digest), "type": "collection", "entry": entries}
    issue = Issue("information", "informational", "fhir-wrapped", f"{what} was read as a collection Bundle")
    return Conversion(bundle, (issue,))


def _parameter_resources(params: Any) -> Any:
    """Every resource of a Parameters, parts included (genomics-operations nest variants in parts)."""
    for p in params if isinstance(params, list) else []:
        if not isinstance(p, dict):
            continue
        res = p.get("resource")
        if isinstance(res, dict) and isinstance(res.get("resourceType"), str):
            if res["resourceType"] == "Bundle":
                yield from (e["resource"] for e in res.get("entry") or []
                            if isinstance(e, dict) and isinstance(e.get("resource"), dict))
            else:
                yield res
        yield from _parameter_resources(p.get("part"))
