"""China national formats: WS/T 500-2016 shared documents (CDA R2) ⇄ FHIR R4, lab (C0007) and exam (C0006) reports.

parse (safe XML → Report model) → emit (Report → FHIR); read_fhir (Bundle → Report) → write (Report → CDA).
The WS 445 dataset mapper (mappers.ws445) shares the model and both FHIR steps.
"""

from mappers.cda_cn.context import Options
from mappers.cda_cn.from_fhir import CdaDocument, from_fhir
from mappers.cda_cn.model import Report
from mappers.cda_cn.resident_id import ResidentId, ResidentIdError, parse_resident_id
from mappers.cda_cn.safexml import parse_xml
from mappers.cda_cn.to_fhir import Conversion, to_fhir
from mappers.cda_cn.validate import check

__all__ = [
    "CdaDocument",
    "Conversion",
    "Options",
    "Report",
    "ResidentId",
    "ResidentIdError",
    "check",
    "from_fhir",
    "parse_resident_id",
    "parse_xml",
    "to_fhir",
]
