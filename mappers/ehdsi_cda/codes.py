"""Identifiers of the eHDSI Patient Summary: document and section templateIds, the IPS sections they become, and code
system OIDs ⇄ FHIR system URIs.

Sources: eHDSI CDA templates (art-decor eHDSI project, PS L3 templateIds `1.3.6.1.4.1.12559.11.10.1.3.1.2.{n}` for
sections); IPS 2.0.0 Composition-uv-ips section slices (their LOINC codes and entry profiles); FHIR R4
terminologies.html (system URIs) and the HL7 OID registry (OIDs).
"""

from __future__ import annotations

from dataclasses import dataclass

EHDSI = "1.3.6.1.4.1.12559.11.10.1.3.1"
PS_L3 = f"{EHDSI}.1.3"  # eHDSI Patient Summary, level 3 (structured body)
PS_L1 = f"{EHDSI}.1.7"  # Patient Summary level 1 (a PDF in nonXMLBody)
EP_L3 = f"{EHDSI}.1.1"  # ePrescription level 3
ED_L3 = f"{EHDSI}.1.5"  # eDispensation level 3
EP_L1 = f"{EHDSI}.1.6"
ORCD = {f"{EHDSI}.1.{n}" for n in (8, 9, 10, 11)}  # original clinical documents (unstructured)
IHE_MEDICAL_SUMMARY = "1.3.6.1.4.1.19376.1.5.3.1.1.1"  # epSOS-era documents carry it beside the eHDSI one
# Document templates refused by name (converted: PS_L3 to an IPS document, EP_L3 to MedicationRequests).
REFUSED = {PS_L1: "eHDSI Patient Summary level 1 (an unstructured PDF body)",
           EP_L1: "eHDSI ePrescription level 1 (an unstructured PDF body)", ED_L3: "eHDSI eDispensation",
           **{t: "eHDSI original clinical document (OrCD, an unstructured body)" for t in ORCD}}
TYPE_ID = ("2.16.840.1.113883.1.3", "POCD_HD000040")
RECORD_TARGET = "2.16.840.1.113883.3.1937.777.11.10.100"

IPS = "http://hl7.org/fhir/uv/ips/StructureDefinition/"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
NAME_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"


@dataclass(frozen=True, slots=True)
class Section:
    """One Patient Summary section: its LOINC code, eHDSI section templateId, IPS slice and CDA entry kind."""

    code: str
    title: str
    template: str  # eHDSI PS L3 section templateId
    kind: str  # the entry mapper (mappers.ehdsi_cda.entries)


SECTIONS: tuple[Section, ...] = (
    Section("10160-0", "History of Medication use", f"{EHDSI}.2.3", "medication"),
    Section("48765-2", "Allergies and adverse reactions", f"{EHDSI}.2.12", "allergy"),
    Section("11450-4", "Problem list", f"{EHDSI}.2.9", "problem"),
    Section("11348-0", "History of Past illness", f"{EHDSI}.2.10", "problem"),
    Section("47519-4", "History of Procedures", f"{EHDSI}.2.11", "procedure"),
    Section("46264-8", "History of medical device use", f"{EHDSI}.2.4", "device"),
    Section("11369-6", "History of Immunization", f"{EHDSI}.2.15", "immunization"),
    Section("30954-2", "Relevant diagnostic tests/laboratory data", f"{EHDSI}.2.5", "result"),
    Section("8716-3", "Vital signs", f"{EHDSI}.2.6", "vital"),
    Section("10162-6", "History of pregnancies", f"{EHDSI}.2.7", "pregnancy"),
    Section("29762-2", "Social history", f"{EHDSI}.2.13", "social"),
    Section("47420-5", "Functional status", f"{EHDSI}.2.14", "functional"),
    Section("42348-3", "Advance directives", f"{EHDSI}.2.16", "narrative"),
)
BY_CODE = {s.code: s for s in SECTIONS}
REQUIRED = ("11450-4", "48765-2", "10160-0")  # IPS Composition: Problems, Allergies, Medications are 1..1

# Entry templateIds written for each CDA entry (eHDSI PS L3 entry templates).
T_MEDICATION = f"{EHDSI}.3.4"
T_PRODUCT = f"{EHDSI}.3.31"
T_MATERIAL = f"{EHDSI}.3.32"
T_ALLERGY_CONCERN = f"{EHDSI}.3.16"
T_ALLERGY = f"{EHDSI}.3.17"
T_REACTION = f"{EHDSI}.3.44"
T_PROBLEM_CONCERN = f"{EHDSI}.3.15"
T_PROBLEM = f"{EHDSI}.3.7"
T_PROCEDURE = f"{EHDSI}.3.26"
T_DEVICE = f"{EHDSI}.3.5"
T_IMMUNIZATION = f"{EHDSI}.3.19"
T_VACCINE = f"{EHDSI}.3.18"
T_RESULT = f"{EHDSI}.3.43"
T_RESULT_ORGANIZER = f"{EHDSI}.3.42"
T_BLOOD_GROUP = f"{EHDSI}.3.25"
T_VITAL_ORGANIZER = f"{EHDSI}.3.21"
T_VITAL = f"{EHDSI}.3.22"
T_PREGNANCY = f"{EHDSI}.3.45"
T_SOCIAL = f"{EHDSI}.3.23"
T_SIMPLE_OBS = f"{EHDSI}.3.20"

CONFIDENTIALITY = frozenset({"U", "L", "M", "N", "R", "V"})  # HL7 v3 Confidentiality (R4 binding, required)
# HL7 v3 ObservationInterpretation (THO, the codes R4's observation-interpretation value set holds)
INTERPRETATION = frozenset({
    "_GeneticObservationInterpretation", "CAR", "Carrier", "B", "D", "U", "W", "<", ">", "AC", "IE", "QCF", "TOX",
    "A", "AA", "HH", "LL", "H", "H>", "HU", "L", "L<", "LU", "N", "I", "MS", "NCL", "NS", "R", "SDD", "S", "VS",
    "EX", "HX", "LX", "HM", "ObservationInterpretationDetection", "IND", "E", "NEG", "ND", "POS", "DET", "EXP",
    "ReactivityObservationInterpretation", "NR", "RR", "WR", "UNE", "OBX"})
# Code systems: OID (CDA @codeSystem) → FHIR system URI. Several OIDs may name one system (ICD-10 as eHDSI ships it).
_SYSTEMS = {
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.73": "http://www.whocc.no/atc",
    "2.16.840.1.113883.6.3": "http://hl7.org/fhir/sid/icd-10",
    "2.16.840.1.113883.6.90": "http://hl7.org/fhir/sid/icd-10-cm",
    "2.16.840.1.113883.6.8": "http://unitsofmeasure.org",
    "2.16.840.1.113883.6.88": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "2.16.840.1.113883.6.254": "http://hl7.org/fhir/sid/icf",  # ICF (functioning and disability)
    "0.4.0.127.0.16.1.1.2.1": "http://standardterms.edqm.eu",
    "1.0.3166.1.2.2": "urn:iso:std:iso:3166",
    "2.16.840.1.113883.5.1": "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender",
    "2.16.840.1.113883.5.4": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "2.16.840.1.113883.5.6": "http://terminology.hl7.org/CodeSystem/v3-ActClass",
    "2.16.840.1.113883.5.25": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
    "2.16.840.1.113883.5.83": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    "2.16.840.1.113883.5.111": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
    "2.16.840.1.113883.5.139": "http://terminology.hl7.org/CodeSystem/v3-TimingEvent",
    "2.16.840.1.113883.5.1063": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "2.16.840.1.113883.4.642.4.130": "http://hl7.org/fhir/allergy-intolerance-criticality",
    "2.16.840.1.113883.4.642.4.1371": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
    "2.16.840.1.113883.4.642.4.1373": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
    "2.16.840.1.113883.4.642.4.1074": "http://terminology.hl7.org/CodeSystem/condition-clinical",
    "2.16.840.1.113883.4.642.4.1075": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    "2.16.840.1.113883.4.642.4.136": "http://hl7.org/fhir/reaction-event-severity",
    "2.16.840.1.113883.4.642.4.132": "http://hl7.org/fhir/allergy-intolerance-type",
    "2.16.840.1.113883.4.642.1.1125": "http://terminology.hl7.org/CodeSystem/observation-category",
    "2.16.840.1.113883.5.2": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
    "2.16.840.1.113883.5.110": "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
    "2.16.840.1.113883.5.112": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
    "2.16.840.1.113883.18.220": "http://terminology.hl7.org/CodeSystem/v2-0360",
    "2.16.840.1.113883.5.1070": "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution",
    "2.16.840.1.113883.12.292": "http://hl7.org/fhir/sid/cvx",
    "2.16.840.1.113883.6.43.1": "http://terminology.hl7.org/CodeSystem/icd-o-3",
}
# Other OIDs read as the same system: eHDSI's ICD-10 (MVC) and the THO identifiers of the FHIR code systems that
# eHDSI documents write with their R4-core OIDs (2.16.840.1.113883.4.642.4.n).
_ALIASES = {"1.3.6.1.4.1.12559.11.10.1.3.1.44.2": "http://hl7.org/fhir/sid/icd-10",
            "2.16.840.1.113883.4.642.1.1074": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "2.16.840.1.113883.4.642.1.1075": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "2.16.840.1.113883.4.642.1.1373": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "2.16.840.1.113883.4.642.1.1371": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"}
_OIDS = {uri: oid for oid, uri in _SYSTEMS.items()}


def system_uri(oid: str) -> str:
    """The FHIR system for a CDA codeSystem OID; an OID with no known URI is kept as urn:oid: (R4 §2.1.0.5.1)."""
    return _SYSTEMS.get(oid) or _ALIASES.get(oid) or f"urn:oid:{oid}"


def system_oid(uri: str) -> str:
    """The CDA codeSystem OID for a FHIR system; '' when there is none (a URI that is not urn:oid: and not known)."""
    if uri.startswith("urn:oid:"):
        return uri[8:]
    return _OIDS.get(uri, "")


def id_system(root: str) -> str:
    """The FHIR identifier system for an II root (an OID, or a UUID); R4 datatypes.html#Identifier."""
    if root.count("-") == 4 and len(root) == 36:
        return f"urn:uuid:{root.lower()}"
    return f"urn:oid:{root}"


def id_root(system: str) -> str:
    """The II root for an identifier system ('' when it is a URL with no OID form)."""
    for prefix in ("urn:oid:", "urn:uuid:"):
        if system.startswith(prefix):
            return system[len(prefix):]
    return system_oid(system)
