"""HL7 Europe Laboratory Report 2.0.0 documents written from FHIR (format `eu-lab`)."""
