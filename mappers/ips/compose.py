"""Any FHIR Bundle a reader produced → an International Patient Summary document (HL7 IPS 2.0.0, Bundle-uv-ips).

The document is a Bundle of type `document` whose first entry is an IPS Composition (LOINC 60591-5) with the three
required sections (problems, allergies, medications: entries, or an emptyReason saying no information was
available), and a section for each other kind of content the input holds (results with every DiagnosticReport and
its Observations, procedures, immunisations, vital signs, …). Every resource keeps its id and fullUrl and claims the
IPS profile of its type beside the profiles it already claims (a Genomics IG genomic report is also an IPS
DiagnosticReport). A Han patient name gets its pinyin form (mappers.toolkit.hanzi_names).

What a profile requires and the source does not state is not invented: it is marked with the data-absent-reason
extension (FHIR R4 extension-data-absent-reason) and reported. Two inferences are made and reported: a result
without a performer takes its report's performers (the lab that issued the report performed its results), and one
without an effective time takes its report's.

Deterministic: no clock. Bundle.timestamp (an instant, required) is the source's own time (its Bundle.timestamp,
Composition.date, a report's issued time, its Provenance) or the caller's `recorded`; without any, the conversion is
refused naming Bundle.timestamp.
"""

from __future__ import annotations

import html
import re
from typing import Any

import orjson

from mappers.exceptions import EmitError, Issue
from mappers.ids import resource_id
from mappers.ips import sections as S
from mappers.toolkit.hanzi_names import with_name_forms
from mappers.toolkit.registry import ConvertOptions

VERSION = "ips/0.1.1"  # 0.1.1: the source's language as Composition.language and Bundle.language
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
IPS_TYPE = {"system": S.LOINC, "code": "60591-5", "display": "Patient summary Document"}
EMPTY_REASON = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "unavailable",
                            "display": "Unavailable"}], "text": "No information available"}
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
PERFORMER_TYPES = ("Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "RelatedPerson")
GENOMICS = "http://hl7.org/fhir/uv/genomics-reporting/"
XHTML = "http://www.w3.org/1999/xhtml"


def absent(code: str = "unknown") -> dict[str, Any]:
    return {"extension": [{"url": DAR, "valueCode": code}]}


class _Doc:
    """The input's resources by fullUrl, with the references rewritten to fullUrls."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        raw = [e for e in bundle.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        copy = orjson.loads(orjson.dumps(raw))  # never edit the caller's Bundle
        self.entries: list[tuple[str, dict[str, Any]]] = []
        alias: dict[str, str] = {}
        for e in copy:
            res = e["resource"]
            rtype, rid = res.get("resourceType"), res.get("id")
            full = e.get("fullUrl")
            if not isinstance(full, str) or not full:
                full = f"urn:uuid:{resource_id(str(rtype), str(rid))}"
            if rtype and rid:
                alias[f"{rtype}/{rid}"] = full
            self.entries.append((full, res))
        self.by_full = {full: res for full, res in self.entries}
        for _, res in self.entries:  # relative references → the fullUrl of the entry they name
            for obj in _objects(res):
                ref = obj.get("reference")
                if isinstance(ref, str) and ref in alias:
                    obj["reference"] = alias[ref]

    def of_type(self, *types: str) -> list[tuple[str, dict[str, Any]]]:
        return [(f, r) for f, r in self.entries if r.get("resourceType") in types]

    def resolve(self, ref: Any) -> dict[str, Any] | None:
        value = ref.get("reference") if isinstance(ref, dict) else None
        return self.by_full.get(value) if isinstance(value, str) else None


def _objects(value: Any) -> list[dict[str, Any]]:
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            out.append(v)
            stack.extend(x for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            stack.extend(x for x in v if isinstance(x, dict | list))
    return out


def compose(bundle: dict[str, Any], opts: ConvertOptions) -> tuple[dict[str, Any], list[Issue]]:
    """The IPS document Bundle for `bundle` (any FHIR Bundle: collection, transaction or document) and the issues
    (every inference and every absent required element, by resource). Raises EmitError naming what is missing:
    the patient (exactly one), or any source time for Bundle.timestamp without `opts.recorded`."""
    if is_ips_document(bundle):  # already one (FHIR input, an eHDSI summary read as IPS): kept as it is
        return orjson.loads(orjson.dumps(bundle)), [Issue(
            "information", "informational", "ips-already", "the input is an IPS document: written as it is (and "
            "validated)", "Bundle")]
    doc = _Doc(bundle)
    issues: list[Issue] = []
    patients = doc.of_type("Patient")
    if len(patients) != 1:
        raise EmitError("an IPS document summarises one patient: the input has "
                        f"{'no Patient' if not patients else f'{len(patients)} Patients'}",
                        details="ips-patient", expression="Bundle.entry.resource.ofType(Patient)")
    patient_url, patient = patients[0]
    source_comp = next((r for _, r in doc.of_type("Composition")), None)
    timestamp, date = _times(bundle, doc, source_comp, opts, issues)
    key = str(bundle.get("id") or _identifier_key(bundle) or patient_url) + "|" + timestamp

    entries = [(f, r) for f, r in doc.entries if r.get("resourceType") != "Composition"]
    cid = resource_id("Composition", "ips", key)
    if source_comp is not None:
        _retarget(doc, source_comp, f"urn:uuid:{cid}", issues)
        issues.append(Issue("information", "informational", "ips-source-composition",
                            f"the source document ({_text(source_comp.get('type')) or 'Composition'}) is replaced by "
                            "the IPS Composition, which names it in relatesTo (transforms)", "Composition"))
    _patient(patient, issues)
    filled = _fill(doc, entries, patient_url, issues)
    authors = _authors(doc, source_comp, issues)
    if not authors:
        device = _composer_device()
        entries.append((f"urn:uuid:{device['id']}", device))
        authors = [{"reference": f"urn:uuid:{device['id']}"}]
        issues.append(Issue("information", "informational", "ips-author-device",
                            "the source names no author: the IPS Composition's author is the converter (a Device)",
                            "Composition.author"))
    lang = language(bundle, source_comp)
    comp = _composition(cid, date, patient_url, authors, lang, source_comp, _sections(doc, entries, filled))
    bid = resource_id("Bundle", "ips", key)
    out = {"resourceType": "Bundle", "id": bid, "meta": {"profile": [S.IPS + "Bundle-uv-ips"]},
           **({"language": lang} if lang else {}),
           "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bid}"}, "type": "document",
           "timestamp": timestamp,
           "entry": [{"fullUrl": f"urn:uuid:{comp['id']}", "resource": comp},
                     {"fullUrl": patient_url, "resource": patient},
                     *({"fullUrl": f, "resource": r} for f, r in entries if r is not patient)]}
    out["entry"] = linked(out["entry"], issues)
    return out, issues


def language(bundle: dict[str, Any], source: dict[str, Any] | None) -> str | None:
    """The document's language as its source states it (a CDA languageCode read into Composition.language, an HL7 v2
    MSH-19 into Bundle.language), for the written Composition.language and Bundle.language; never the patient's
    (Patient.communication). None when the source states none: none is set."""
    for lang in ((source or {}).get("language"), bundle.get("language")):
        if isinstance(lang, str) and lang:
            return lang
    return None


def linked(entries: list[dict[str, Any]], issues: list[Issue]) -> list[dict[str, Any]]:
    """The entries reachable from the Composition (the first) by following references forward, then backward from
    any entry that links into what was reached: a FHIR document holds nothing else (R4 bundle.html#document).
    The rest is left out and reported (e.g. a sending facility only a Provenance named, without the Provenance)."""
    index = {e["fullUrl"]: i for i, e in enumerate(entries)}
    links = [{index[r] for o in _objects(e["resource"]) if isinstance(r := o.get("reference"), str) and r in index}
             for e in entries]
    seen: set[int] = set()
    stack = [0]
    while True:
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack.extend(links[k] - seen)
        stack = [i for i in range(len(entries)) if i not in seen and links[i] & seen]
        if not stack:
            break
    for i, e in enumerate(entries):
        if i not in seen:
            res = e["resource"]
            issues.append(Issue("warning", "informational", "document-unlinked", f"{res.get('resourceType')}/"
                                f"{res.get('id')} is left out of the document: nothing in it links to or from the "
                                "Composition", str(res.get("resourceType"))))
    return [e for i, e in enumerate(entries) if i in seen]


def _retarget(doc: _Doc, source: dict[str, Any], comp_url: str, issues: list[Issue]) -> None:
    """References to the replaced source Composition (a Provenance's targets) name the IPS Composition instead."""
    old = next(f for f, r in doc.entries if r is source)
    count = 0
    for _, res in doc.entries:
        if res is source:
            continue
        for obj in _objects(res):
            if obj.get("reference") == old:
                obj["reference"] = comp_url
                count += 1
    if count:
        issues.append(Issue("information", "informational", "ips-source-composition", f"{count} reference(s) to the "
                            "source Composition (e.g. Provenance.target) name the IPS Composition that replaces it",
                            "Provenance.target"))


def is_ips_document(bundle: Any) -> bool:
    """Whether `bundle` is an IPS document: a document Bundle whose first entry is a Composition of type 60591-5."""
    if not isinstance(bundle, dict) or bundle.get("type") != "document":
        return False
    entries = bundle.get("entry") or []
    comp = (entries[0] or {}).get("resource") if entries and isinstance(entries[0], dict) else None
    return isinstance(comp, dict) and comp.get("resourceType") == "Composition" and any(
        isinstance(c, dict) and c.get("system") == S.LOINC and c.get("code") == IPS_TYPE["code"]
        for c in (comp.get("type") or {}).get("coding") or [])


def _identifier_key(bundle: dict[str, Any]) -> str | None:
    ident = bundle.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        return f"{ident.get('system', '')}|{ident['value']}"
    return None


def _times(bundle: dict[str, Any], doc: _Doc, comp: dict[str, Any] | None, opts: ConvertOptions,
           issues: list[Issue]) -> tuple[str, str]:
    """(Bundle.timestamp, Composition.date): the first instant the source states, else the caller's `recorded`."""
    candidates: list[tuple[str, Any]] = [("Bundle.timestamp", bundle.get("timestamp"))]
    if comp is not None:
        candidates.append(("Composition.date", comp.get("date")))
    candidates += [("DiagnosticReport.issued", r.get("issued")) for _, r in doc.of_type("DiagnosticReport")]
    candidates += [("Provenance.recorded", r.get("recorded")) for _, r in doc.of_type("Provenance")]
    found = next(((where, v) for where, v in candidates if isinstance(v, str) and INSTANT.match(v)), None)
    if found is None:
        if not opts.recorded:
            raise EmitError("the document needs Bundle.timestamp, an instant, and the source states no time of "
                            "day (no Bundle.timestamp, Composition.date, DiagnosticReport.issued or "
                            "Provenance.recorded): state it with --recorded (HTTP: recorded=)",
                            details="ips-no-time", expression="Bundle.timestamp")
        issues.append(Issue("information", "informational", "ips-time-recorded",
                            "Bundle.timestamp is the instant the caller stated (recorded): the source states none",
                            "Bundle.timestamp"))
        timestamp = opts.recorded
    else:
        timestamp = found[1]
    date = comp.get("date") if comp is not None and isinstance(comp.get("date"), str) else timestamp
    return timestamp, date


def _patient(patient: dict[str, Any], issues: list[Issue], profile: str = S.PROFILE["Patient"]) -> None:
    """Claim `profile`, add the pinyin form of Han names, mark an absent name or birth date (IPS and EU Base
    both require them)."""
    _claim(patient, profile)
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    names, romanised = with_name_forms(names)
    if romanised:
        issues.append(Issue("information", "informational", "ips-name-romanised",
                            f"{romanised} Han name(s) given a Hanyu Pinyin form (GB/T 28039-2011) beside the "
                            "characters", "Patient.name"))
    if not any(n.get("family") or n.get("given") or n.get("text") for n in names):
        if names:
            names[0]["_text"] = absent()
        else:
            names = [{"_text": absent()}]
        issues.append(Issue("warning", "incomplete", "ips-absent", "the patient has no name: Patient.name.text is "
                            "marked data-absent-reason unknown (its profile requires a name)", "Patient.name"))
    patient["name"] = names
    if not patient.get("birthDate"):
        patient["_birthDate"] = {**patient.get("_birthDate", {}), **absent()}
        issues.append(Issue("warning", "incomplete", "ips-absent", "the patient has no birth date: Patient.birthDate "
                            "is marked data-absent-reason unknown (its profile requires it)", "Patient.birthDate"))


def _claim(res: dict[str, Any], profile: str) -> None:
    meta = res.setdefault("meta", {})
    profiles = meta.setdefault("profile", [])
    if profile not in profiles:
        profiles.append(profile)


def _fill(doc: _Doc, entries: list[tuple[str, dict[str, Any]]], patient_url: str,
          issues: list[Issue]) -> set[str]:
    """Claim each resource's IPS profile and mark what it requires but lacks; the fullUrls of lab results."""
    results: set[str] = set()
    report_of: dict[str, dict[str, Any]] = {}
    for _, rep in doc.of_type("DiagnosticReport"):
        for ref in rep.get("result") or []:
            for full in _members(doc, ref):
                report_of.setdefault(full, rep)
    for full, res in entries:
        rtype = res.get("resourceType")
        where = f"{rtype}/{res.get('id')}"
        if rtype == "Observation":
            if S.observation_section(res) is not S.RESULTS or "imaging" in S.categories(res):
                continue
            _lab_result(res, report_of.get(full), patient_url, where, issues)
            results.add(full)
            continue
        profile = S.PROFILE.get(rtype or "")
        if profile is None:
            continue
        if rtype == "Procedure" and not res.get("code") and any(
                str(p).startswith(GENOMICS) for p in (res.get("meta") or {}).get("profile") or []):
            # a Genomics IG analysis (genomic-study-analysis) forbids Procedure.code, which Procedure-uv-ips requires
            issues.append(Issue("information", "informational", "ips-not-profiled", f"{where} keeps its Genomics IG "
                                "profile only: that profile forbids the code Procedure-uv-ips requires", "Procedure"))
            continue
        _claim(res, profile)
        if rtype in ("Organization", "Practitioner") and not res.get("name"):
            res["_name" if rtype == "Organization" else "name"] = absent() if rtype == "Organization" else [absent()]
            _absent(issues, where, "name")
        elif rtype == "DiagnosticReport":
            _subject(res, patient_url, where, issues)
            if not any(k.startswith("effective") and not k.startswith("_") for k in res):
                res["_effectiveDateTime"] = absent()
                _absent(issues, where, "effective[x]")
        elif rtype == "Specimen":
            if not res.get("type"):
                res["type"] = absent()
                _absent(issues, where, "type")
            if isinstance(res.get("subject"), dict) and not res["subject"].get("reference"):
                res["subject"]["reference"] = patient_url
        elif rtype == "Condition":
            _subject(res, patient_url, where, issues)
            if not res.get("code"):
                res["code"] = absent()
                _absent(issues, where, "code")
        elif rtype == "Procedure":
            _subject(res, patient_url, where, issues)
            if not res.get("code"):
                res["code"] = absent()
                _absent(issues, where, "code")
            if not any(k.startswith("performed") for k in res):
                res["_performedDateTime"] = absent()
                _absent(issues, where, "performed[x]")
        elif rtype in ("AllergyIntolerance", "Immunization", "MedicationStatement", "MedicationRequest",
                       "DeviceUseStatement", "Flag"):
            _subject(res, patient_url, where, issues, "patient" if rtype in ("AllergyIntolerance", "Immunization")
                     else "subject")
    return results


def _members(doc: _Doc, ref: Any) -> list[str]:
    """The fullUrl of a result and of its members (hasMember), depth-first, each once."""
    out: list[str] = []
    stack = [ref]
    while stack and len(out) < 10_000:
        r = stack.pop()
        full = r.get("reference") if isinstance(r, dict) else None
        res = doc.by_full.get(full) if isinstance(full, str) else None
        if res is None or full in out:
            continue
        out.append(full)
        stack.extend(reversed(res.get("hasMember") or []))
    return out


def _absent(issues: list[Issue], where: str, element: str) -> None:
    issues.append(Issue("warning", "incomplete", "ips-absent", f"{where} has no {element}, which its profile "
                        "requires: marked data-absent-reason unknown", f"{where.split('/')[0]}.{element}"))


def _subject(res: dict[str, Any], patient_url: str, where: str, issues: list[Issue], name: str = "subject") -> None:
    subject = res.get(name)
    if not isinstance(subject, dict) or not subject.get("reference"):
        res[name] = {**(subject if isinstance(subject, dict) else {}), "reference": patient_url}
        issues.append(Issue("information", "informational", "ips-subject", f"{where} names no {name}: it is the "
                            "document's patient", f"{where.split('/')[0]}.{name}"))


def _lab_result(res: dict[str, Any], report: dict[str, Any] | None, patient_url: str, where: str,
                issues: list[Issue], profile: str = S.LAB) -> None:
    """Claim `profile` and give the result what IPS and EU Lab results require: category laboratory, subject,
    effective time and performer (its report's when it has none), a value or a dataAbsentReason."""
    _claim(res, profile)
    if "laboratory" not in S.categories(res):
        res["category"] = [{"coding": [{"system": S.CATEGORY, "code": "laboratory", "display": "Laboratory"}]},
                           *(res.get("category") or [])]
        issues.append(Issue("information", "informational", "ips-lab-category", f"{where} carries no category: a "
                            "result in the IPS Results section is laboratory", "Observation.category"))
    _subject(res, patient_url, where, issues)
    if not any(k.startswith("effective") and not k.startswith("_") for k in res):
        eff = {k: v for k, v in (report or {}).items() if k in ("effectiveDateTime", "effectivePeriod")}
        if eff:
            res.update(eff)
            issues.append(Issue("information", "informational", "ips-from-report", f"{where} states no time: its "
                                "report's effective time is taken", "Observation.effective"))
        else:
            res["_effectiveDateTime"] = absent()
            _absent(issues, where, "effective[x]")
    if not res.get("performer"):
        by = [p for p in (report or {}).get("performer") or [] if isinstance(p, dict)
              and (str(p.get("reference", "")).split("/")[0] in PERFORMER_TYPES
                   or str(p.get("reference", "")).startswith("urn:"))]
        if by:
            res["performer"] = orjson.loads(orjson.dumps(by))
            issues.append(Issue("information", "informational", "ips-from-report", f"{where} names no performer: its "
                                "report's performers are taken", "Observation.performer"))
        else:
            res["performer"] = [absent()]
            _absent(issues, where, "performer")
    _international(res, where, issues)
    has_value = any(k.startswith("value") for k in res) or res.get("dataAbsentReason") or res.get("hasMember") \
        or res.get("component")
    if not has_value:  # IPS ips-2 asks for one whatever the status (EU Lab's eu-lab-1 spares registered/cancelled)
        code, display = {"registered": ("temp-unknown", "Temporarily Unknown"),
                         "cancelled": ("not-performed", "Not Performed")}.get(str(res.get("status")),
                                                                             ("unknown", "Unknown"))
        res["dataAbsentReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                               "code": code, "display": display}]}
        issues.append(Issue("warning", "incomplete", "ips-absent", f"{where} has no value: dataAbsentReason {code} "
                            f"(status {res.get('status')})", "Observation.dataAbsentReason"))


RESULT_CODE = "urn:oid:2.16.156.10011.2.3.2.38"
UCUM = "http://unitsofmeasure.org"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def _international(res: dict[str, Any], where: str, issues: list[Issue]) -> None:
    """China code systems → the international ones IPS and EU Lab bind, through the ConceptMaps (data): the WS 364
    result code → a v3 ObservationInterpretation coding beside it; a unit written as text → its UCUM code."""
    from mappers.terminology import translate

    for cc in res.get("interpretation") or []:
        codings = cc.get("coding") or [] if isinstance(cc, dict) else []
        if any(isinstance(c, dict) and c.get("system") == V3_INTERPRETATION for c in codings):
            continue
        for c in list(codings):
            if isinstance(c, dict) and c.get("system") == RESULT_CODE and isinstance(c.get("code"), str):
                t = translate("cn-result-code-to-observation-interpretation", c["code"])
                if t is not None:
                    codings.append({"system": t.system, "code": t.code, "display": t.display})
                    issues.append(Issue("information", "informational", "cn-conceptmap", f"{where}: result code "
                                        f"{c['code']} ({RESULT_CODE}) → v3 ObservationInterpretation {t.code} "
                                        "(ConceptMap cn-result-code-to-observation-interpretation)",
                                        "Observation.interpretation"))
    quantities = [res.get("valueQuantity")] + [r.get(k) for r in res.get("referenceRange") or []
                                               if isinstance(r, dict) for k in ("low", "high")]
    for q in quantities:
        if isinstance(q, dict) and isinstance(q.get("unit"), str) and not q.get("code") and not q.get("system"):
            t = translate("cn-unit-text-to-ucum", q["unit"])
            if t is not None:
                q["system"], q["code"] = UCUM, t.code
                issues.append(Issue("information", "informational", "cn-conceptmap", f"{where}: unit "
                                    f"{q['unit']!r} → UCUM {t.code} (ConceptMap cn-unit-text-to-ucum)",
                                    "Observation.valueQuantity"))


def _authors(doc: _Doc, comp: dict[str, Any] | None, issues: list[Issue]) -> list[dict[str, Any]]:
    """The source document's authors, else the performers of its reports (Practitioner/Organization)."""
    if comp is not None and comp.get("author"):
        return [a for a in comp["author"] if isinstance(a, dict) and doc.resolve(a) is not None]
    found: list[dict[str, Any]] = []
    for _, rep in doc.of_type("DiagnosticReport"):
        for p in rep.get("performer") or []:
            target = doc.resolve(p)
            if target is not None and target.get("resourceType") in ("Practitioner", "PractitionerRole",
                                                                     "Organization") and p not in found:
                found.append({"reference": p["reference"]})
    if found:
        issues.append(Issue("information", "informational", "ips-author-performer", "the source names no author: "
                            "the IPS Composition's authors are the performers of its reports", "Composition.author"))
    return found


def _composer_device() -> dict[str, Any]:
    return {"resourceType": "Device", "id": resource_id("Device", "helixgate", VERSION),
            "deviceName": [{"name": "helixgate IPS composer", "type": "manufacturer-name"}],
            "version": [{"value": VERSION}]}


def _sections(doc: _Doc, entries: list[tuple[str, dict[str, Any]]], results: set[str]) -> list[dict[str, Any]]:
    """Composition.section: the required three first, then each other section with entries, in IPS order."""
    members: dict[str, list[tuple[str, dict[str, Any]]]] = {s.key: [] for s in S.ORDER}
    placed: set[str] = set()
    for full, res in entries:
        rtype = res.get("resourceType")
        if rtype == "DiagnosticReport":
            members["results"].append((full, res))
            for ref in res.get("result") or []:
                for m in _members(doc, ref):
                    if m not in placed:
                        placed.add(m)
                        members["results"].append((m, doc.by_full[m]))
        elif rtype == "Observation" and full not in placed:
            section = S.observation_section(res)
            if section is not S.RESULTS or full in results:
                placed.add(full)
                members[section.key].append((full, res))
        elif rtype in S.BY_TYPE:
            members[S.BY_TYPE[rtype].key].append((full, res))
    out = []
    for section in S.ORDER:
        items = members[section.key]
        if not items and not section.required:
            continue
        sec: dict[str, Any] = {"title": section.title, "code": S.section_code(section),
                               "text": {"status": "generated", "div": _narrative(section, items)}}
        if items:
            sec["entry"] = [{"reference": f} for f, _ in items]
        else:
            sec["emptyReason"] = EMPTY_REASON
        out.append(sec)
    return out


def _composition(cid: str, date: str, patient_url: str, authors: list[dict[str, Any]], lang: str | None,
                 source: dict[str, Any] | None, sections: list[dict[str, Any]]) -> dict[str, Any]:
    comp: dict[str, Any] = {"resourceType": "Composition", "id": cid,
                            "meta": {"profile": [S.IPS + "Composition-uv-ips"]}}
    if lang:
        comp["language"] = lang
    comp |= {"identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{cid}"}, "status": "final",
             "type": {"coding": [IPS_TYPE]}, "subject": {"reference": patient_url}}
    if source is not None and isinstance(source.get("encounter"), dict):
        comp["encounter"] = source["encounter"]
    comp |= {"date": date, "author": authors, "title": "International Patient Summary"}
    if source is not None:
        comp["confidentiality"] = source.get("confidentiality") or "N"
        for name in ("attester", "custodian"):
            if source.get(name):
                comp[name] = source[name]
        if isinstance(source.get("identifier"), dict):
            comp["relatesTo"] = [{"code": "transforms", "targetIdentifier": source["identifier"]}]
    else:
        comp["confidentiality"] = "N"
    comp["section"] = sections
    return comp


# ---- narrative: one line per entry, what a reader needs to see (R4 narrative: escaped XHTML, no scripts) ----
def _text(cc: Any) -> str:
    if not isinstance(cc, dict):
        return ""
    if cc.get("text"):
        return str(cc["text"])
    for c in cc.get("coding") or []:
        if isinstance(c, dict) and (c.get("display") or c.get("code")):
            return str(c.get("display") or c.get("code"))
    return ""


def _value(res: dict[str, Any]) -> str:
    if isinstance(res.get("valueQuantity"), dict):
        q = res["valueQuantity"]
        return f"{q.get('value', '')} {q.get('unit') or q.get('code') or ''}".strip()
    if isinstance(res.get("valueCodeableConcept"), dict):
        return _text(res["valueCodeableConcept"])
    for k in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if k in res:
            return str(res[k])
    if res.get("component"):
        return "; ".join(f"{_text(c.get('code'))}: {_value(c)}" for c in res["component"] if isinstance(c, dict))
    if res.get("dataAbsentReason"):
        return _text(res["dataAbsentReason"])
    return ""


def _line(res: dict[str, Any]) -> str:
    rtype = res.get("resourceType", "")
    what = _text(res.get("code")) or _text(res.get("vaccineCode")) or _text(res.get("medicationCodeableConcept"))
    parts = [what or rtype]
    value = _value(res) if rtype == "Observation" else res.get("conclusion", "")
    if value:
        parts.append(str(value))
    when = res.get("effectiveDateTime") or res.get("onsetDateTime") or res.get("recordedDate") \
        or res.get("performedDateTime") or res.get("occurrenceDateTime")
    if when:
        parts.append(str(when))
    return html.escape(" — ".join(parts), quote=False)


def _narrative(section: S.Section, items: list[tuple[str, dict[str, Any]]]) -> str:
    if not items:
        return f'<div xmlns="{XHTML}"><p>{html.escape(section.empty_text)}</p></div>'
    rows = "".join(f"<li>{_line(r)}</li>" for _, r in items)
    return f'<div xmlns="{XHTML}"><ul>{rows}</ul></div>'
