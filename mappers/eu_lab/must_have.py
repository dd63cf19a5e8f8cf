"""What HL7 Europe Laboratory Report 2.0.0 requires of a document, checked as code: the profiles' cardinalities
and invariants that matter for a converter (Bundle-eu-lab, Composition-eu-lab, DiagnosticReport-eu-lab,
Observation-resultslab-eu-lab, Specimen-eu-lab, EU Base patient-eu-core), for when the package is not installed
and the validator cannot check them. With the package installed the validator checks them all (and more)."""

from __future__ import annotations

from typing import Any

from mappers.eu_lab.compose import COMPOSITION_REPORT, REPORT_COMPOSITION
from mappers.exceptions import Issue
from mappers.ips.sections import CATEGORY

DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def _present(res: dict[str, Any], name: str) -> bool:
    """A required element: a value, or a primitive carried by its extensions only (`_name`, data-absent-reason)."""
    return bool(res.get(name)) or bool(res.get("_" + name))


def _has_choice(res: dict[str, Any], prefix: str) -> bool:
    return any(k.startswith(prefix) or k.startswith("_" + prefix) for k in res)


def _ext(res: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in res.get("extension") or [] if isinstance(e, dict) and e.get("url") == url]


def check(doc: dict[str, Any]) -> list[Issue]:
    """Every must-have the document misses, as an error naming the element (FHIRPath into the Bundle)."""
    out: list[Issue] = []

    def miss(path: str, what: str) -> None:
        out.append(Issue("error", "invariant", "eu-lab-must-have", f"{path}: {what}", path))

    if doc.get("resourceType") != "Bundle" or doc.get("type") != "document":
        miss("Bundle.type", "an EU laboratory report is a document Bundle")
        return out
    for name in ("identifier", "timestamp"):
        if not doc.get(name):
            miss(f"Bundle.{name}", "required (Bundle-eu-lab 1..1)")
    for name in ("total", "link"):
        if name in doc:
            miss(f"Bundle.{name}", "not allowed in Bundle-eu-lab (0..0)")
    entries = [e for e in doc.get("entry") or [] if isinstance(e, dict)]
    by_url: dict[str, dict[str, Any]] = {}
    for i, e in enumerate(entries):
        if not e.get("fullUrl"):
            miss(f"Bundle.entry[{i}].fullUrl", "required (Bundle-eu-lab 1..1)")
        else:
            by_url[e["fullUrl"]] = e.get("resource") or {}
        for name in ("search", "request", "response"):
            if name in e:
                miss(f"Bundle.entry[{i}].{name}", "not allowed in Bundle-eu-lab (0..0)")
    kinds = [(e.get("resource") or {}).get("resourceType") for e in entries]
    if kinds.count("Composition") != 1 or kinds[:1] != ["Composition"]:
        miss("Bundle.entry[0]", "one Composition, the first entry (Bundle-eu-lab one-comp)")
        return out
    if kinds.count("DiagnosticReport") != 1:
        miss("Bundle.entry", f"one DiagnosticReport (Bundle-eu-lab one-dr), not {kinds.count('DiagnosticReport')}")
        return out
    comp = entries[0]["resource"]
    di = kinds.index("DiagnosticReport")
    report, report_url = entries[di]["resource"], entries[di].get("fullUrl")
    cp = "Bundle.entry[0].resource"
    links = _ext(comp, COMPOSITION_REPORT)
    if len(links) != 1 or (links[0].get("valueReference") or {}).get("reference") != report_url:
        miss(f"{cp}.extension", "one composition-diagnosticReportReference naming the report (Composition-eu-lab)")
    for name in ("identifier", "status", "type", "subject", "date", "title"):
        if not comp.get(name):
            miss(f"{cp}.{name}", "required (Composition-eu-lab 1..1)")
    if not comp.get("author"):
        miss(f"{cp}.author", "required (Composition-eu-lab 1..*)")
    sections = comp.get("section") or []
    if not sections:
        miss(f"{cp}.section", "required (Composition-eu-lab 1..*)")
    for i, sec in enumerate(sections):
        for name in ("title", "code", "text"):
            if not (sec or {}).get(name):
                miss(f"{cp}.section[{i}].{name}", "required (Composition-eu-lab 1..1)")
    rp = f"Bundle.entry[{di}].resource"
    back = _ext(report, REPORT_COMPOSITION)
    if len(back) != 1 or (back[0].get("valueReference") or {}).get("reference") != entries[0].get("fullUrl"):
        miss(f"{rp}.extension", "one DiagnosticReport.composition (R5) extension naming the Composition "
             "(DiagnosticReport-eu-lab 1..1)")
    for name in ("code", "subject"):
        if not report.get(name):
            miss(f"{rp}.{name}", "required (DiagnosticReport-eu-lab 1..1)")
    if comp.get("identifier") not in (report.get("identifier") or []):
        miss(f"{cp}.identifier", "the report carries the Composition's identifier (dr-comp-identifier)")
    for mine, theirs, rule in (("type", "code", "dr-comp-type"), ("category", "category", "dr-comp-category"),
                               ("subject", "subject", "dr-comp-subj"), ("encounter", "encounter", "dr-comp-enc")):
        if comp.get(mine) != report.get(theirs):
            miss(f"{cp}.{mine}", f"equal to the report's {theirs} ({rule})")
    for j, ref in enumerate(report.get("result") or []):
        obs = by_url.get((ref or {}).get("reference", ""))
        if obs is None:
            miss(f"{rp}.result[{j}]", "names no entry of the Bundle")
            continue
        _observation(obs, f"{rp}.result[{j}].resolve()", miss)
    for j, ref in enumerate(report.get("specimen") or []):
        spec = by_url.get((ref or {}).get("reference", ""))
        if spec is not None and not spec.get("type"):
            miss(f"{rp}.specimen[{j}].resolve().type", "required (Specimen-eu-lab 1..1)")
    for i, e in enumerate(entries):
        res = e.get("resource") or {}
        if res.get("resourceType") == "Patient":
            _patient(res, f"Bundle.entry[{i}].resource", miss)
    return out


def _observation(obs: dict[str, Any], path: str, miss: Any) -> None:
    cats = {c.get("code") for cc in obs.get("category") or [] for c in (cc or {}).get("coding") or []
            if (c or {}).get("system") == CATEGORY}
    if "laboratory" not in cats:
        miss(f"{path}.category", "a laboratory category (Observation-resultslab-eu-lab)")
    if not obs.get("subject"):
        miss(f"{path}.subject", "required (Observation-resultslab-eu-lab 1..1)")
    if not _has_choice(obs, "effective"):
        miss(f"{path}.effective[x]", "required (Observation-resultslab-eu-lab 1..1)")
    if not obs.get("performer"):
        miss(f"{path}.performer", "required (Observation-resultslab-eu-lab 1..*)")
    if obs.get("status") not in ("registered", "cancelled") and not (
            _has_choice(obs, "value") or obs.get("hasMember") or obs.get("component") or obs.get("dataAbsentReason")):
        miss(path, "a value, members, components or a dataAbsentReason (eu-lab-1)")


def _patient(patient: dict[str, Any], path: str, miss: Any) -> None:
    names = patient.get("name") or []
    if not names:
        miss(f"{path}.name", "required (patient-eu-core 1..*)")
    for i, n in enumerate(names):
        n = n or {}
        if not (n.get("family") or n.get("given") or n.get("text") or n.get("_text") or _ext(n, DAR)):
            miss(f"{path}.name[{i}]", "family, given, text or a data-absent-reason (eu-pat-1)")
    if not _present(patient, "birthDate"):
        miss(f"{path}.birthDate", "required (patient-eu-core 1..1)")
