"""Organization (custodian, requester, reporting department), Practitioner (authors, authenticators) and Encounter
(componentOf/encompassingEncounter, the visit numbers and the patient type)."""

from __future__ import annotations

from typing import Any

from mappers.cda_cn import systems as S
from mappers.cda_cn.emit import Ctx, coding, identifier, ref
from mappers.cda_cn.model import Id, Party, Report
from mappers.cda_cn.names import human_name
from mappers.cda_cn.tables import identifier_oids
from mappers.ids import resource_id

_PHYSICAL = {"bed": ("bd", "Bed"), "room": ("ro", "Room"), "ward": ("wa", "Ward")}
_V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CLASSES = {"IMP": "inpatient encounter", "AMB": "ambulatory", "EMER": "emergency"}


def organization(ctx: Ctx, org: Party | None, part_of: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Reads the organisation's id (root 2.16.156.10011.1.5 or .1.26 for a department) and name."""
    if org is None or not (org.name or org.ids):
        return None
    key = "|".join(f"{i.root}|{i.extension}" for i in org.ids) or org.name
    if part_of is not None:
        key = f"{key}@{part_of['id']}"
    res: dict[str, Any] = {"resourceType": "Organization", "id": resource_id("Organization", key)}
    if org.ids:
        res["identifier"] = [identifier(i) for i in org.ids]
    if org.name:
        res["name"] = org.name
    if part_of is not None:
        res["partOf"] = ref(part_of)
    ctx.origin(res, org.paths.get("where", ""))
    return ctx.add(res)


def named_organization(ctx: Ctx, name: str, known: list[dict[str, Any]], part_of: dict[str, Any] | None = None,
                       where: str = "") -> dict[str, Any] | None:
    """An organisation given by name only (DE08.10.013.00 / .026.00): reuse a known one of that name."""
    if not name:
        return None
    hit = next((o for o in known if o.get("name") == name and (part_of is None or o.get("partOf") == ref(part_of))),
               None)
    return hit or organization(ctx, Party(name, paths={"where": where}), part_of)


def practitioner(ctx: Ctx, person: Party | None) -> dict[str, Any] | None:
    """Reads assignedAuthor/assignedEntity id (root .1.7 author, .1.4 signer) and assignedPerson/name."""
    if person is None:
        return None
    key = "|".join(f"{i.root}|{i.extension}" for i in person.ids) or person.name
    res: dict[str, Any] = {"resourceType": "Practitioner", "id": resource_id("Practitioner", key)}
    if person.ids:
        res["identifier"] = [identifier(i) for i in person.ids]
    if person.name:
        name, _ = human_name(person.name)
        res["name"] = [name]
    ctx.origin(res, person.paths.get("where", ""))
    return ctx.add(res)


def _class(report: Report, visit_ids: list[Id]) -> str:
    roots = {i.root for i in visit_ids}
    label = report.encounter.patient_type.display if report.encounter and report.encounter.patient_type else ""
    if "2.16.156.10011.1.12" in roots or "住院" in label:
        return "IMP"
    if "急诊" in label:
        return "EMER"
    return "AMB"


def encounter(ctx: Ctx, report: Report, subject: dict[str, Any], provider: dict[str, Any] | None
              ) -> dict[str, Any] | None:
    """Reads patientRole/id .1.11 (outpatient) and .1.12 (inpatient), patientType/patienttypeCode,
    encompassingEncounter/effectiveTime and its location chain (bed .1.22, room .1.21, department .1.26,
    ward .1.27)."""
    oids = identifier_oids()
    visit_ids = [i for i in report.patient.ids if oids.get(i.root, {}).get("target") == "Encounter"]
    enc = report.encounter
    if not visit_ids and enc is None:
        return None
    key = "|".join(f"{i.root}|{i.extension}" for i in visit_ids) or f"{report.doc_id}"
    cls = _class(report, visit_ids)
    res: dict[str, Any] = {"resourceType": "Encounter", "id": resource_id("Encounter", key)}
    where = report.paths.get("encounter") or report.patient.paths.get("ids", "")
    ctx.origin(res, where)
    if visit_ids:
        res["identifier"] = [identifier(i) for i in visit_ids]
    res["status"] = "unknown"  # a report document does not say whether the visit has ended
    res["class"] = {"system": _V3_ACT, "code": cls, "display": _CLASSES[cls]}
    if enc and enc.patient_type:
        res["type"] = [{"coding": [coding(enc.patient_type)]}]
    res["subject"] = ref(subject)
    if enc:
        start = ctx.time(enc.start, f"{where}/effectiveTime", "encounter start")
        end = ctx.time(enc.end, f"{where}/effectiveTime/high", "encounter end")
        if start or end:
            res["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
            ctx.origin(res, f"{where}/effectiveTime", "period")
        locations = []
        for kind, ident, name in enc.locations:
            loc: dict[str, Any] = {"location": {}}
            if ident:
                loc["location"]["identifier"] = {"system": S.oid_system(ident.root), "value": ident.extension}
            if name:
                loc["location"]["display"] = name
            if kind in _PHYSICAL:
                code, display = _PHYSICAL[kind]
                loc["physicalType"] = {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": code,
                    "display": display}]}
            locations.append(loc)
        if locations:
            res["location"] = locations
    if provider:
        res["serviceProvider"] = ref(provider)
    return res
