"""Checks of the documents a $convert writes for a `?target=` other than a plain Bundle: an IPS document
(HL7 IPS 2.0.0), an HL7 Europe Laboratory Report 2.0.0 document and a MyHealth@EU (eHDSI) Patient Summary CDA.

The IPS and EU Lab documents are FHIR JSON Bundles kept by `convert-input` (facts and validity are checked by the
converter's own checks); the eHDSI CDA is XML, posted and checked here. The EU Lab must-haves and the eHDSI header
rules are helixgate's own code (mappers.eu_lab.must_have, mappers.ehdsi_cda.rules), as the validator is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from conformance.checks.convert import output, post
from conformance.checks.expect import XML_TYPES, media_type, ok
from conformance.context import Context
from conformance.exceptions import CheckFailed, ConformanceError
from conformance.registry import check

LOINC = "http://loinc.org"
IPS_REQUIRED = {"11450-4": "problems", "48765-2": "allergies", "10160-0": "medications"}  # Composition-uv-ips 1..1
RESULTS = "30954-2"
CDA_TYPES = ("application/cda+xml", "application/hl7-cda+xml", *XML_TYPES)
V3 = "{urn:hl7-org:v3}"
HAN = re.compile(r"[\u3400-\u9fff\U00020000-\U0002ffff]")
GENDER = {"male": "M", "female": "F"}


def _code(cc: Any) -> set[str]:
    return {c.get("code") for c in (cc or {}).get("coding") or [] if isinstance(c, dict) and c.get("system") == LOINC}


def _document(bundle: dict[str, Any], what: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the Composition, the resources by fullUrl) of a FHIR document (R4 bundle.html#document)."""
    if bundle.get("type") != "document":
        raise CheckFailed(f"{what} is a Bundle of type {bundle.get('type')!r}, not a document")
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    first = (entries[0].get("resource") or {}) if entries else {}
    if first.get("resourceType") != "Composition":
        raise CheckFailed(f"the first entry of {what} is a {first.get('resourceType')}, not its Composition")
    by_url = {e.get("fullUrl"): e.get("resource") or {} for e in entries}
    return first, by_url


def _references(comp: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> None:
    """Every reference of the Composition's subject and sections names an entry of the document."""
    subject = by_url.get((comp.get("subject") or {}).get("reference"))
    if (subject or {}).get("resourceType") != "Patient":
        raise CheckFailed("Composition.subject does not name the document's Patient entry")
    for sec in comp.get("section") or []:
        for ref in sec.get("entry") or []:
            if ref.get("reference") not in by_url:
                raise CheckFailed(f"section {sorted(_code(sec.get('code')))}: entry {ref.get('reference')!r} names "
                                  "no entry of the document")


@check("convert-ips-document")
def ips_document(ctx: Context) -> str | None:
    """The output is an IPS document: a document Bundle, the Composition first (LOINC 60591-5), the required
    sections (problems, allergies, medications: entries or an emptyReason), and a Results section whose entries
    name every DiagnosticReport of the document (IPS 2.0.0 Composition-uv-ips)."""
    comp, by_url = _document(output(ctx), "the IPS document")
    if "60591-5" not in _code(comp.get("type")):
        raise CheckFailed("Composition.type is not LOINC 60591-5 (Patient summary Document)")
    _references(comp, by_url)
    sections = {code: sec for sec in comp.get("section") or [] for code in _code(sec.get("code"))}
    for code, name in IPS_REQUIRED.items():
        sec = sections.get(code)
        if sec is None:
            raise CheckFailed(f"the required {name} section ({code}) is missing")
        if not sec.get("entry") and not sec.get("emptyReason"):
            raise CheckFailed(f"the {name} section ({code}) has neither entries nor an emptyReason")
    reports = sorted(u for u, r in by_url.items() if r.get("resourceType") == "DiagnosticReport")
    if not reports:
        raise CheckFailed("the document holds no DiagnosticReport: the source's results are missing")
    listed = {ref.get("reference") for ref in (sections.get(RESULTS) or {}).get("entry") or []}
    missing = [u for u in reports if u not in listed]
    if RESULTS not in sections or missing:
        raise CheckFailed(f"the Results section ({RESULTS}) does not reference {len(missing)} of the "
                          f"{len(reports)} DiagnosticReport(s): {', '.join(missing[:3])}")
    return (f"{len(comp.get('section') or [])} sections; Results references {len(reports)} report(s) with "
            f"{len(listed) - len(reports)} result(s)")


@check("convert-eu-lab-document")
def eu_lab_document(ctx: Context) -> str | None:
    """The output meets the must-haves of HL7 Europe Laboratory Report 2.0.0 (Bundle-eu-lab, Composition-eu-lab,
    DiagnosticReport-eu-lab, Observation-resultslab-eu-lab, Specimen-eu-lab, patient-eu-core) as
    mappers.eu_lab.must_have states them, and the Composition's references resolve in the document."""
    from mappers.eu_lab.must_have import check as must_have

    bundle = output(ctx)
    comp, by_url = _document(bundle, "the EU laboratory report")
    _references(comp, by_url)
    missing = must_have(bundle)
    if missing:
        more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        raise CheckFailed(f"{len(missing)} must-have(s) missed: " + "; ".join(i.message for i in missing[:5]) + more)
    results = sum(len(r.get("result") or []) for r in by_url.values() if r.get("resourceType") == "DiagnosticReport")
    return f"every must-have met; the report has {results} result(s)"


def _facts(ctx: Context) -> dict[str, Any]:
    path = ctx.param("input").get("facts")
    if not path:
        return {}
    try:
        return orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise ConformanceError(f"cannot read the facts file {path}: {e}") from None


def _names(person: etree._Element) -> list[tuple[str, str, list[str]]]:
    """(use, family, given) of each name: parts joined as written."""
    return [(n.get("use") or "", "".join(f.text or "" for f in n.findall(f"{V3}family")),
             [g.text or "" for g in n.findall(f"{V3}given")]) for n in person.findall(f"{V3}name")]


@check("convert-ehdsi-cda")
def ehdsi_cda(ctx: Context) -> str | None:
    """POST [base]/$convert?target=ehdsi-cda → 200 and a CDA R2 ClinicalDocument served as XML that meets the eHDSI
    Patient Summary header rules (mappers.ehdsi_cda.rules), with a Results section holding entries; a Han name
    comes with its pinyin form (use IDE and ABC); the patient's facts (name, birth date, sex) as stated beside
    the input."""
    from mappers.ehdsi_cda.rules import check as header_rules

    reply = post(ctx, accept=", ".join(CDA_TYPES[:2]))
    ok(reply)
    media_type(reply, CDA_TYPES, "the eHDSI CDA document")
    try:
        root = etree.fromstring(reply.body, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError as e:
        raise CheckFailed(f"the answer is not well-formed XML: {e}") from None
    if root.tag != f"{V3}ClinicalDocument":
        raise CheckFailed(f"the root element is {root.tag}, not a CDA R2 ClinicalDocument")
    broken = [i for i in header_rules(reply.body) if i.severity in ("error", "fatal")]
    if broken:
        raise CheckFailed(f"{len(broken)} eHDSI header rule(s) broken: " +
                          "; ".join(f"{i.details}: {i.message}" for i in broken[:4]))
    results = [s for s in root.iter(f"{V3}section")
               if any(c.get("code") == RESULTS for c in s.findall(f"{V3}code"))]
    if not results or not any(s.findall(f"{V3}entry") for s in results):
        raise CheckFailed(f"no Results section ({RESULTS}) with entries: the source's results are missing")
    person = root.find(f"{V3}recordTarget/{V3}patientRole/{V3}patient")
    names = _names(person) if person is not None else []
    han = [n for n in names if HAN.search(n[1] + "".join(n[2]))]
    if han and not ({"IDE", "ABC"} <= {n[0] for n in names}
                    and any(u == "ABC" and not HAN.search(f + "".join(g)) for u, f, g in names)):
        raise CheckFailed("the patient's Han-character name has no pinyin form beside it (name use IDE and ABC)")
    patient = _facts(ctx).get("patient") or {}
    checked = []
    if "family" in patient or "given" in patient:
        want = (patient.get("family"), patient.get("given") or [])
        if not any((f, g) == want for _, f, g in names):
            raise CheckFailed(f"no recordTarget name is family {want[0]!r} given {want[1]!r}: {names}")
        checked.append("name")
    if patient.get("birth_date"):
        born = person.find(f"{V3}birthTime").get("value") or ""
        if not born.startswith(patient["birth_date"].replace("-", "")):
            raise CheckFailed(f"birthTime {born!r} is not the patient's birth date {patient['birth_date']}")
        checked.append("birth date")
    if patient.get("gender") in GENDER:
        sex = person.find(f"{V3}administrativeGenderCode").get("code")
        if sex != GENDER[patient["gender"]]:
            raise CheckFailed(f"administrativeGenderCode {sex!r} is not the patient's sex ({patient['gender']})")
        checked.append("sex")
    lang = root.find(f"{V3}languageCode").get("code")
    return (f"header rules met, languageCode {lang}, {len(names)} patient name(s)" +
            (f"; {', '.join(checked)} as stated" if checked else ""))
