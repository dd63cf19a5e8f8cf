"""FHIR R4 Bundle (Genomics Reporting IG 1.x-3.x, mCODE) → HL7 v2.5.1 ORU^R01 in the LRI genetic variant model.

Genomic content is recognised by what it is (mappers.fhir.genomics), whatever profile it claims. One ORC/OBR per
DiagnosticReport (or one synthesized OBR when the input has results but no report); every variant becomes an OBX-4
group 2a, 2b, … carrying every component it states (gene, HGVS, transcript, allele fraction, source class, allelic
state, coordinates, …) and the rows of the implications derived from it; biomarkers (TMB, MSI) are overall-study rows.
Everything of the input the message cannot carry is listed in the report (mappers.fhir.ledger).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mappers.conversion import load_bundle
from mappers.exceptions import EmitError, Issue, operation_outcome
from mappers.fhir.genomics import LOINC, Entry, first_code, read
from mappers.hl7v2.charsets import DECLARED_NAME
from mappers.hl7v2.datatypes import fhir_to_dtm
from mappers.hl7v2.escape import escape
from mappers.hl7v2.model import DEFAULT_DELIMITERS as D
from mappers.hl7v2.write.results import Row, Rows, letters, obs_status, obx
from mappers.hl7v2.write.segments import order, pid, pid_of_identifier, segment, spm
from mappers.hl7v2.write.state import State
from mappers.hl7v2.write.values import cwe, dtm
from mappers.toolkit.fhirtime import is_datetime, is_instant

GENETIC_PANEL = "81247-9^Master HL7 genetic variant reporting panel^LN"
FINDING_GROUPS = ("variant", "genotype", "haplotype")  # findings that get an OBX-4 group of their own
ATTACHED = ("diagnostic-implication", "therapeutic-implication", "molecular-consequence",
            "sequence-phase-relationship")  # written in the group of the finding they derive from
ABOUT_THE_DOCUMENT = ("Provenance", "Device")  # how the input was made, not what it reports
# Bundle elements that frame the content (read, or about the Bundle itself), not content of their own
BUNDLE_FRAME = {"resourceType", "id", "meta", "type", "timestamp", "entry", "total", "link"}


@dataclass(frozen=True, slots=True)
class EmitOptions:
    """MSH header values chosen by the caller, the character set to declare (MSH-18) and encode with, and the
    message time (MSH-7) for an input that states none of its own (never the clock)."""

    sending_application: str = "HELIXGATE"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    encoding: str = "utf-8"
    timestamp: datetime | str | None = None


@dataclass(frozen=True, slots=True)
class V2Message:
    text: str  # segments joined by CR
    encoding: str
    issues: tuple[Issue, ...] = field(default=())

    @property
    def data(self) -> bytes:
        return self.text.encode(self.encoding)

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def from_fhir(bundle: dict[str, Any] | bytes | str, options: EmitOptions | None = None) -> V2Message:
    """Bundle → ORU^R01. Raises ParseError (not a Bundle, or content of the wrong shape) or EmitError (no result to
    report, or results of several patients without a report to separate them)."""
    return _Writer(load_bundle(bundle), options or EmitOptions()).run()


class _Writer:
    def __init__(self, bundle: dict[str, Any], options: EmitOptions) -> None:
        self.options = options
        self.content = read(bundle)
        self.st = State(self.content)
        self.st.issues.extend(self.content.issues)
        self.rows = Rows(self.st)

    def run(self) -> V2Message:
        reports = self.content.of("DiagnosticReport")
        observations = [e for e in self.content.entries if e.type == "Observation"]
        if not reports and not observations:
            raise EmitError("the Bundle has no DiagnosticReport and no Observation: an ORU^R01 reports results, and "
                            "there are none", details="fhir-no-report", expression="Bundle.entry")
        for e in self.content.entries:
            if e.type in ABOUT_THE_DOCUMENT:
                self.st.ledger.use(e, *e.resource)
                self.st.inform("fhir-about-the-input", f"{e.label} describes how the input was made; the ORU^R01 "
                               "keeps only its time (MSH-7)", e.where)
        for name in self.content.bundle:
            if name not in BUNDLE_FRAME:
                self.st.warn("fhir-element-not-carried", f"Bundle.{name} has no place in the ORU^R01; not carried "
                             "over", f"Bundle.{name}")
        segments = [self.msh(reports)]
        patients: list[int | str] = []
        if reports:
            for set_id, report in enumerate(reports, 1):
                segments.extend(self.patient(report, patients))
                segments.extend(self.report_order(report, set_id))
            self.orphans(reports)
        else:
            segments.extend(self.synthesized(observations, patients))
        self.rows.summary()
        text = "\r".join(segments) + "\r"
        issues = [*self.st.issues, *self.st.ledger.unmapped(self.content.entries)]
        return V2Message(text, self.options.encoding, tuple(issues))

    # ---- header and patient ----
    def msh(self, reports: list[Entry]) -> str:
        o = self.options
        when = self.message_time(reports)
        digest = self.content.digest[:16]
        charset = DECLARED_NAME.get(o.encoding, o.encoding.upper())
        fields = ["MSH", "^~\\&", escape(o.sending_application, D), escape(o.sending_facility, D),
                  escape(o.receiving_application, D), escape(o.receiving_facility, D), when, "",
                  "ORU^R01^ORU_R01", f"HG{digest}", "P", "2.5.1", "", "", "", "", "", charset]
        return "|".join(fields)

    def message_time(self, reports: list[Entry]) -> str:
        """MSH-7 from the input: the source message's time a Provenance kept, the Bundle's timestamp, the time a
        Provenance recorded, the report's issue time; else the caller's; else the latest time a report or result
        states (a guess, reported); else empty (reported)."""
        provs = [e for e in self.content.entries if e.type == "Provenance"]
        candidates = [
            *((p.resource.get("occurredDateTime"), f"{p.where}.occurredDateTime") for p in provs),
            (self.content.bundle.get("timestamp"), "Bundle.timestamp"),
            *((p.resource.get("recorded"), f"{p.where}.recorded") for p in provs),
            *((r.resource.get("issued"), f"{r.where}.issued") for r in reports),
        ]
        for value, where in candidates:
            if value and is_instant(value):
                return dtm(self.st, value, where)
        stated = self.options.timestamp
        if isinstance(stated, datetime):
            stated = stated.isoformat(timespec="seconds")
        if stated and is_instant(stated):
            return dtm(self.st, stated, "timestamp")
        # MSH-7 is required (v2.5.1 §2.14.9.7): the latest time a report or result states comes closest
        times = [(when, f"{e.where}.{name}") for e in self.content.entries
                 if e.type in ("Observation", "DiagnosticReport")
                 for name in ("issued", "effectiveDateTime")
                 if isinstance(when := e.resource.get(name), str) and is_datetime(when)]
        if times:
            when, where = max(times, key=lambda t: (fhir_to_dtm(t[0])[:8], len(t[0]), t[0]))
            self.st.warn("hl7v2-message-time-guessed", f"the input states no message time (Provenance, "
                         f"Bundle.timestamp, DiagnosticReport.issued) and none was given: MSH-7 is {when}, the "
                         "latest time a report or result states", where)
            return fhir_to_dtm(when)
        self.st.warn("hl7v2-no-message-time", "the input states no time (Provenance, Bundle.timestamp, "
                     "DiagnosticReport.issued, a report's or result's time) and none was given: MSH-7 is left empty",
                     "Bundle.timestamp", code="required")
        return ""

    def patient(self, holder: Entry, written: list[int | str]) -> list[str]:
        """PID of the holder's subject, once per patient; a subject not in the input is written from the
        identifier its reference states, else reported."""
        ref = holder.resource.get("subject")
        subject = self.content.resolve(ref)
        if subject is None or subject.type != "Patient":
            ident = (ref or {}).get("identifier")
            if ident and ident.get("value"):
                key = f"{ident.get('system')}|{ident['value']}"
                if key in written:
                    return []
                written.append(key)
                self.st.inform("hl7v2-subject-by-identifier", f"{holder.label}: the subject is not in the input; "
                               "PID-3 is the identifier its reference states", f"{holder.where}.subject.identifier")
                return [pid_of_identifier(ident, len(written))]
            if ref:
                self.st.warn("hl7v2-subject-not-in-input",
                             f"{holder.label}: subject {ref.get('reference') or ref.get('display', '')} is not a "
                             "Patient in the input; no PID written for it", f"{holder.where}.subject")
            return []
        if subject.index in written:
            return []
        written.append(subject.index)
        return [pid(self.st, subject, len(written))]

    # ---- orders ----
    def report_order(self, report: Entry, set_id: int) -> list[str]:
        res = report.resource
        request = self.content.resolve((res.get("basedOn") or [None])[0])
        request = request if request is not None and request.type == "ServiceRequest" else None
        genomic = self.content.is_genomic_report(report)
        code = self.order_code(report, request, genomic)
        out = order(self.st, report, request, set_id, code)
        if res.get("conclusion"):
            self.st.ledger.use(report, "conclusion")
            out.append(segment("NTE", ["", "1", "", escape(res["conclusion"], D)]))
        rows: list[Row] = []
        for i, cc in enumerate(res.get("conclusionCode") or []):
            self.st.ledger.use(report, "conclusionCode")
            rows.append(obx("CWE", "51968-6^Discrete variation analysis overall interpretation^LN", "1",
                            cwe(self.st, cc, f"{report.where}.conclusionCode[{i}]"), obs_status(res)))
        results = []
        for i, ref in enumerate(res.get("result") or []):
            target = self.content.resolve(ref)
            if target is None or target.type != "Observation":
                self.st.warn("fhir-result-not-in-input", f"{report.label}: result "
                             f"{ref.get('reference') or ref.get('display', '')} is not an Observation in the input; "
                             "not carried over", f"{report.where}.result[{i}]")
                continue
            results.append(target)
        if res.get("result"):
            self.st.ledger.use(report, "result")
        rows.extend(self.result_rows(results))
        for i, form in enumerate(res.get("presentedForm") or []):
            row = self.rows.presented_form(report, i, form)
            if row is not None:
                self.st.ledger.use(report, "presentedForm")
                rows.append(row)
        out.extend(self.obx_segments(rows))
        specimens: set[int] = set()
        for ref in res.get("specimen") or []:
            spec = self.content.resolve(ref)
            if spec is not None and spec.type == "Specimen":
                specimens.add(spec.index)
                out.append(spm(self.st, spec, len(specimens)))
        if res.get("specimen") and len(specimens) == len(res["specimen"]):
            self.st.ledger.use(report, "specimen")
        for e in results:  # a result's specimen is carried when it is one of the order's SPM segments
            spec = self.content.resolve(e.resource.get("specimen"))
            if spec is not None and spec.index in specimens:
                self.st.ledger.use(e, "specimen")
        return out

    def order_code(self, report: Entry, request: Entry | None, genomic: bool) -> str:
        """OBR-4, the service ordered: the ServiceRequest's code, else the report's own code beside the IG's
        51969-4, else (a genomic report) LRI's master panel 81247-9."""
        if request is not None and request.resource.get("code"):
            return cwe(self.st, request.resource["code"], f"{request.where}.code")
        code = report.resource.get("code") or {}
        others = [c for c in code.get("coding") or [] if not (c.get("system") == LOINC and c.get("code") == "51969-4")]
        if others:
            return cwe(self.st, {**code, "coding": others}, f"{report.where}.code")
        if genomic:
            return GENETIC_PANEL
        return cwe(self.st, code, f"{report.where}.code")

    def result_rows(self, results: list[Entry]) -> list[Row]:
        """Rows of the results in the order given: a group per variant (genotype, haplotype) with what derives
        from it; implications whose finding is not written get a group of their own, reported."""
        written = {e.index for e in results if e.kind in FINDING_GROUPS}
        phases: dict[int, list[Entry]] = {}
        for e in self.content.of("sequence-phase-relationship"):
            for ref in e.resource.get("derivedFrom") or []:
                target = self.content.resolve(ref)
                if target is not None and target.index in written:
                    phases.setdefault(target.index, []).append(e)
        rows: list[Row] = []
        group = 0
        done: set[int] = set()
        for e in results:
            if e.index in done:
                continue
            done.add(e.index)
            if e.kind in FINDING_GROUPS:
                group += 1
                sub = "2" + letters(group)
                done.update(i.index for i in self.content.derived.get(e.index, []))
                rows.extend(self.members(e, sub))
                rows.extend(self.rows.finding_group(e, sub, phases.get(e.index, [])))
            elif e.kind in ATTACHED:
                if self.attached_elsewhere(e, written):
                    continue
                group += 1
                sub = "2" + letters(group)
                self.st.warn("hl7v2-implication-alone", f"{e.label} derives from nothing written in this order; "
                             f"its rows form OBX-4 group {sub} of their own", f"{e.where}.derivedFrom")
                rows.extend(self.rows.implication(e, sub) if e.kind != "sequence-phase-relationship"
                            else self.rows.phase(e, sub))
            else:  # sub-ID 1, the overall study, holds genomic results; a lab result in the same order has none
                genetic = e.genomic or any(first_code(c) == "GE" for c in e.resource.get("category") or [])
                rows.extend(self.rows.overall(e, "1" if genetic else ""))
        return rows

    def attached_elsewhere(self, e: Entry, written: set[int]) -> bool:
        """True when `e` derives from a finding written in this order (its rows are in that finding's group)."""
        targets = [self.content.resolve(r) for r in e.resource.get("derivedFrom") or []]
        return any(t is not None and t.index in written for t in targets)

    def members(self, e: Entry, sub: str) -> list[Row]:
        """A complex variant (hasMember) names the variants it is made of; LRI rows cannot link groups."""
        members = e.resource.get("hasMember") or []
        if members:
            self.st.ledger.use(e, "hasMember")
            names = ", ".join(m.get("display") or m.get("reference", "") for m in members)
            self.st.warn("hl7v2-members-not-linked", f"{e.label} (OBX-4 group {sub}) is made of {names}; the links "
                         "between OBX-4 groups have no place in LRI rows and are not carried over",
                         f"{e.where}.hasMember")
        return []

    def obx_segments(self, rows: list[Row]) -> list[str]:
        out = []
        for n, row in enumerate(rows, 1):
            row[1] = str(n)
            out.append(segment("OBX", row.fields))
            for k, text in enumerate(row.notes, 1):
                out.append(segment("NTE", ["", str(k), "", escape(text, D)]))
        return out

    def orphans(self, reports: list[Entry]) -> None:
        """Observations no report reaches are not in any order: the ledger reports them; say why once."""
        reached = {e.index for r in reports for ref in r.resource.get("result") or []
                   if (e := self.content.resolve(ref)) is not None}
        for idx in list(reached):
            reached.update(i.index for i in self.content.derived.get(idx, []))
        lost = [e for e in self.content.entries if e.type == "Observation" and e.index not in reached
                and e.kind not in ATTACHED]
        for e in lost:
            self.st.ledger.use(e, *e.resource)  # reported here, once
            self.st.warn("fhir-result-not-reported", f"{e.label} is not a result of any DiagnosticReport; an "
                         "ORU^R01 carries results only within an order, so it is not carried over", e.where)

    def synthesized(self, observations: list[Entry], patients: list[int | str]) -> list[str]:
        """Results without a DiagnosticReport: one OBR (81247-9 when they are genomic) holds them all."""
        subjects = {(o.resource.get("subject") or {}).get("reference") for o in observations} - {None}
        if len(subjects) > 1:
            raise EmitError(f"the Observations belong to {len(subjects)} subjects and no DiagnosticReport orders "
                            "them; an ORU^R01 without reports is written for one patient", details="fhir-many-subjects",
                            expression="Bundle.entry")
        genomic = any(o.genomic for o in observations)
        first = observations[0]
        code = GENETIC_PANEL if genomic else cwe(self.st, first.resource.get("code"), f"{first.where}.code")
        times = sorted(t for o in observations if isinstance(t := o.resource.get("effectiveDateTime"), str))
        effective = dtm(self.st, times[0], f"{first.where}.effectiveDateTime") if times else ""
        statuses = {obs_status(o.resource) for o in observations}
        status = statuses.pop() if len(statuses) == 1 else ""
        self.st.warn("hl7v2-order-synthesized", f"the input has no DiagnosticReport: its {len(observations)} "
                     f"result(s) are written under one synthesized OBR (OBR-4 {code.split('^')[0]}, OBR-7 the "
                     "earliest effective time, OBR-25 their common status)", "Bundle.entry")
        out = []
        holder = next((o for o in observations if o.resource.get("subject")), None)
        if holder is not None:
            out.extend(self.patient(holder, patients))
        else:
            self.st.warn("hl7v2-no-subject", "the results name no subject: the message has no PID", "Bundle.entry")
        out.extend(order(self.st, None, None, 1, code, effective, status))
        out.extend(self.obx_segments(self.result_rows(observations)))
        return out
