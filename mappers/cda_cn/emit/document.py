"""Composition (the document itself) and the document time it needs."""

from __future__ import annotations

from typing import Any

from mappers.cda_cn import systems as S
from mappers.cda_cn.emit import Ctx, ref
from mappers.cda_cn.model import Report
from mappers.cda_cn.tables import document_types
from mappers.exceptions import UnsupportedMessage
from mappers.ids import resource_id

_SECTION_RESULTS = {"coding": [{"system": S.LOINC, "code": "30954-2",
                                "display": "Relevant diagnostic tests/laboratory data Narrative"}]}
_SECTION_DIAGNOSIS = {"coding": [{"system": S.LOINC, "code": "29548-5", "display": "Diagnosis Narrative"}]}
# R4 Composition.confidentiality is bound (required) to v3 ConfidentialityClassification.
_CONFIDENTIALITY = {"U", "L", "M", "N", "R", "V"}
# CDA relatedDocument/@typeCode → R4 Composition.relatesTo.code (document-relationship-type, required).
_RELATES = {"RPLC": "replaces", "APND": "appends", "XFRM": "transforms"}
_VERSION_EXT = "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber"
_ABSENT_EXT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def document_type(report: Report) -> dict[str, Any]:
    spec = document_types()[report.type_code]
    codings = [{"system": S.DOC_TYPE_SYSTEM, "code": report.type_code, "display": spec["title"]}]
    if spec.get("loinc"):
        codings.append({"system": S.LOINC, "code": spec["loinc"], "display": spec["loincDisplay"]})
    return {"coding": codings, "text": report.title or spec["title"]}


def _candidates(report: Report) -> list[tuple[str, str, str]]:
    """(TS, source path, what) in order of preference for the document time."""
    out = [(report.effective_time, report.paths.get("effective_time", ""), "ClinicalDocument/effectiveTime")]
    out += [(a.time, a.paths.get("time", ""), "the author time (author/time)") for a in report.authors]
    out.append((report.report_date, report.paths.get("report_date", ""), "the report date (DE04.50.133.00)"))
    legal = report.legal_authenticator
    if legal:
        out.append((legal.time, legal.paths.get("time", ""), "the signature time (legalAuthenticator/time)"))
    out += [(i.time, i.paths.get("time", ""), "the test time (DE04.30.019.00 effectiveTime)") for i in report.items]
    for i in report.items:
        if i.specimen:
            out.append((i.specimen.received, i.specimen.paths.get("received", ""), "the specimen received time"))
            out.append((i.specimen.collected, i.specimen.paths.get("collected", ""), "the specimen collection time"))
    return out


def document_time(ctx: Ctx, report: Report) -> tuple[str, str]:
    """Composition.date (1..1): ClinicalDocument/effectiveTime, else the next best source time, named in a warning.

    Raises UnsupportedMessage naming the missing element when the document carries no usable time at all."""
    for n, (ts, where, what) in enumerate(_candidates(report)):
        value = ctx.time(ts, where, what)
        if value is None:
            continue
        if n:
            state = f"invalid ({report.effective_time!r})" if report.effective_time else "empty or absent"
            ctx.notes.warn("cda-document-time-substituted", f"ClinicalDocument/effectiveTime is {state}; "
                           f"Composition.date is {what}, {value}", where)
        return value, where
    raise UnsupportedMessage(
        "the document has no time: ClinicalDocument/effectiveTime is empty or invalid and no author, report, "
        "signature, test or specimen time is given, so Composition.date (required) cannot be set",
        details="cda-no-document-time", expression=report.paths.get("effective_time") or "/ClinicalDocument")


def composition(ctx: Ctx, report: Report, subject: dict[str, Any], encounter: dict[str, Any] | None,
                authors: list[dict[str, Any]], legal: dict[str, Any] | None, auths: list[dict[str, Any]],
                custodian: dict[str, Any] | None, diagnostic_report: dict[str, Any],
                conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """Reads ClinicalDocument id, code, title, effectiveTime (or the next best time), confidentialityCode,
    languageCode, versionNumber, relatedDocument, author, legalAuthenticator, authenticator and custodian."""
    key = f"{report.doc_id.root}|{report.doc_id.extension}" if report.doc_id else report.type_code
    res: dict[str, Any] = {"resourceType": "Composition", "id": resource_id("Composition", key)}
    ctx.origin(res, "/ClinicalDocument")
    if report.language:
        res["language"] = report.language
    if report.version:
        res["extension"] = [{"url": _VERSION_EXT, "valueString": report.version}]
    if report.doc_id:
        res["identifier"] = {"system": S.oid_system(report.doc_id.root), "value": report.doc_id.extension}
        ctx.origin(res, report.paths.get("doc_id", ""), "identifier")
    res["status"] = "final"
    res["type"] = document_type(report)
    res["subject"] = ref(subject)
    if encounter:
        res["encounter"] = ref(encounter)
    res["date"], where = document_time(ctx, report)
    ctx.origin(res, where, "date")
    if authors:
        res["author"] = [ref(a) for a in authors]
    elif custodian:
        res["author"] = [ref(custodian)]
        ctx.notes.warn("cda-no-author", "the document names no author; Composition.author is the custodian",
                       "/ClinicalDocument/author")
    else:
        res["author"] = [{"extension": [{"url": _ABSENT_EXT, "valueCode": "unknown"}]}]
        ctx.notes.warn("cda-no-author", "the document names no author or custodian; Composition.author is marked "
                       "unknown (data-absent-reason)", "/ClinicalDocument/author")
    res["title"] = report.title or document_types()[report.type_code]["title"]
    conf = report.confidentiality
    if conf and conf.system in ("", S.OID_CONFIDENTIALITY) and conf.code in _CONFIDENTIALITY:
        res["confidentiality"] = conf.code
    elif conf:
        ctx.notes.warn("cda-confidentiality-not-mapped", f"confidentialityCode {conf.code!r} (system "
                       f"{conf.system or 'not given'}) is not a v3 ConfidentialityClassification code; not mapped",
                       "/ClinicalDocument/confidentialityCode")
    attesters = []
    for mode, who, party in [("legal", legal, report.legal_authenticator),
                             *(("professional", a, p) for a, p in zip(auths, report.authenticators, strict=False))]:
        if who is None or party is None:
            continue
        att: dict[str, Any] = {"mode": mode, "party": ref(who)}
        when = ctx.time(party.time, party.paths.get("time", ""), "attestation time")
        if when:
            att["time"] = when
        attesters.append(att)
    if attesters:
        res["attester"] = attesters
    relates = []
    for type_code, parent in report.related:
        code = _RELATES.get(type_code)
        if code is None:
            ctx.notes.warn("cda-related-document-not-mapped", f"relatedDocument typeCode {type_code!r} is not "
                           "RPLC, APND or XFRM; not mapped", "/ClinicalDocument/relatedDocument")
            continue
        relates.append({"code": code, "targetIdentifier": {"system": S.oid_system(parent.root),
                                                           "value": parent.extension}})
    if relates:
        res["relatesTo"] = relates
    if custodian:
        res["custodian"] = ref(custodian)
    sections = []
    if conditions:
        sections.append({"title": "诊断记录", "code": _SECTION_DIAGNOSIS, "entry": [ref(c) for c in conditions]})
    sections.append({"title": "检验报告" if report.kind == "lab" else "检查报告", "code": _SECTION_RESULTS,
                     "entry": [ref(diagnostic_report)]})
    res["section"] = sections
    return res
