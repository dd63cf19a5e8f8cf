"""WS/T 500 lab (C0007) and examination (C0006) documents → FHIR R4 Bundle; also the shared Report → Bundle step
that the WS 445 mapper reuses."""

from __future__ import annotations

from typing import Any

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes, Options
from mappers.cda_cn.emit import Ctx, ref
from mappers.cda_cn.emit.document import bundle, composition, converter_device, document_type, provenance
from mappers.cda_cn.emit.parties import encounter, named_organization, organization, practitioner
from mappers.cda_cn.emit.patient import patient
from mappers.cda_cn.emit.results import (
    condition,
    observation,
    report_category,
    report_identifiers,
    service_request,
    specimen,
    text_observation,
)
from mappers.cda_cn.model import Id, Report
from mappers.cda_cn.parse import read_document
from mappers.conversion import Conversion
from mappers.ids import resource_id

BUNDLE_TYPES = ("collection", "transaction")


def to_fhir(data: bytes, options: Options | None = None) -> Conversion:
    """Convert a WS/T 500 document. Raises ParseError (unsafe or malformed XML) or UnsupportedMessage (another
    document type)."""
    options = options or Options()
    if options.bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"bundle_type must be one of {BUNDLE_TYPES}, not {options.bundle_type!r}")
    notes = Notes()
    report = read_document(data, notes, options.max_bytes)
    return report_to_fhir(report, options, notes, document=True)


def _effective(ctx: Ctx, report: Report) -> str | None:
    first = next((i.time for i in report.items if i.time), "")
    return (ctx.time(first, "results", "test time") or ctx.time(report.report_date, "report", "report date")
            or ctx.time(report.effective_time, "ClinicalDocument/effectiveTime", "document effectiveTime"))


def report_to_fhir(report: Report, options: Options, notes: Notes, *, document: bool,
                   source: str = "cda") -> Conversion:
    """Report → Bundle. `document` adds a Composition (a WS/T 500 document is one; a WS 445 dataset is not)."""
    custodian_code = next((i.extension for i in (report.custodian.ids if report.custodian else ())
                           if i.root == S.OID_ORGANIZATION), "")
    ctx = Ctx(notes, options, custodian_code, source)
    subject = patient(ctx, report)
    custodian = organization(ctx, report.custodian)
    known = [o for o in (custodian,) if o]
    req_org = organization(ctx, report.requester_organization) if report.requester_organization else None
    if req_org:
        known.append(req_org)
    req_dept = organization(ctx, report.requester_department, req_org) if report.requester_department else None
    enc = encounter(ctx, report, subject, custodian)
    authors = [p for a in report.authors if (p := practitioner(ctx, a))]
    legal = practitioner(ctx, report.legal_authenticator)
    auths = [p for a in report.authenticators if (p := practitioner(ctx, a))]
    for party in report.authors:
        if party.time and party.time != report.effective_time:
            notes.inform("cda-author-time-not-mapped", f"author time {party.time} differs from the document time; "
                         "FHIR has no per-author time (Composition.date is the document time)",
                         "ClinicalDocument/author/time")
    for party in report.authenticators:
        if party.role:
            notes.inform("cda-role-not-mapped", f"authenticator role {party.role!r} is not carried in FHIR (the "
                         "attester mode is 'professional')", "ClinicalDocument/authenticator")
    rep_org = named_organization(ctx, report.report_organization, known)
    rep_dept = named_organization(ctx, report.report_department, [], rep_org) if report.report_department else None
    key = (f"{report.doc_id.root}|{report.doc_id.extension}" if report.doc_id else
           "|".join(f"{i.root}|{i.extension}" for i in report.ids) or subject["id"])
    effective = _effective(ctx, report)
    dr_category, obs_category = report_category(report)
    specimens: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for n, item in enumerate(report.items, 1):
        spec = specimen(ctx, item.specimen, subject, item.where) if item.specimen else None
        if spec and spec not in specimens:
            specimens.append(spec)
        results.append(observation(ctx, report, item, key, n, subject, enc, spec, effective, obs_category))
    for de, text in (("DE04.50.131.00", report.findings), ("DE04.01.119.00", report.chief_complaint)):
        if text:
            results.append(text_observation(ctx, report, key, de, text, subject, enc, effective, obs_category))
    idents, based_on = report_identifiers(report)
    request = service_request(subject, enc, based_on, req_dept or req_org, key)
    dr: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": resource_id("DiagnosticReport", key)}
    if idents:
        dr["identifier"] = idents
    if request:
        dr["basedOn"] = [ref(request)]
    dr["status"] = "final"
    if dr_category:
        dr["category"] = dr_category
    dr["code"] = document_type(report)
    dr["subject"] = ref(subject)
    if enc:
        dr["encounter"] = ref(enc)
    if effective:
        dr["effectiveDateTime"] = effective
    issued = ctx.time(report.effective_time, "ClinicalDocument/effectiveTime", "document effectiveTime")
    if issued and "T" in issued:
        dr["issued"] = issued
    performers = [ref(p) for p in authors] + [ref(o) for o in (rep_dept or rep_org,) if o]
    if performers:
        dr["performer"] = performers
    if legal:
        dr["resultsInterpreter"] = [ref(legal)]
    if specimens:
        dr["specimen"] = [ref(s) for s in specimens]
    if results:
        dr["result"] = [ref(r) for r in results]
    if report.conclusion:
        dr["conclusion"] = report.conclusion
    if report.remarks:
        dr["extension"] = [{"url": S.DR_NOTE_EXT, "valueAnnotation": {"text": report.remarks}}]
    if not report.items:
        notes.warn("cn-no-results", "the report has no result entries (no organizer in the results section)", None)
    conditions = [condition(ctx, dx, subject, enc) for dx in report.diagnoses]
    resources: list[dict[str, Any]] = []
    if document:
        if report.doc_id is None:
            notes.warn("cda-no-document-id", "the document has no id (root 2.16.156.10011.1.1)", "ClinicalDocument/id",
                       code="required")
        resources.append(composition(ctx, report, subject, enc, authors, legal, auths, custodian, dr, conditions))
    resources += [subject, *([enc] if enc else []), *([request] if request else []), dr, *results, *specimens,
                  *conditions]
    resources += [r for r in ctx.resources.values() if r["resourceType"] in ("Organization", "Practitioner")]
    device = converter_device()
    doc_id = report.doc_id or Id(S.OID_DOC_ID, key)
    src = (S.oid_system(doc_id.root), doc_id.extension) if source == "cda" else ("urn:helixgate:cn:ws445", key)
    what = (f"WS/T 500 {report.type_code} {report.title}" if source == "cda" else "WS 445 dataset")
    prov = provenance(ctx, report, src, resources, device, custodian, what)
    resources += [device, prov]
    return Conversion(bundle(ctx, resources, (source, key)), tuple(notes.issues))
