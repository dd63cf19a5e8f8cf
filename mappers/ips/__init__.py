"""HL7 International Patient Summary (IPS 2.0.0) documents written from FHIR (format `ips`)."""
