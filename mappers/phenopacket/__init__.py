"""GA4GH Phenopackets v2 (ISO 4454:2022) ⇄ FHIR R4 with the Genomics Reporting IG 3.0.0.

Read with the official schema (the `phenopackets` package: protobuf JSON mapping); see to_fhir.py for what each
phenopacket element becomes and from_fhir.py for the way back.
"""

MAPPER_VERSION = "phenopacket/0.1.1"  # 0.1.1: FHIR dates that are no Timestamp are left out and reported, not refused
