"""Emitters: VCF records and options → FHIR dicts (Genomics Reporting IG 3.0.0). Shared codings live here."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SO = "http://www.sequenceontology.org"
REFSEQ = "http://www.ncbi.nlm.nih.gov/refseq"
DBSNP = "http://www.ncbi.nlm.nih.gov/projects/SNP"
GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
# VCF fields kept verbatim on each variant so FHIR → VCF restores the record (GT, AD, DP, ...): no LOINC
# variable carries them, and the IG slices components openly by code.
VCF_SYSTEM = "urn:helixgate:vcf"
SAMPLE_SYSTEM = "urn:helixgate:vcf-sample"

CATEGORY_LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory", "display": "Laboratory"}]}
CATEGORY_GE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "GE",
                           "display": "Genetics"}]}
CATEGORIES = [CATEGORY_LAB, CATEGORY_GE]


def loinc(code: str, display: str) -> dict[str, Any]:
    """A LOINC component code, without display (as in the IG's examples): it repeats ~20 times per variant."""
    return {"coding": [{"system": LOINC, "code": code}]}


def vcf_code(field: str) -> dict[str, Any]:
    return {"coding": [{"system": VCF_SYSTEM, "code": field}], "text": f"VCF {field}"}


# Component codes (Variant profile slices).
ASSEMBLY = loinc("62374-4", "Human reference sequence assembly version")
CHROMOSOME = loinc("48000-4", "Chromosome")
GENOMIC_REF_SEQ = loinc("48013-7", "Genomic reference sequence [ID]")
COORDINATE_SYSTEM = loinc("92822-6", "Genomic coordinate system [Type]")
EXACT_START_END = loinc("81254-5", "Genomic allele start-end")
OUTER_START_END = loinc("81301-4", "Genomic structural variant outer start and end")
INNER_START_END = loinc("81302-2", "Genomic structural variant inner start and end")
REF_ALLELE = loinc("69547-8", "Genomic ref allele [ID]")
ALT_ALLELE = loinc("69551-0", "Genomic alt allele [ID]")
VARIATION_CODE = loinc("81252-9", "Discrete genetic variant")
SOURCE_CLASS = loinc("48002-0", "Genomic source class [Type]")
ALLELIC_STATE = loinc("53034-5", "Allelic state")
ALLELIC_FREQUENCY = loinc("81258-6", "Sample variant allelic frequency [NFr]")
ALLELIC_READ_DEPTH = loinc("82121-5", "Allelic read depth")
COPY_NUMBER = loinc("82155-3", "Genomic structural variant copy number")
CHANGE_TYPE = loinc("48019-4", "DNA change type")

ZERO_BASED = {"coding": [{"system": LOINC, "code": "LA30100-4", "display": "0-based interval counting"}]}
PRESENT = {"coding": [{"system": LOINC, "code": "LA9633-4", "display": "Present"}]}
SOURCE_CLASSES = {
    "germline": {"coding": [{"system": LOINC, "code": "LA6683-2", "display": "Germline"}]},
    "somatic": {"coding": [{"system": LOINC, "code": "LA6684-0", "display": "Somatic"}]},
}
ALLELIC_STATES = {
    "heteroplasmic": {"coding": [{"system": LOINC, "code": "LA6703-8", "display": "Heteroplasmic"}]},
    "homoplasmic": {"coding": [{"system": LOINC, "code": "LA6704-6", "display": "Homoplasmic"}]},
    "homozygous": {"coding": [{"system": LOINC, "code": "LA6705-3", "display": "Homozygous"}]},
    "heterozygous": {"coding": [{"system": LOINC, "code": "LA6706-1", "display": "Heterozygous"}]},
    "hemizygous": {"coding": [{"system": LOINC, "code": "LA6707-9", "display": "Hemizygous"}]},
}
