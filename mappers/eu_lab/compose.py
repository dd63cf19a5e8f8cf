"""A lab result Bundle (WS/T 500 C0007, WS 445, HL7 v2 ORU, …) → an HL7 Europe Laboratory Report 2.0.0 document
(`hl7.fhir.eu.laboratory`, canonical http://hl7.eu/fhir/laboratory).

The document is a Bundle of type `document` (Bundle-eu-lab): a Composition-eu-lab first, naming its one
DiagnosticReport (extension composition-diagnosticReportReference), the DiagnosticReport-eu-lab naming the
Composition back (the R5 DiagnosticReport.composition extension), the results as Observation-resultslab-eu-lab,
specimens as Specimen-eu-lab and the patient as EU Base patient-eu-core. The Composition and the report share
identifier, type, category, subject and encounter (the Bundle-eu-lab invariants dr-comp-identifier, -type,
-category, -subj, -enc). One report per document (invariant one-dr): an input with several is refused by name. The
document's language is the source's (Composition.language and Bundle.language, as mappers.ips.compose.language).

Required elements the source lacks are marked data-absent-reason and reported, as for IPS (mappers.ips.compose,
whose helpers this shares); nothing is invented.
"""

from __future__ import annotations

from typing import Any

from mappers.exceptions import EmitError, Issue
from mappers.ids import resource_id
from mappers.ips import compose as ips
from mappers.ips import sections as S
from mappers.toolkit.registry import ConvertOptions

VERSION = "eu-lab/0.1.1"  # 0.1.1: the source's language as Composition.language and Bundle.language
PACKAGE = "hl7.fhir.eu.laboratory#2.0.0"
LAB = "http://hl7.eu/fhir/laboratory/StructureDefinition/"
BASE = "http://hl7.eu/fhir/base/StructureDefinition/"
PROFILES = {"Bundle": LAB + "Bundle-eu-lab", "Composition": LAB + "Composition-eu-lab",
            "DiagnosticReport": LAB + "DiagnosticReport-eu-lab", "Observation": LAB + "Observation-resultslab-eu-lab",
            "Specimen": LAB + "Specimen-eu-lab", "Patient": BASE + "patient-eu-core"}
COMPOSITION_REPORT = "http://hl7.eu/fhir/extensions/StructureDefinition/composition-diagnosticReportReference"
REPORT_COMPOSITION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-DiagnosticReport.composition"
LAB_REPORT = {"system": S.LOINC, "code": "11502-2", "display": "Laboratory report"}
# the section code: LabStudyTypesEuVs' general "Laboratory studies (set)" (a result of no narrower study type)
STUDY = {"system": S.LOINC, "code": "26436-6", "display": "Laboratory studies (set)"}
STATUS = {"final": "final", "amended": "amended", "corrected": "amended", "appended": "amended",
          "preliminary": "preliminary", "partial": "preliminary", "registered": "preliminary"}


def compose(bundle: dict[str, Any], opts: ConvertOptions) -> tuple[dict[str, Any], list[Issue]]:
    """The EU Lab document for `bundle` and the issues. Raises EmitError for an input without exactly one patient
    and one DiagnosticReport, or without any time for Bundle.timestamp (and no `opts.recorded`)."""
    doc = ips._Doc(bundle)
    issues: list[Issue] = []
    patients = doc.of_type("Patient")
    reports = doc.of_type("DiagnosticReport")
    if len(patients) != 1:
        raise EmitError(f"an EU laboratory report is about one patient: the input has {len(patients)} Patients",
                        details="eu-lab-patient", expression="Bundle.entry.resource.ofType(Patient)")
    if len(reports) != 1:
        raise EmitError(f"an EU laboratory report document holds one DiagnosticReport (Bundle-eu-lab one-dr): the "
                        f"input has {len(reports)}" + ("; convert each report on its own" if reports else ""),
                        details="eu-lab-report", expression="Bundle.entry.resource.ofType(DiagnosticReport)")
    patient_url, patient = patients[0]
    report_url, report = reports[0]
    source_comp = next((r for _, r in doc.of_type("Composition")), None)
    timestamp, date = ips._times(bundle, doc, source_comp, opts, issues)
    key = str(bundle.get("id") or ips._identifier_key(bundle) or report_url) + "|" + timestamp
    cid = resource_id("Composition", "eu-lab", key)
    comp_url = f"urn:uuid:{cid}"
    entries = [(f, r) for f, r in doc.entries if r.get("resourceType") != "Composition"]
    if source_comp is not None:
        ips._retarget(doc, source_comp, comp_url, issues)
        issues.append(Issue("information", "informational", "eu-lab-source-composition", "the source document "
                            f"({ips._text(source_comp.get('type')) or 'Composition'}) is replaced by the EU "
                            "laboratory report Composition, which names it in relatesTo (transforms)", "Composition"))

    ips._patient(patient, issues, PROFILES["Patient"])
    ips._subject(report, patient_url, f"DiagnosticReport/{report.get('id')}", issues)
    ips._claim(report, PROFILES["DiagnosticReport"])
    report.setdefault("extension", []).append({"url": REPORT_COMPOSITION, "valueReference": {"reference": comp_url}})
    identifier = _identifier(report, cid, issues)
    results = [m for ref in report.get("result") or [] for m in ips._members(doc, ref)]
    if not results:
        raise EmitError("an EU laboratory report carries results: the DiagnosticReport has none",
                        details="eu-lab-no-results", expression="DiagnosticReport.result")
    for full in dict.fromkeys(results):
        obs = doc.by_full[full]
        ips._lab_result(obs, report, patient_url, f"Observation/{obs.get('id')}", issues, PROFILES["Observation"])
    for ref in report.get("specimen") or []:
        spec = doc.resolve(ref)
        if spec is not None and spec.get("resourceType") == "Specimen":
            ips._claim(spec, PROFILES["Specimen"])
            if not spec.get("type"):
                spec["type"] = ips.absent()
                ips._absent(issues, f"Specimen/{spec.get('id')}", "type")

    authors = ips._authors(doc, source_comp, issues)
    if not authors:
        device = ips._composer_device()
        entries.append((f"urn:uuid:{device['id']}", device))
        authors = [{"reference": f"urn:uuid:{device['id']}"}]
        issues.append(Issue("information", "informational", "eu-lab-author-device", "the source names no author: "
                            "the Composition's author is the converter (a Device)", "Composition.author"))
    lang = ips.language(bundle, source_comp)  # as the IPS composer carries it (HL7 v2 MSH-19, a CDA languageCode)
    comp = _composition(cid, identifier, date, report_url, report, authors, lang, source_comp,
                        [(f, doc.by_full[f]) for f in dict.fromkeys(results)])
    bid = resource_id("Bundle", "eu-lab", key)
    out = {"resourceType": "Bundle", "id": bid, "meta": {"profile": [PROFILES["Bundle"]]},
           **({"language": lang} if lang else {}),
           "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bid}"}, "type": "document",
           "timestamp": timestamp,
           "entry": [{"fullUrl": comp_url, "resource": comp}, {"fullUrl": patient_url, "resource": patient},
                     *({"fullUrl": f, "resource": r} for f, r in entries if r is not patient)]}
    out["entry"] = ips.linked(out["entry"], issues)
    return out, issues


def _identifier(report: dict[str, Any], cid: str, issues: list[Issue]) -> dict[str, Any]:
    """The report's first identifier, which the Composition shares (dr-comp-identifier); one made when it has
    none."""
    for ident in report.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("value"):
            return ident  # the same Identifier, type included: equal however the invariant compares them
    made = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{cid}"}
    report["identifier"] = [*(report.get("identifier") or []), made]
    issues.append(Issue("information", "informational", "eu-lab-identifier", "the report has no identifier: the "
                        "document's identifier is given to both (Bundle-eu-lab dr-comp-identifier)",
                        "DiagnosticReport.identifier"))
    return made


def _composition(cid: str, identifier: dict[str, Any], date: str, report_url: str, report: dict[str, Any],
                 authors: list[dict[str, Any]], lang: str | None, source: dict[str, Any] | None,
                 results: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    comp: dict[str, Any] = {"resourceType": "Composition", "id": cid, "meta": {"profile": [PROFILES["Composition"]]}}
    if lang:
        comp["language"] = lang
    comp["extension"] = [{"url": COMPOSITION_REPORT, "valueReference": {"reference": report_url}}]
    comp["identifier"] = identifier
    comp["status"] = STATUS.get(str(report.get("status")), "final")
    comp["type"] = report.get("code") or {"coding": [LAB_REPORT]}  # dr-comp-type: the report's code
    if not report.get("code"):
        report["code"] = comp["type"]
    if report.get("category"):
        comp["category"] = report["category"]  # dr-comp-category
    comp["subject"] = report["subject"]  # dr-comp-subj
    if isinstance(report.get("encounter"), dict):
        comp["encounter"] = report["encounter"]  # dr-comp-enc
    comp |= {"date": date, "author": authors,
             "title": (source or {}).get("title") or ips._text(report.get("code")) or "Laboratory report"}
    if source is not None:
        for name in ("confidentiality", "attester", "custodian"):
            if source.get(name):
                comp[name] = source[name]
        if isinstance(source.get("identifier"), dict):
            comp["relatesTo"] = [{"code": "transforms", "targetIdentifier": source["identifier"]}]
    rows = "".join(f"<li>{ips._line(r)}</li>" for _, r in results)
    comp["section"] = [{"title": "Laboratory examinations", "code": {"coding": [STUDY]},
                        "text": {"status": "generated", "div": f'<div xmlns="{ips.XHTML}"><ul>{rows}</ul></div>'},
                        "entry": [{"reference": f} for f, _ in results]}]
    return comp
