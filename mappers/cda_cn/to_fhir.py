"""WS/T 500 lab (C0007) and examination (C0006) documents → FHIR R4 Bundle; also the shared Report → Bundle step
that the WS 445 mapper reuses."""

from __future__ import annotations

from typing import Any

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes, Options
from mappers.cda_cn.emit import MAPPER_VERSION, Ctx, ref
from mappers.cda_cn.emit.document import composition, document_type
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
from mappers.exceptions import UnsupportedMessage
from mappers.ids import resource_id
from mappers.toolkit.bundle import BUNDLE_TYPES, bundle
from mappers.toolkit.fhirtime import is_instant
from mappers.toolkit.provenance import converter_device, provenance


def to_fhir(data: bytes, options: Options | None = None) -> Conversion:
    """Convert a WS/T 500 document. Raises ParseError (unsafe or malformed XML) or UnsupportedMessage (another
    document type, no results, no time at all)."""
    options = options or Options()
    if options.bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"bundle_type must be one of {BUNDLE_TYPES}, not {options.bundle_type!r}")
    notes = Notes()
    report = read_document(data, notes, options.max_bytes)
    return report_to_fhir(report, options, notes, document=True)


def _effective(ctx: Ctx, report: Report) -> tuple[str | None, str]:
    """The time the results describe: the first test time, else the report date, else the document time."""
    first = next((i for i in report.items if i.time), None)
    for ts, where, what in ((first.time if first else "", first.paths.get("time", "") if first else "", "test time"),
                            (report.report_date, report.paths.get("report_date", ""), "report date"),
                            (report.effective_time, report.paths.get("effective_time", ""), "document time")):
        value = ctx.time(ts, where, what)
        if value:
            return value, where
    return None, ""


def has_results(report: Report) -> bool:
    """A result item, or the report's own result text (lab DE04.50.130.00, exam DE04.50.131.00/.132.00)."""
    return bool(report.items or report.conclusion or report.findings)


def require_results(report: Report, notes: Notes) -> None:
    """A lab or exam report that yields no result is refused, unless it states it has none.

    'Truly none' for WS/T 500: the results section carries a nullFlavor (e.g. NI, NA, NAV), or every result entry
    it has gives its value as a nullFlavor without naming a test. A document whose body holds entries this mapper
    cannot read as results, or holds nothing at all, is refused naming why, never converted to an empty report."""
    if has_results(report):
        return
    if report.results_absent:
        notes.warn("cn-no-results", f"the document states it has no results (nullFlavor {report.results_absent}); "
                   "the DiagnosticReport has no result", "/ClinicalDocument/component/structuredBody")
        return
    if report.unread:
        raise UnsupportedMessage(
            f"no result could be read from this {report.type_code} report: {len(report.unread)} body entr"
            f"{'y holds' if len(report.unread) == 1 else 'ies hold'} content in no form read as a result (results "
            "are organizer CLUSTERs, flat DE04.30.015.00/.017.00/.019.00 entries or coded result observations); "
            f"first: {report.unread[0]}", details="cn-no-results", expression=report.unread[0])
    if report.empty:
        n = len(report.empty)
        raise UnsupportedMessage(
            f"the {report.type_code} report holds no results: {n} result item{'s' if n > 1 else ''} in its body "
            f"carr{'y' if n > 1 else 'ies'} no value (a template filled with no data) and nothing states the results "
            "are absent (a nullFlavor on the results section or the value)", details="cn-no-results",
            expression=report.empty[0])
    raise UnsupportedMessage(
        f"the {report.type_code} report holds no results: no result item (organizer, DE04.30.015.00/.017.00/.019.00 "
        "entry or coded result) and no report result text (DE04.50.130.00-.132.00); a document with none states "
        "it with a nullFlavor on its results section", details="cn-no-results",
        expression="/ClinicalDocument/component/structuredBody")


def report_to_fhir(report: Report, options: Options, notes: Notes, *, document: bool, source: str = "cda",
                   version: str = MAPPER_VERSION) -> Conversion:
    """Report → Bundle. `document` adds a Composition (a WS/T 500 document is one; a WS 445 dataset is not).
    `version` names the mapper in the converter Device."""
    require_results(report, notes)
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
        if party.time and report.effective_time and party.time != report.effective_time:
            notes.inform("cda-author-time-not-mapped", f"author time {party.time} differs from the document time; "
                         "FHIR has no per-author time (Composition.date is the document time)",
                         party.paths.get("time"))
    signers = [*((p, "author") for p in report.authors), *((p, "authenticator") for p in report.authenticators),
               *((p, "legal authenticator") for p in (report.legal_authenticator,) if p)]
    for party, what in signers:
        if party.role:
            notes.inform("cda-role-not-mapped", f"{what} role {party.role!r} is not carried in FHIR (a Practitioner "
                         "has no role of its own)", party.paths.get("where"))
    rep_org = named_organization(ctx, report.report_organization, known,
                                 where=report.paths.get("report_organization", ""))
    rep_dept = named_organization(ctx, report.report_department, [], rep_org,
                                  report.paths.get("report_department", "")) if report.report_department else None
    key = (f"{report.doc_id.root}|{report.doc_id.extension}" if report.doc_id else
           "|".join(f"{i.root}|{i.extension}" for i in report.ids) or subject["id"])
    effective, effective_where = _effective(ctx, report)
    dr_category, obs_category = report_category(report)
    specimens: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for n, item in enumerate(report.items, 1):
        spec = specimen(ctx, item.specimen, subject, item.where) if item.specimen else None
        if spec and spec not in specimens:
            specimens.append(spec)
        results.append(observation(ctx, report, item, key, n, subject, enc, spec, (effective, effective_where),
                                   obs_category))
    for de, text in (("DE04.50.131.00", report.findings), ("DE04.01.119.00", report.chief_complaint)):
        if text:
            results.append(text_observation(ctx, report, key, de, text, subject, enc, effective, obs_category))
    idents, based_on = report_identifiers(report)
    request = service_request(ctx, report, subject, enc, based_on, req_dept or req_org, key)
    dr: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": resource_id("DiagnosticReport", key)}
    ctx.origin(dr, "/ClinicalDocument" if source == "cda" else "(dataset)")
    if idents:
        dr["identifier"] = idents
        ctx.origin(dr, report.paths.get("ids", ""), "identifier")
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
        ctx.origin(dr, effective_where, "effectiveDateTime")
    eff_where = report.paths.get("effective_time", "")
    document_time = ctx.time(report.effective_time, eff_where, "document effectiveTime")
    instant = document_time if document_time and is_instant(document_time) else None
    if instant:
        dr["issued"] = instant
        ctx.origin(dr, eff_where, "issued")
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
        ctx.origin(dr, report.paths.get("conclusion", ""), "conclusion")
    if report.remarks:
        dr["extension"] = [{"url": S.DR_NOTE_EXT, "valueAnnotation": {"text": report.remarks}}]
    conditions = [condition(ctx, dx, subject, enc) for dx in report.diagnoses]
    resources: list[dict[str, Any]] = []
    if document:
        if report.doc_id is None:
            notes.warn("cda-no-document-id", "the document has no id (root 2.16.156.10011.1.1)",
                       report.paths.get("doc_id") or "/ClinicalDocument/id", code="required")
        resources.append(composition(ctx, report, subject, enc, authors, legal, auths, custodian, dr, conditions))
    resources += [subject, *([enc] if enc else []), *([request] if request else []), dr, *results, *specimens,
                  *conditions]
    resources += [r for r in ctx.resources.values() if r["resourceType"] in ("Organization", "Practitioner")]
    doc_id = report.doc_id or Id(S.OID_DOC_ID, key)
    src = (S.oid_system(doc_id.root), doc_id.extension) if source == "cda" else ("urn:helixgate:cn:ws445", key)
    what = f"WS/T 500 {report.type_code} {report.title}" if source == "cda" else "WS 445 dataset"
    recorded = instant or _stated(options, notes)
    device = converter_device(version)
    prov = provenance(src, what, resources, device, recorded, document_time, author=custodian)
    if prov is None:
        notes.inform("cn-no-provenance", "the source states no instant (a document time with hours and minutes) "
                     "and none was given as an option, so no source Provenance is emitted; the gateway's delivery "
                     "Provenance records when the conversion happened", eff_where or None)
    else:
        ctx.origin(prov, "/ClinicalDocument" if source == "cda" else "(dataset)")
        if instant:
            ctx.origin(prov, eff_where, "recorded")
        resources += [device, prov]
    out = bundle(resources, options.bundle_type, (source, key), timestamp=instant)
    return Conversion(out, tuple(notes.issues), dict(ctx.origins))


def _stated(options: Options, notes: Notes) -> str | None:
    """The caller's Provenance.recorded, when it is a FHIR instant."""
    if options.recorded and not is_instant(options.recorded):
        notes.warn("cn-bad-recorded-option", f"the recorded option {options.recorded!r} is not a FHIR instant; "
                   "not used")
        return None
    return options.recorded
