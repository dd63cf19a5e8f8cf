"""Re-identification: a keyed-HMAC pseudonym cannot be reversed, only recomputed. The source, which holds its
patients' identifiers, recomputes the pseudonym of each candidate under the route's key and destination; the one
that matches is the person. Every attempt is an AuditEvent on the exchange trail (the route, the key id and whether
a match was found; never the pseudonym or the identifier)."""

from __future__ import annotations

import hmac
from typing import Any

from gateway.audit import _OBSERVER
from gateway.exchange.events import ROUTE_SYSTEM
from gateway.exchange.rules.pseudonymise import pseudonym


def match(value: str, candidates: list[str], destination: str, key: bytes) -> str | None:
    """The candidate 'system|value' whose pseudonym is `value`, if any (compared in constant time)."""
    for line in candidates:
        system, _, ident = line.rpartition("|")
        if hmac.compare_digest(pseudonym(key, destination, system, ident), value.strip().lower()):
            return line
    return None


def event(route: dict[str, Any], key_id: str, found: bool, recorded: str, client: str) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110112", "display": "Query"},
        "subtype": [{"system": "urn:helixgate:exchange", "code": "reidentify"}],
        "action": "E",
        "recorded": recorded,
        "outcome": "0" if found else "4",
        "outcomeDesc": "re-identification: " + ("a candidate matched" if found else "no candidate matched"),
        "agent": [{"requestor": True, "who": {"display": client}}],
        "source": {"observer": _OBSERVER},
        "entity": [{"what": {"identifier": {"system": ROUTE_SYSTEM, "value": route["id"]}},
                    "detail": [{"type": "key-id", "valueString": key_id}]}],
    }
