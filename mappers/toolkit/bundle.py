"""One Bundle policy for every format: entries keyed by deterministic ids, and in a transaction a conditional create
for every resource, so a replayed input never duplicates anything upstream."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import orjson

from mappers.ids import resource_id

BUNDLE_TYPES = ("collection", "transaction")
ID_SYSTEM = "urn:helixgate:id"  # identifier system of a resource's deterministic id (see identified)


def bundle(resources: Iterable[dict[str, Any]], bundle_type: str, key: tuple[str, ...],
           timestamp: str | None = None, identifier: dict[str, str] | None = None,
           copy: bool = True) -> dict[str, Any]:
    """A Bundle of `resources` (the first of each id kept), its id derived from the source's `key`.

    `timestamp` is an instant taken from the source (never the clock), or None. `identifier` names the source
    document (e.g. its message control id), so the Bundle stays traceable even without a Provenance.
    `copy=False` leaves out the deep copy, for resources whose every list and dict was made for this Bundle alone
    (none in two places of it, none kept by an emitter): a test of the caller's walks its Bundles to show it.
    """
    if bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"bundle_type must be one of {BUNDLE_TYPES}, not {bundle_type!r}")
    seen: set[str] = set()
    entries = []
    for res in resources:
        if res["id"] in seen:  # the same practitioner or specimen reached twice
            continue
        seen.add(res["id"])
        entries.append(entry(res, bundle_type == "transaction"))
    out: dict[str, Any] = {"resourceType": "Bundle", "id": resource_id("Bundle", *key, bundle_type)}
    if identifier:
        out["identifier"] = identifier
    out["type"] = bundle_type
    if timestamp and "T" in timestamp:  # Bundle.timestamp is an instant
        out["timestamp"] = timestamp
    out["entry"] = entries
    if not copy:
        return out
    # Emitters share constant codings; a deep copy keeps callers who edit the result from editing those.
    return orjson.loads(orjson.dumps(out))


def entry(res: dict[str, Any], transaction: bool) -> dict[str, Any]:
    """The Bundle entry of `res`: fullUrl urn:uuid of its id; in a transaction, its conditional create."""
    if transaction:
        res = identified(res)
        return {"fullUrl": f"urn:uuid:{res['id']}", "resource": res, "request": request(res)}
    return {"fullUrl": f"urn:uuid:{res['id']}", "resource": res}


def identified(res: dict[str, Any]) -> dict[str, Any]:
    """In a transaction every resource that has an identifier element gets an identifier, so every create is
    conditional: those without a business identifier (Observations, the converter Device) get their deterministic
    id, as a bare UUID (some servers, e.g. Medplum, rewrite every `urn:uuid:` string of a transaction that names
    an entry). R4 Provenance has no identifier; a deliverer makes it idempotent by its deterministic id (PUT)."""
    if res["resourceType"] in _NO_IDENTIFIER or business_identifier(res):
        return res
    own = {"system": ID_SYSTEM, "value": res["id"]}
    idents = res.get("identifier")
    if isinstance(idents, dict):  # Composition.identifier is 0..1
        return res
    return {**res, "identifier": [*(idents or []), own]}


# R4 resources of the mappers' output that have no `identifier` element.
_NO_IDENTIFIER = {"Provenance", "Bundle", "Binary", "Parameters", "OperationOutcome"}


def business_identifier(res: dict[str, Any]) -> dict[str, Any] | None:
    """The first identifier with a system and a value (Composition's single identifier too)."""
    idents = res.get("identifier")
    if isinstance(idents, dict):
        idents = [idents]
    return next((i for i in idents or [] if i.get("system") and i.get("value")), None)


def search_token(text: str) -> str:
    """A search token part: FHIR search escapes (\\ \\| \\, \\$), and percent-encoding where a query would break."""
    for ch in "\\|,$":
        text = text.replace(ch, "\\" + ch)
    return quote(text, safe=":/?@!$'()*,;=.-_~\\|")


def request(res: dict[str, Any]) -> dict[str, str]:
    """POST, conditional (ifNoneExist) on the resource's business identifier when it has one."""
    req = {"method": "POST", "url": res["resourceType"]}
    ident = business_identifier(res)
    if ident:
        req["ifNoneExist"] = f"identifier={search_token(ident['system'])}|{search_token(ident['value'])}"
    return req
