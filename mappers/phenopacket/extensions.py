"""This mapper's extensions: phenopacket facts with no element in R4 or the Genomics Reporting IG. Each is a
StructureDefinition in profiles/local (so the validator knows it); `python -m mappers.phenopacket.extensions`
writes them from the list below, and a test keeps the two the same."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mappers.phenopacket.systems import EXT

TIME = ("Age", "Range", "Quantity", "CodeableConcept", "dateTime", "Period", "string")  # times.value's types
# name: (value types, where it is used, what it holds)
EXTENSIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "karyotypic-sex": (("code",), "Patient", "Individual.karyotypicSex (phenopacket KaryotypicSex enum)"),
    "taxonomy": (("CodeableConcept",), "Element", "Individual.taxonomy or Biosample.taxonomy (NCBITaxon)"),
    "time-at-last-encounter": (TIME, "Patient", "Individual.timeAtLastEncounter"),
    "time-of-death": (TIME, "Patient", "VitalStatus.timeOfDeath when it is not a timestamp (Patient.deceasedDateTime)"),
    "cause-of-death": (("CodeableConcept",), "Patient", "VitalStatus.causeOfDeath"),
    "survival-time-in-days": (("unsignedInt",), "Patient", "VitalStatus.survivalTimeInDays"),
    "onset": (TIME, "Condition", "Disease.onset in a form Condition.onset[x] does not take (coded, gestational)"),
    "resolution": (TIME, "Condition", "Disease.resolution in a form Condition.abatement[x] does not take"),
    "laterality": (("CodeableConcept",), "Condition", "Disease.laterality"),
    "performed": (TIME, "Procedure", "Procedure.performed in a form Procedure.performed[x] does not take"),
    "time-observed": (TIME, "Observation", "Measurement.timeObserved when it is not a timestamp or interval"),
    "time-of-collection": (TIME, "Specimen", "Biosample.timeOfCollection when it is not a timestamp or interval"),
    "material-sample": (("CodeableConcept",), "Specimen", "Biosample.materialSample"),
    "treatment-intent": (("CodeableConcept",), "Element", "MedicalAction.treatmentIntent"),
    "response-to-treatment": (("CodeableConcept",), "Element", "MedicalAction.responseToTreatment"),
    "adverse-event": (("CodeableConcept",), "Element", "MedicalAction.adverseEvents (one extension each)"),
    "radiation-dosage": (("Quantity",), "Procedure", "RadiationTherapy.dosage (the total dose, in gray)"),
    "radiation-fractions": (("integer",), "Procedure", "RadiationTherapy.fractions"),
    "progress-status": (("code",), "DiagnosticReport", "Interpretation.progressStatus (ProgressStatus enum)"),
    "interpretation-status": (("code",), "Observation",
                              "GenomicInterpretation.interpretationStatus (InterpretationStatus enum)"),
    "therapeutic-actionability": (("code",), "Observation",
                                  "VariantInterpretation.therapeuticActionability (TherapeuticActionability enum)"),
    "subject-or-biosample-id": (("string",), "Observation",
                                "GenomicInterpretation.subjectOrBiosampleId naming neither subject nor biosample"),
    "schema-version": (("string",), "Provenance.entity", "MetaData.phenopacketSchemaVersion"),
    "resource-url": (("uri",), "Provenance.entity", "MetaData.resources.url"),
    "resource-version": (("string",), "Provenance.entity", "MetaData.resources.version"),
    "namespace-prefix": (("string",), "Provenance.entity", "MetaData.resources.namespacePrefix"),
    "iri-prefix": (("string",), "Provenance.entity", "MetaData.resources.iriPrefix"),
    "reference": (("string",), "Element", "ExternalReference.reference (metaData.externalReferences, evidence)"),
    "external-reference-id": (("string",), "Element", "ExternalReference.id of a phenotype's evidence"),
    "external-reference-description": (("string",), "Element",
                                       "ExternalReference.description of a phenotype's evidence"),
}
# complex extensions: one entry of a phenopacket map<string, string>, as sub-extensions `key` and `value`
MAP_ENTRIES: dict[str, tuple[str, str]] = {
    "file-attribute": ("DocumentReference", "File.fileAttributes, one entry (key and value)"),
    "individual-to-file-identifier": ("DocumentReference",
                                      "File.individualToFileIdentifiers, one entry (the individual's or biosample's "
                                      "id as key, its id in the file as value)"),
}
LOCAL = Path(__file__).resolve().parents[2] / "profiles" / "local"


def structure_definition(name: str) -> dict[str, Any]:
    types, context, what = EXTENSIONS[name]
    url = EXT + name
    title = f"Phenopacket {what.split(' ')[0]}"
    return {
        "resourceType": "StructureDefinition", "id": f"phenopacket-{name}", "url": url, "version": "0.1.0",
        "name": "phenopacket_" + name.replace("-", "_"), "title": title, "status": "active", "experimental": False,
        "publisher": "helixgate", "description": f"GA4GH Phenopacket v2 {what}, kept by helixgate's phenopacket "
                                                 "mapper.",
        "fhirVersion": "4.0.1", "kind": "complex-type", "abstract": False,
        "context": [{"type": "element", "expression": context}], "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Extension", "path": "Extension", "short": title, "definition": what},
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1,
             "type": [{"code": t} for t in types]}]}}


def map_entry_definition(name: str) -> dict[str, Any]:
    context, what = MAP_ENTRIES[name]
    url = EXT + name
    title = f"Phenopacket {what.split(',')[0]}"
    elements: list[dict[str, Any]] = [
        {"id": "Extension", "path": "Extension", "short": title, "definition": what},
        {"id": "Extension.extension", "path": "Extension.extension", "min": 2,
         "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "closed"}}]
    for part in ("key", "value"):
        at = f"Extension.extension:{part}"
        elements += [
            {"id": at, "path": "Extension.extension", "sliceName": part, "min": 1, "max": "1",
             "short": f"the map entry's {part}", "definition": f"The map entry's {part}."},
            {"id": f"{at}.extension", "path": "Extension.extension.extension", "max": "0"},
            {"id": f"{at}.url", "path": "Extension.extension.url", "fixedUri": part},
            {"id": f"{at}.value[x]", "path": "Extension.extension.value[x]", "min": 1, "type": [{"code": "string"}]}]
    elements += [{"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
                 {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"}]
    return {
        "resourceType": "StructureDefinition", "id": f"phenopacket-{name}", "url": url, "version": "0.1.0",
        "name": "phenopacket_" + name.replace("-", "_"), "title": title, "status": "active", "experimental": False,
        "publisher": "helixgate", "description": f"GA4GH Phenopacket v2 {what}, kept by helixgate's phenopacket "
                                                 "mapper.",
        "fhirVersion": "4.0.1", "kind": "complex-type", "abstract": False,
        "context": [{"type": "element", "expression": context}], "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension", "derivation": "constraint",
        "differential": {"element": elements}}


def names() -> list[str]:
    return [*EXTENSIONS, *MAP_ENTRIES]


def text(name: str) -> str:
    sd = map_entry_definition(name) if name in MAP_ENTRIES else structure_definition(name)
    return json.dumps(sd, indent=1, ensure_ascii=False) + "\n"


def path(name: str) -> Path:
    return LOCAL / f"StructureDefinition-phenopacket-{name}.json"


if __name__ == "__main__":
    for n in names():
        path(n).write_text(text(n), "utf-8")
    sys.stdout.write(f"{len(names())} StructureDefinitions written to {LOCAL}\n")
