"""The IPS 2.0.0 Composition sections (Composition-uv-ips slices), what goes in each, and the IPS profile of each
resource type. Section codes are LOINC, as the profile fixes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IPS = "http://hl7.org/fhir/uv/ips/StructureDefinition/"
LOINC = "http://loinc.org"


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    code: str
    display: str
    title: str
    required: bool = False  # 1..1 in Composition-uv-ips: present with entries or an emptyReason
    empty_text: str = ""


PROBLEMS = Section("problems", "11450-4", "Problem list - Reported", "Problem List", True,
                   "There is no information available about the subject's health problems or disabilities.")
ALLERGIES = Section("allergies", "48765-2", "Allergies and adverse reactions Document", "Allergies and Intolerances",
                    True, "There is no information available regarding the subject's allergies.")
MEDICATIONS = Section("medications", "10160-0", "History of Medication use Narrative", "Medication Summary", True,
                      "There is no information available about the subject's medication use or administration.")
IMMUNIZATIONS = Section("immunizations", "11369-6", "History of Immunization note", "Immunizations")
RESULTS = Section("results", "30954-2", "Relevant diagnostic tests/laboratory data Narrative", "Results")
PROCEDURES = Section("procedures", "47519-4", "History of Procedures Document", "History of Procedures")
DEVICES = Section("devices", "46264-8", "History of medical device use", "Medical Devices")
ALERTS = Section("alerts", "104605-1", "Alert", "Alerts")
PLAN = Section("plan", "18776-5", "Plan of care note", "Plan of Care")
SOCIAL = Section("social", "29762-2", "Social history note", "Social History")
VITALS = Section("vitals", "8716-3", "Vital signs note", "Vital Signs")
PREGNANCY = Section("pregnancy", "10162-6", "History of pregnancies Narrative", "History of Pregnancy")
ADVANCE = Section("advance", "42348-3", "Advance healthcare directives", "Advance Directives")

ORDER = (PROBLEMS, ALLERGIES, MEDICATIONS, IMMUNIZATIONS, RESULTS, PROCEDURES, DEVICES, ALERTS, PLAN, SOCIAL,
         VITALS, PREGNANCY, ADVANCE)

# resource type → section its instances are entries of (Observations are sorted by category: observation_section)
BY_TYPE = {
    "Condition": PROBLEMS, "AllergyIntolerance": ALLERGIES, "MedicationStatement": MEDICATIONS,
    "MedicationRequest": MEDICATIONS, "Immunization": IMMUNIZATIONS, "DiagnosticReport": RESULTS,
    "Procedure": PROCEDURES, "DeviceUseStatement": DEVICES, "Flag": ALERTS, "CarePlan": PLAN,
    "ImmunizationRecommendation": PLAN, "Consent": ADVANCE,
}

# resource type → its IPS profile (Bundle-uv-ips entry slices); Observations by kind (observation_profile)
PROFILE = {
    "Patient": IPS + "Patient-uv-ips", "Organization": IPS + "Organization-uv-ips",
    "Practitioner": IPS + "Practitioner-uv-ips", "PractitionerRole": IPS + "PractitionerRole-uv-ips",
    "DiagnosticReport": IPS + "DiagnosticReport-uv-ips", "Specimen": IPS + "Specimen-uv-ips",
    "Condition": IPS + "Condition-uv-ips", "AllergyIntolerance": IPS + "AllergyIntolerance-uv-ips",
    "MedicationStatement": IPS + "MedicationStatement-uv-ips", "MedicationRequest": IPS + "MedicationRequest-uv-ips",
    "Medication": IPS + "Medication-uv-ips", "Immunization": IPS + "Immunization-uv-ips",
    "Procedure": IPS + "Procedure-uv-ips", "DeviceUseStatement": IPS + "DeviceUseStatement-uv-ips",
    "Flag": IPS + "Flag-alert-uv-ips",
}
LAB = IPS + "Observation-results-laboratory-pathology-uv-ips"
RADIOLOGY = IPS + "Observation-results-radiology-uv-ips"
VITALSIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def categories(res: dict[str, Any]) -> set[str]:
    return {c.get("code") for cc in res.get("category") or [] if isinstance(cc, dict)
            for c in cc.get("coding") or [] if isinstance(c, dict) and c.get("system") == CATEGORY}


def observation_section(res: dict[str, Any]) -> Section:
    cats = categories(res)
    if "vital-signs" in cats:
        return VITALS
    if "social-history" in cats:
        return SOCIAL
    return RESULTS


def section_code(section: Section) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": section.code, "display": section.display}]}
