"""The public surfaces of the China mappers (style rule 2: one public surface, guarded)."""

from __future__ import annotations

import mappers.cda_cn as cda_cn
import mappers.ws445 as ws445


def test_cda_cn_exports() -> None:
    assert cda_cn.__all__ == sorted(cda_cn.__all__)
    assert cda_cn.__all__ == ["CdaDocument", "Conversion", "Options", "Report", "ResidentId", "ResidentIdError",
                              "check", "from_fhir", "parse_resident_id", "parse_xml", "to_fhir"]
    assert all(hasattr(cda_cn, name) for name in cda_cn.__all__)


def test_ws445_exports() -> None:
    assert ws445.__all__ == ["SCHEMA_PATH", "Dataset", "from_fhir", "load", "looks_like", "schema", "to_fhir"]
    assert all(hasattr(ws445, name) for name in ws445.__all__)
