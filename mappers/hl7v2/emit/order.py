"""ORC/OBR → ServiceRequest (+ Practitioner), SPM → Specimen, MSH-4 → Organization."""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cwe_to_codeable_concept, ei_to_identifier, hd_system, identifier_type
from mappers.hl7v2.emit import datetime_field, ref
from mappers.hl7v2.model import Segment
from mappers.hl7v2.structure import Order
from mappers.ids import resource_id


def order_key(ctx: Context, order: Order) -> str:
    """Business key of an order: the filler order number, else the placer's, else message id + OBR-1; with the
    service (OBR-4.1), as one lab order number may cover several OBRs (a culture and a lead test)."""
    obr, orc = order.obr, order.orc
    for seg, n in ((obr, 3), (orc, 3), (obr, 2), (orc, 2)):
        if seg is not None and seg.get(n):
            return f"{seg.get(n)}|{seg.get(n, 2)}|{seg.get(n, 3)}|{obr.get(4)}"
    return f"{ctx.message.msh.raw(4)}|{ctx.message.control_id}|OBR{obr.occurrence}"


def practitioner(ctx: Context, seg: Segment, n: int) -> dict[str, Any] | None:
    """XCN (1 id, 2 family, 3 given, 9 assigning authority, 13 id type) → Practitioner. The other components
    (middle name, suffix, prefix, degree, ...) are listed as not mapped: FHIR → v2 does not write them back, and a
    round trip must give the same Practitioner."""
    pid, family, given = seg.get(n, 1), seg.get(n, 2), seg.get(n, 3)
    if not (pid or family):
        return None
    ctx.use_component(seg, n, 1, 2, 3, 9, 13)
    res: dict[str, Any] = {"resourceType": "Practitioner"}
    system = hd_system(seg.get(n, 9, 1), seg.get(n, 9, 2), seg.get(n, 9, 3))
    if pid:
        ident: dict[str, Any] = {"system": system, "value": pid} if system else {"value": pid}
        if seg.get(n, 9, 1):
            ident["assigner"] = {"display": seg.get(n, 9, 1)}
        id_type = identifier_type(seg.get(n, 13))
        if id_type:
            ident["type"] = id_type
            if "text" in id_type:
                ctx.warn("hl7v2-identifier-type-unknown", f"{seg.name}-{n}.13 {seg.get(n, 13)!r} is not in HL7 "
                         "table 0203; kept as Identifier.type.text", f"{seg.ref}-{n}.13")
        res["identifier"] = [ident]
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    if name:
        res["name"] = [name]
    res["id"] = resource_id("Practitioner", system or "", pid or f"{family}|{given}")
    ctx.origin(res, f"{seg.ref}-{n}")
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
    ctx.origin(res, f"{msh.ref}-4")
    return res


def _order_identifier(ctx: Context, seg: Segment, n: int, typ: str) -> dict[str, Any] | None:
    ctx.use_component(seg, n, 1, 2, 3, 4)
    return ei_to_identifier(seg.components(n), typ)


def service_request(ctx: Context, order: Order, subject: dict[str, Any] | None,
                    requester: dict[str, Any] | None, key: str | None = None) -> dict[str, Any]:
    """Reads ORC-2/OBR-2 (placer), ORC-3/OBR-3 (filler), OBR-4 (code), ORC-9 (authored),
    ORC-12/OBR-16 (ordering provider, read by practitioner()); `key` is order_key(), when the caller has it."""
    obr, orc = order.obr, order.orc
    ctx.use(obr, 1)
    res: dict[str, Any] = {"resourceType": "ServiceRequest",
                           "id": resource_id("ServiceRequest", key or order_key(ctx, order))}
    ctx.origin(res, obr.ref)
    idents = []
    for n, typ in ((2, "PLAC"), (3, "FILL")):
        first: dict[str, Any] | None = None
        for seg in (obr, orc):  # OBR and ORC repeat the numbers; both are read, the OBR's wins
            if seg is None or not seg.get(n):
                continue
            ident = _order_identifier(ctx, seg, n, typ)
            if first is None and ident:
                first = ident
                ctx.origin(res, f"{seg.ref}-{n}", f"identifier[{len(idents)}]")
                idents.append(ident)
            elif ident and ident != first:
                ctx.warn("hl7v2-order-number-differs", f"{seg.name}-{n} {seg.get(n)!r} differs from OBR-{n}; "
                         f"the OBR's number is kept", f"{seg.ref}-{n}")
    if orc is not None:
        ctx.use(orc, 1, 5)  # ORC-1 order control and ORC-5 order status: the status below
    if idents:
        res["identifier"] = idents
    res["status"] = "completed"
    res["intent"] = "order"
    code = cwe_to_codeable_concept(obr, 4, used=ctx)
    if code:
        res["code"] = code
        ctx.origin(res, f"{obr.ref}-4", "code")
    if subject:
        res["subject"] = ref(subject)
    if orc is not None and orc.get(9):
        ctx.use(orc, 9)
        authored = datetime_field(ctx, orc, 9)
        if authored:
            res["authoredOn"] = authored
            ctx.origin(res, f"{orc.ref}-9", "authoredOn")
    if requester:
        res["requester"] = ref(requester)
    return res


def specimen(ctx: Context, spm: Segment, order_id: str, subject: dict[str, Any] | None,
             request: dict[str, Any] | None) -> dict[str, Any]:
    """Reads SPM-2 (EIP: placer & filler ids), SPM-4 (type), SPM-17 (collection time), SPM-18 (received)."""
    ctx.use(spm, 1, 18)
    ctx.use_component(spm, 2, 1, 2)
    ctx.use_component(spm, 17, 1)
    idents = []
    for comp, typ in ((1, "PLAC"), (2, "FILL")):
        parts = [spm.get(2, comp, 1), spm.get(2, comp, 2), spm.get(2, comp, 3), spm.get(2, comp, 4)]
        if parts[0]:
            idents.append(ei_to_identifier(parts, typ))
    # The specimen number, with its type: senders reuse one number for the parts of a sample (stool, blood).
    key = f"{idents[0]['value']}|{spm.get(4)}" if idents else f"{order_id}|SPM{spm.get(1) or spm.occurrence}"
    res: dict[str, Any] = {"resourceType": "Specimen", "id": resource_id("Specimen", key)}
    ctx.origin(res, spm.ref)
    if idents:
        res["identifier"] = idents
        ctx.origin(res, f"{spm.ref}-2", "identifier")
    typ_cc = cwe_to_codeable_concept(spm, 4, used=ctx)
    if typ_cc:
        res["type"] = typ_cc
        ctx.origin(res, f"{spm.ref}-4", "type")
    if subject:
        res["subject"] = ref(subject)
    received = datetime_field(ctx, spm, 18)
    if received:
        res["receivedTime"] = received
        ctx.origin(res, f"{spm.ref}-18", "receivedTime")
    if request:
        res["request"] = [ref(request)]
    collected = datetime_field(ctx, spm, 17)
    if collected:
        res["collection"] = {"collectedDateTime": collected}
        ctx.origin(res, f"{spm.ref}-17", "collection.collectedDateTime")
    return res
