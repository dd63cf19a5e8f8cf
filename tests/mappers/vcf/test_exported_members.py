"""mappers.vcf's public surface: a sorted __all__ of names that exist."""

from __future__ import annotations

import mappers.vcf as vcf


def test_exported_members() -> None:
    assert vcf.__all__ == sorted(vcf.__all__)
    assert all(hasattr(vcf, name) for name in vcf.__all__)
    assert {"Converter", "Options", "from_fhir", "ndjson", "bundle_json", "to_fhir", "parse_bed"} <= set(vcf.__all__)
