"""FHIR R4 JSON, the hub every other format converts through."""
