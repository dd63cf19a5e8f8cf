"""URIs, OIDs and extension URLs the China mappers use, in one place.

OID-rooted Chinese identifiers and code systems become `urn:oid:<OID>` (the CDA root itself), so a round trip
back to CDA recovers the root exactly. Where no OID or published canonical exists, helixgate mints a URI in its
own documented namespace `urn:helixgate:cn:` (ext: extensions, cs: code systems, local: per-organisation codes).
The HL7 China canonicals are unstable between editions (national-formats.md §4), so none is hard-coded here.
"""

from __future__ import annotations

# --- China OIDs (WS/T 500 templates; national-formats.md §1.3, §3.1) ---
OID_PREFIX = "2.16.156.10011"
OID_DOC_ID = "2.16.156.10011.1.1"
OID_RESIDENT_ID = "2.16.156.10011.1.3"
OID_PRACTITIONER = "2.16.156.10011.1.4"
OID_ORGANIZATION = "2.16.156.10011.1.5"
OID_AUTHOR = "2.16.156.10011.1.7"
OID_SPECIMEN_NO = "2.16.156.10011.1.14"
OID_ORDER_NO = "2.16.156.10011.1.24"
OID_ROOM, OID_BED, OID_DEPT, OID_WARD = ("2.16.156.10011.1.21", "2.16.156.10011.1.22", "2.16.156.10011.1.26",
                                         "2.16.156.10011.1.27")
OID_DE = "2.16.156.10011.2.2.1"  # WS 363 data-element catalogue
OID_DOC_TYPE = "2.16.156.10011.2.4"  # shared-document type codes C0001..C0053
OID_PATIENT_TYPE = "2.16.156.10011.2.3.1.271"
OID_RESULT_CODE = "2.16.156.10011.2.3.2.38"  # 检查/检验结果代码表 (values unverified)
OID_COUNTRY = "2.16.156.10011.2.3.3.1"  # GB/T 2659
OID_ETHNICITY = "2.16.156.10011.2.3.3.3"  # GB 3304
OID_SEX = "2.16.156.10011.2.3.3.4"  # GB/T 2261.1
OID_MARITAL = "2.16.156.10011.2.3.3.5"  # GB/T 2261.2
OID_ICD10_CN = "2.16.156.10011.2.3.3.11"  # national clinical edition, not WHO ICD-10
OID_ID_DOC_TYPE = "2.16.156.10011.2.3.1.1"  # CV02.01.101
OID_LOINC = "2.16.840.1.113883.6.1"
OID_UCUM = "2.16.840.1.113883.6.8"
OID_INTERPRETATION = "2.16.840.1.113883.5.83"
OID_CONFIDENTIALITY = "2.16.840.1.113883.5.25"
CDA_TYPE_ID = "2.16.840.1.113883.1.3"

# --- FHIR systems ---
RESIDENT_ID_SYSTEM = f"urn:oid:{OID_RESIDENT_ID}"
DE_SYSTEM = f"urn:oid:{OID_DE}"
DOC_TYPE_SYSTEM = f"urn:oid:{OID_DOC_TYPE}"
SEX_SYSTEM = f"urn:oid:{OID_SEX}"
ETHNICITY_SYSTEM = f"urn:oid:{OID_ETHNICITY}"
COUNTRY_SYSTEM = f"urn:oid:{OID_COUNTRY}"
ICD10_CN_SYSTEM = f"urn:oid:{OID_ICD10_CN}"
ID_DOC_TYPE_SYSTEM = f"urn:oid:{OID_ID_DOC_TYPE}"
RESULT_CODE_SYSTEM = f"urn:oid:{OID_RESULT_CODE}"
PATIENT_TYPE_SYSTEM = f"urn:oid:{OID_PATIENT_TYPE}"
ICD10_WHO = "http://hl7.org/fhir/sid/icd-10"
ISO3166 = "urn:iso:std:iso:3166"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
NATIONALITY_EXT = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
DR_NOTE_EXT = "http://hl7.org/fhir/5.0/StructureDefinition/extension-DiagnosticReport.note"

# --- helixgate namespace (minted; documented in README "China national formats") ---
NS = "urn:helixgate:cn:"
EXT_ETHNIC_GROUP = NS + "ext:ethnic-group"  # valueCoding, GB 3304 (numeric; letter code as a second coding)
EXT_GB_SEX = NS + "ext:gbt-2261.1-sex"  # valueCoding, the original GB/T 2261.1 code beside Patient.gender
EXT_AGE = NS + "ext:age"  # valueAge, the document's stated age (the lab template has no birth time)
EXT_DERIVED = NS + "ext:derived-from-resident-id"  # on _birthDate/_gender: the value came from the ID number
EXT_ADDRESS_PART = NS + "ext:address-part"  # on _line[n]: the DE02.01.009.0n the line came from
GB3304_LETTER_SYSTEM = NS + "cs:gb-3304-letter"


# WS 445 address parts (DE02.01.009.0n) ⇄ CDA addr parts (ADXP).
ADDRESS_PARTS = (("DE02.01.009.01", "state"), ("DE02.01.009.02", "city"), ("DE02.01.009.03", "county"),
                 ("DE02.01.009.04", "precinct"), ("DE02.01.009.05", "streetName"), ("DE02.01.009.06", "houseNumber"))

# Code systems with a canonical FHIR URI as well as an OID: written to CDA by OID, read back to the URI.
KNOWN_OIDS = {OID_LOINC: LOINC, OID_UCUM: UCUM, "2.16.840.1.113883.6.96": "http://snomed.info/sct",
              "2.16.840.1.113883.6.3": ICD10_WHO, OID_INTERPRETATION: V3_INTERPRETATION}
_KNOWN_URIS = {v: k for k, v in KNOWN_OIDS.items()}
# Aliases other implementers use for the resident ID system (HL7 China connectathon IG, unverified OID branch).
RESIDENT_ID_ALIASES = {RESIDENT_ID_SYSTEM, "urn:oid:2.16.840.1.113883.2.23.1.19.1"}


def oid_system(oid: str) -> str:
    """The FHIR system for an OID: its canonical URI when FHIR has one, else urn:oid:<OID>."""
    return KNOWN_OIDS.get(oid, f"urn:oid:{oid}")


def system_oid(system: str) -> str | None:
    """The OID for a FHIR system (urn:oid:…, or a known canonical URI), else None."""
    if system.startswith("urn:oid:"):
        return system[8:]
    return _KNOWN_URIS.get(system)


def local_system(org_code: str, kind: str) -> str:
    """A per-organisation system for local codes that arrive without a code system (e.g. lab item codes)."""
    return f"{NS}local:{org_code or 'unknown'}:{kind}"
