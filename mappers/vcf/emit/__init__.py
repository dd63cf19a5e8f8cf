"""Emitters: VCF records and options → FHIR dicts (Genomics Reporting IG 3.0.0). The variant, phase relationship and
genomic report themselves are built by the shared emitter (mappers.toolkit.genomics); VCF-only codings live here."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
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


def vcf_code(field: str) -> dict[str, Any]:
    return {"coding": [{"system": VCF_SYSTEM, "code": field}], "text": f"VCF {field}"}
