"""ORC/OBR → ServiceRequest (+ Practitioner), SPM → Specimen, MSH-4 → Organization."""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cwe_to_codeable_concept, ei_to_identifier, hd_system
from mappers.hl7v2.emit import datetime_field, ref
from mappers.hl7v2.model import Segment
from mappers.hl7v2.structure import Order
from mappers.ids import resource_id


def order_key(ctx: Context, order: Order) -> str:
    """Business key of an order: the filler order number, else the placer's, else message id + OBR-1."""
    obr, orc = order.obr, order.orc
    for seg, n in ((obr, 3), (orc, 3), (obr, 2), (orc, 2)):
        if seg is not None and seg.get(n):
            return f"{seg.get(n)}|{seg.get(n, 2)}|{seg.get(n, 3)}"
    return f"{ctx.message.msh.raw(4)}|{ctx.message.control_id}|OBR{obr.occurrence}"


def practitioner(seg: Segment, n: int) -> dict[str, Any] | None:
    """XCN (1 id, 2 family, 3 given, 9 assigning authority, 13 id type) → Practitioner."""
    pid, family, given = seg.get(n, 1), seg.get(n, 2), seg.get(n, 3)
    if not (pid or family):
        return None
    res: dict[str, Any] = {"resourceType": "Practitioner"}
    system = hd_system(seg.get(n, 9, 1), seg.get(n, 9, 2), seg.get(n, 9, 3))
    if pid:
        ident: dict[str, Any] = {"system": system, "value": pid} if system else {"value": pid}
        if seg.get(n, 9, 1):
            ident["assigner"] = {"display": seg.get(n, 9, 1)}
        if seg.get(n, 13):
            ident["type"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                         "code": seg.get(n, 13)}]}
        res["identifier"] = [ident]
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    if name:
        res["name"] = [name]
    res["id"] = resource_id("Practitioner", system or "", pid or f"{family}|{given}")
    return res


def organization(ctx: Context) -> dict[str, Any] | None:
    """MSH-4 sending facility (HD) → Organization, the source of the results."""
    msh = ctx.message.msh
    ns, uid, typ = msh.get(4, 1), msh.get(4, 2), msh.get(4, 3)
    if not (ns or uid):
        return None
    ctx.use(msh, 4)
    res: dict[str, Any] = {"resourceType": "Organization", "id": resource_id("Organization", ns, uid)}
    system = hd_system("", uid, typ)
    if system:
        res["identifier"] = [{"system": "urn:ietf:rfc:3986", "value": system}]
    res["name"] = ns or uid
    return res


def service_request(ctx: Context, order: Order, subject: dict[str, Any] | None,
                    requester: dict[str, Any] | None) -> dict[str, Any]:
    """Reads ORC-2/OBR-2 (placer), ORC-3/OBR-3 (filler), OBR-4 (code), ORC-9 (authored),
    ORC-12/OBR-16 (ordering provider)."""
    obr, orc = order.obr, order.orc
    ctx.use(obr, 1, 2, 3, 4, 16)
    res: dict[str, Any] = {"resourceType": "ServiceRequest", "id": resource_id("ServiceRequest", order_key(ctx, order))}
    idents = []
    for n, typ in ((2, "PLAC"), (3, "FILL")):
        seg = obr if obr.get(n) else orc
        if seg is not None and seg.get(n):
            idents.append(ei_to_identifier(seg.components(n), typ))
    if orc is not None:
        ctx.use(orc, 1, 2, 3, 5, 9, 12)
    if idents:
        res["identifier"] = idents
    res["status"] = "completed"
    res["intent"] = "order"
    code = cwe_to_codeable_concept(obr, 4)
    if code:
        res["code"] = code
    if subject:
        res["subject"] = ref(subject)
    if orc is not None and orc.get(9):
        authored = datetime_field(ctx, orc, 9)
        if authored:
            res["authoredOn"] = authored
    if requester:
        res["requester"] = ref(requester)
    return res


def specimen(ctx: Context, spm: Segment, order_id: str, subject: dict[str, Any] | None,
             request: dict[str, Any]) -> dict[str, Any]:
    """Reads SPM-2 (EIP: placer & filler ids), SPM-4 (type), SPM-17 (collection time), SPM-18 (received)."""
    ctx.use(spm, 1, 2, 4, 17, 18)
    idents = []
    for comp, typ in ((1, "PLAC"), (2, "FILL")):
        parts = [spm.get(2, comp, s) for s in (1, 2, 3, 4)]
        if parts[0]:
            idents.append(ei_to_identifier(parts, typ))
    key = idents[0]["value"] if idents else f"{order_id}|SPM{spm.get(1) or spm.occurrence}"
    res: dict[str, Any] = {"resourceType": "Specimen", "id": resource_id("Specimen", key)}
    if idents:
        res["identifier"] = idents
    typ_cc = cwe_to_codeable_concept(spm, 4)
    if typ_cc:
        res["type"] = typ_cc
    if subject:
        res["subject"] = ref(subject)
    received = datetime_field(ctx, spm, 18)
    if received:
        res["receivedTime"] = received
    res["request"] = [ref(request)]
    collected = datetime_field(ctx, spm, 17)
    if collected:
        res["collection"] = {"collectedDateTime": collected}
    return res
