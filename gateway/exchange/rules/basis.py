"""Purpose binding and the legal basis / transfer mechanism (GDPR Art. 44-49: an Art. 46 safeguard such as standard
contractual clauses or an Art. 49 derogation; PIPL Art. 38: CAC security assessment, certification or the standard
contract). The route registers the mechanisms; a request cites one when the route says it must."""

from __future__ import annotations

from typing import Any

from gateway.exchange.rules import Refused, Step
from gateway.exchange.rules.facts import PURPOSES, Transfer


def apply(bundle: dict[str, Any], route: dict[str, Any], transfer: Transfer) -> Step:
    allowed = route.get("purposes") or []
    if transfer.purpose not in allowed and transfer.purpose_code not in (PURPOSES.get(p, p) for p in allowed):
        raise Refused("basis", f"purpose {transfer.purpose!r} is not allowed on route {route['id']}",
                      f"use one of the route's purposes: {', '.join(allowed)}")
    basis = route.get("legalBasis") or {}
    registered = [m["id"] for m in basis.get("mechanisms") or []]
    cited = [m for m in transfer.mechanisms if m in registered]
    if basis.get("citeMechanism") and not cited:
        what = f"the request cites {', '.join(transfer.mechanisms)}, none registered" if transfer.mechanisms \
            else "the request cites no transfer mechanism"
        raise Refused("basis", f"route {route['id']} needs a registered transfer mechanism: {what}",
                      "cite one of the route's mechanism ids (" + (", ".join(registered) or "none registered: add "
                      "one to the route's legalBasis.mechanisms") + ") as the mechanism parameter")
    if transfer.legal_basis and basis.get("basis") and transfer.legal_basis != basis["basis"]:
        raise Refused("basis", f"the request's legal basis {transfer.legal_basis!r} is not the route's "
                      f"({basis['basis']!r})", f"send under legal basis {basis['basis']!r} or use another route")
    mechanisms = cited or registered
    return Step(bundle, [], {"legalBasis": basis.get("basis"), "mechanisms": mechanisms,
                             "purpose": transfer.purpose_code})
