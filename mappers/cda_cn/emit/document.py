"""Composition (the document itself), Provenance (source document, converter) and the Bundle."""

from __future__ import annotations

from typing import Any

import orjson

from mappers.cda_cn import systems as S
from mappers.cda_cn.emit import MAPPER_VERSION, Ctx, ref
from mappers.cda_cn.model import Report
from mappers.cda_cn.tables import document_types
from mappers.ids import resource_id

_SECTION_RESULTS = {"coding": [{"system": S.LOINC, "code": "30954-2",
                                "display": "Relevant diagnostic tests/laboratory data Narrative"}]}
_SECTION_DIAGNOSIS = {"coding": [{"system": S.LOINC, "code": "29548-5", "display": "Diagnosis Narrative"}]}
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def document_type(report: Report) -> dict[str, Any]:
    spec = document_types()[report.type_code]
    codings = [{"system": S.DOC_TYPE_SYSTEM, "code": report.type_code, "display": spec["title"]}]
    if spec.get("loinc"):
        codings.append({"system": S.LOINC, "code": spec["loinc"], "display": spec["loincDisplay"]})
    return {"coding": codings, "text": report.title or spec["title"]}


def composition(ctx: Ctx, report: Report, subject: dict[str, Any], encounter: dict[str, Any] | None,
                authors: list[dict[str, Any]], legal: dict[str, Any] | None, auths: list[dict[str, Any]],
                custodian: dict[str, Any] | None, diagnostic_report: dict[str, Any],
                conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """Reads ClinicalDocument id, code, title, effectiveTime, confidentialityCode, author, legalAuthenticator,
    authenticator and custodian."""
    key = f"{report.doc_id.root}|{report.doc_id.extension}" if report.doc_id else report.type_code
    res: dict[str, Any] = {"resourceType": "Composition", "id": resource_id("Composition", key)}
    if report.doc_id:
        res["identifier"] = {"system": S.oid_system(report.doc_id.root), "value": report.doc_id.extension}
    res["status"] = "final"
    res["type"] = document_type(report)
    res["subject"] = ref(subject)
    if encounter:
        res["encounter"] = ref(encounter)
    date = ctx.time(report.effective_time, "ClinicalDocument/effectiveTime", "document effectiveTime")
    if date is None:
        ctx.notes.warn("cda-no-effective-time", "the document has no usable effectiveTime; Composition.date "
                       "left out", "ClinicalDocument/effectiveTime", code="required")
    else:
        res["date"] = date
    res["author"] = [ref(a) for a in authors] or ([ref(custodian)] if custodian else [{"display": "unknown"}])
    res["title"] = report.title or document_types()[report.type_code]["title"]
    res["confidentiality"] = "N"
    attesters = []
    for mode, who, party in [("legal", legal, report.legal_authenticator),
                             *(("professional", a, p) for a, p in zip(auths, report.authenticators, strict=False))]:
        if who is None:
            continue
        att: dict[str, Any] = {"mode": mode, "party": ref(who)}
        when = ctx.time(party.time if party else "", "authenticator/time", "attestation time")
        if when:
            att["time"] = when
        attesters.append(att)
    if attesters:
        res["attester"] = attesters
    if custodian:
        res["custodian"] = ref(custodian)
    sections = []
    if conditions:
        sections.append({"title": "诊断记录", "code": _SECTION_DIAGNOSIS, "entry": [ref(c) for c in conditions]})
    sections.append({"title": "检验报告" if report.kind == "lab" else "检查报告", "code": _SECTION_RESULTS,
                     "entry": [ref(diagnostic_report)]})
    res["section"] = sections
    return res


def converter_device() -> dict[str, Any]:
    return {"resourceType": "Device", "id": resource_id("Device", "helixgate", MAPPER_VERSION),
            "deviceName": [{"name": "helixgate", "type": "user-friendly-name"}],
            "version": [{"value": MAPPER_VERSION}]}


def provenance(ctx: Ctx, report: Report | None, source_id: tuple[str, str], targets: list[dict[str, Any]],
               device: dict[str, Any], author: dict[str, Any] | None, description: str) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Provenance", "id": resource_id("Provenance", *source_id),
                           "target": [ref(t) for t in targets]}
    received = ctx.options.received
    occurred = ctx.time(report.effective_time, "ClinicalDocument/effectiveTime", "document effectiveTime") \
        if report and report.effective_time else None
    if occurred:
        res["occurredDateTime"] = occurred
    if received:
        res["recorded"] = received.isoformat(timespec="seconds")
    elif occurred and "T" in occurred:
        res["recorded"] = occurred
    else:
        res["recorded"] = "1970-01-01T00:00:00Z"
        ctx.notes.warn("provenance-recorded-unknown", "no receive time given and the source has no timestamp; "
                       "Provenance.recorded set to the epoch", None)
    res["activity"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                   "code": "CREATE", "display": "create"}]}
    agents = [{"type": {"coding": [{"system": _PARTICIPANT, "code": "assembler", "display": "Assembler"}]},
               "who": ref(device)}]
    if author:
        agents.append({"type": {"coding": [{"system": _PARTICIPANT, "code": "author", "display": "Author"}]},
                       "who": ref(author)})
    res["agent"] = agents
    res["entity"] = [{"role": "source", "what": {"identifier": {"system": source_id[0], "value": source_id[1]},
                                                  "display": description}}]
    return res


def bundle(ctx: Ctx, resources: list[dict[str, Any]], key: tuple[str, ...]) -> dict[str, Any]:
    seen: set[str] = set()
    entries = []
    transaction = ctx.options.bundle_type == "transaction"
    for res in resources:
        if res["id"] in seen:
            continue
        seen.add(res["id"])
        entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{res['id']}", "resource": res}
        if transaction:
            entry["request"] = _request(res)
        entries.append(entry)
    out: dict[str, Any] = {"resourceType": "Bundle", "id": resource_id("Bundle", *key, ctx.options.bundle_type),
                           "type": ctx.options.bundle_type}
    if ctx.options.received:
        out["timestamp"] = ctx.options.received.isoformat(timespec="seconds")
    out["entry"] = entries
    return orjson.loads(orjson.dumps(out))  # a deep copy: emitters share constant codings


def _request(res: dict[str, Any]) -> dict[str, str]:
    req = {"method": "POST", "url": res["resourceType"]}
    idents = res.get("identifier")
    ident = idents if isinstance(idents, dict) else next(
        (i for i in idents or [] if i.get("system") and i.get("value")), None)
    if ident and res["resourceType"] in ("Patient", "DiagnosticReport", "Composition", "Encounter", "Organization",
                                         "Practitioner"):
        req["ifNoneExist"] = f"identifier={ident['system']}|{ident['value']}"
    return req
