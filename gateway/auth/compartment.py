"""The Patient compartment (FHIR R4 CompartmentDefinition/patient), as patient/ scopes enforce it.

For each resource type in the compartment: the search parameter that narrows a search to one patient, and the
element that parameter reads (from the R4 SearchParameter's expression), used to check a written resource. Where the
compartment lists several parameters (Observation: subject, performer), the gateway uses one — preferring patient,
subject, beneficiary, individual — which is a subset of the compartment and so errs on the side of less access.
Types outside the compartment are not reachable with patient/ scopes.
"""

from __future__ import annotations

from typing import Any

# type → (search parameter, element path); generated from hl7.fhir.r4.core 4.0.1 (CompartmentDefinition-patient and
# the SearchParameter expressions, `.where(resolve() is Patient)` dropped: a reference to Patient/{id} is checked).
COMPARTMENT: dict[str, tuple[str, str]] = {
    "Account": ("subject", "subject"), "AdverseEvent": ("subject", "subject"),
    "AllergyIntolerance": ("patient", "patient"), "Appointment": ("actor", "participant.actor"),
    "AppointmentResponse": ("actor", "actor"), "AuditEvent": ("patient", "agent.who"),
    "Basic": ("patient", "subject"), "BodyStructure": ("patient", "patient"), "CarePlan": ("patient", "subject"),
    "CareTeam": ("patient", "subject"), "ChargeItem": ("subject", "subject"), "Claim": ("patient", "patient"),
    "ClaimResponse": ("patient", "patient"), "ClinicalImpression": ("subject", "subject"),
    "Communication": ("subject", "subject"), "CommunicationRequest": ("subject", "subject"),
    "Composition": ("subject", "subject"), "Condition": ("patient", "subject"), "Consent": ("patient", "patient"),
    "Coverage": ("beneficiary", "beneficiary"), "CoverageEligibilityRequest": ("patient", "patient"),
    "CoverageEligibilityResponse": ("patient", "patient"), "DetectedIssue": ("patient", "patient"),
    "DeviceRequest": ("subject", "subject"), "DeviceUseStatement": ("subject", "subject"),
    "DiagnosticReport": ("subject", "subject"), "DocumentManifest": ("subject", "subject"),
    "DocumentReference": ("subject", "subject"), "Encounter": ("patient", "subject"),
    "EnrollmentRequest": ("subject", "candidate"), "EpisodeOfCare": ("patient", "patient"),
    "ExplanationOfBenefit": ("patient", "patient"), "FamilyMemberHistory": ("patient", "patient"),
    "Flag": ("patient", "subject"), "Goal": ("patient", "subject"), "Group": ("member", "member.entity"),
    "ImagingStudy": ("patient", "subject"), "Immunization": ("patient", "patient"),
    "ImmunizationEvaluation": ("patient", "patient"), "ImmunizationRecommendation": ("patient", "patient"),
    "Invoice": ("patient", "subject"), "List": ("subject", "subject"), "MeasureReport": ("patient", "subject"),
    "Media": ("subject", "subject"), "MedicationAdministration": ("patient", "subject"),
    "MedicationDispense": ("patient", "subject"), "MedicationRequest": ("subject", "subject"),
    "MedicationStatement": ("subject", "subject"), "MolecularSequence": ("patient", "patient"),
    "NutritionOrder": ("patient", "patient"), "Observation": ("subject", "subject"),
    "Person": ("patient", "link.target"), "Procedure": ("patient", "subject"), "Provenance": ("patient", "target"),
    "QuestionnaireResponse": ("subject", "subject"), "RelatedPerson": ("patient", "patient"),
    "RequestGroup": ("subject", "subject"), "ResearchSubject": ("individual", "individual"),
    "RiskAssessment": ("subject", "subject"), "Schedule": ("actor", "actor"),
    "ServiceRequest": ("subject", "subject"), "Specimen": ("subject", "subject"),
    "SupplyDelivery": ("patient", "patient"), "SupplyRequest": ("subject", "deliverTo"),
    "VisionPrescription": ("patient", "patient"),

}


def in_compartment(rtype: str) -> bool:
    return rtype == "Patient" or rtype in COMPARTMENT


def narrowing(rtype: str, patient: str) -> tuple[str, str] | None:
    """The search parameter that keeps a search of `rtype` within `patient`'s compartment."""
    if rtype == "Patient":
        return ("_id", patient)
    found = COMPARTMENT.get(rtype)
    return (found[0], f"Patient/{patient}") if found else None


def references_patient(resource: Any, patient: str) -> bool:
    """Whether a resource belongs to `patient`'s compartment by the element the gateway checks (a Patient: its id)."""
    if not isinstance(resource, dict):
        return False
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return resource.get("id") == patient
    found = COMPARTMENT.get(rtype) if isinstance(rtype, str) else None
    if not found:
        return False
    wanted = f"Patient/{patient}"
    return any(_reference_is(ref, wanted) for ref in _walk(resource, found[1].split(".")))


def _walk(node: Any, path: list[str]) -> list[Any]:
    nodes = [node]
    for name in path:
        nxt: list[Any] = []
        for n in nodes:
            value = n.get(name) if isinstance(n, dict) else None
            nxt.extend(value if isinstance(value, list) else [value] if value is not None else [])
        nodes = nxt
    return nodes


def _reference_is(ref: Any, wanted: str) -> bool:
    """A relative Reference to `wanted` ('Patient/123', or a version of it). An absolute URL may name another
    server's Patient/123, which is not this patient: it does not count."""
    if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
        return False
    return ref["reference"].split("/_history/", 1)[0] == wanted
