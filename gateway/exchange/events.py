"""The exchange's FHIR records: one AuditEvent per transfer (DICOM 110106 Export; permitted, refused or failed)
and a Provenance on the delivered content. They name the route, purpose, legal basis, mechanisms, destination,
subject count, HGR class, the rules applied and the decision; never content, identifiers or pseudonyms."""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.audit import _OBSERVER
from mappers.ids import resource_id

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ROUTE_SYSTEM = "urn:helixgate:exchange:route"


def audit_event(*, transfer_id: str, route: dict[str, Any], purpose_code: str, decision: str, recorded: str,
                facts: dict[str, Any], rules: list[str], changes: int, subjects: int, client: str | None,
                detail: str = "") -> dict[str, Any]:
    dst = route["destination"]
    details = {"route": route["id"], "decision": decision, "legal-basis": facts.get("legalBasis") or "",
               "mechanisms": ",".join(facts.get("mechanisms") or []), "destination": f"{dst['jurisdiction']} "
               f"{dst['partner']['system']}|{dst['partner']['value']}", "hgr-class": facts.get("hgrClass") or "",
               "hgr-filing": facts.get("hgrFiling") or "", "rules-applied": ",".join(rules),
               "changes": str(changes), "data-subjects": str(subjects), "target": route["target"]["format"],
               "consents": ",".join(facts.get("consents") or [])}
    agents: list[dict[str, Any]] = [
        {"type": {"coding": [{"system": _DCM, "code": "110153", "display": "Source Role ID"}]}, "requestor": True,
         "who": {"display": client or "anonymous"}},
        {"type": {"coding": [{"system": _DCM, "code": "110152", "display": "Destination Role ID"}]},
         "requestor": False, "who": {"identifier": dict(dst["partner"]), "display": dst.get("name") or dst["id"]}},
    ]
    return {
        "resourceType": "AuditEvent",
        "id": transfer_id,
        "type": {"system": _DCM, "code": "110106", "display": "Export"},
        "subtype": [{"system": "urn:helixgate:exchange", "code": "transfer"}],
        "action": "E",
        "recorded": recorded,
        "outcome": "0" if decision == "permit" else ("4" if decision == "refuse" else "8"),
        "outcomeDesc": (decision + (f": {detail}" if detail else ""))[:1000],
        "purposeOfEvent": [{"coding": [{"system": _ACT_REASON, "code": purpose_code}]}],
        "agent": agents,
        "source": {"observer": _OBSERVER},
        "entity": [{"what": {"identifier": {"system": ROUTE_SYSTEM, "value": route["id"]}},
                    "description": "exchange route",
                    "detail": [{"type": k, "valueString": v} for k, v in details.items() if v]}],
    }


def provenance(bundle: dict[str, Any], *, transfer_id: str, route: dict[str, Any], purpose_code: str,
               recorded: str) -> dict[str, Any]:
    """A Provenance for the delivered Bundle's entries: the gateway performed the export under the route."""
    targets = [{"reference": e["fullUrl"]} for e in bundle.get("entry") or []
               if isinstance(e, dict) and e.get("fullUrl")
               and (e.get("resource") or {}).get("resourceType") != "Provenance"]
    participant = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
    return {
        "resourceType": "Provenance",
        "id": resource_id("Provenance", "helixgate-exchange", transfer_id),
        "target": targets or [{"display": "the transferred content"}],
        "recorded": recorded,
        "policy": [f"{ROUTE_SYSTEM}:{route['id']}"],
        "reason": [{"coding": [{"system": _ACT_REASON, "code": purpose_code}]}],
        "activity": {"text": "cross-border transfer under an exchange route"},
        "agent": [{"type": {"coding": [{"system": participant, "code": "performer", "display": "Performer"}]},
                   "who": {"identifier": dict(_OBSERVER["identifier"]),
                           "display": f"helixgate {__version__} exchange"}}],
        "entity": [{"role": "source", "what": {"identifier": {"system": "urn:helixgate:exchange:transfer",
                                                              "value": transfer_id}}}],
    }
