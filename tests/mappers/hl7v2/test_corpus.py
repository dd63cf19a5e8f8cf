"""The third-party hl7v2 corpus (located by tests/corpora.py): every HL7 v2 sample converts or is refused with a
clear error, and vcf2hl7v2's genomic OBX sets (wrapped in a minimal ORU^R01) give one Variant per OBX-4 group."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mappers.exceptions import UnsupportedMessage
from mappers.hl7v2 import parse_message, to_fhir
from tests import corpora
from tests.mappers.hl7v2.facts import has_profile, resources

SAMPLES = corpora.params("hl7v2", lambda d: [*sorted(d.glob("microsoft-fhir-converter/*.hl7")),
                                             *sorted(d.glob("google-hdh/*.hl7"))])
GENOMIC_OBX = corpora.params("hl7v2", lambda d: sorted((d / "genomics").glob("expected_*.txt")))


@corpora.needs("hl7v2")
def test_corpus_is_present() -> None:
    assert len(SAMPLES) >= 150, f"expected the HL7 v2 samples under {corpora.location('hl7v2')}"
    assert len(GENOMIC_OBX) >= 5


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_converts_or_is_refused_clearly(path: Path) -> None:
    data = path.read_bytes()
    msg = parse_message(data)
    if msg.message_type.startswith("ORU"):
        conv = to_fhir(data)
        assert resources(conv.bundle, "DiagnosticReport")
        assert conv.outcome["resourceType"] == "OperationOutcome"
    else:
        with pytest.raises(UnsupportedMessage, match="unsupported message type"):
            to_fhir(data)


@pytest.mark.parametrize("path", GENOMIC_OBX, ids=lambda p: p.stem)
def test_vcf2hl7v2_obx_sets_map_one_variant_per_group(path: Path) -> None:
    obx = [ln for ln in path.read_text().splitlines() if ln.startswith("OBX|")]
    message = "\r".join([
        "MSH|^~\\&|VCF2HL7V2|LAB|HELIXGATE|HOSP|20221109120000+0000||ORU^R01^ORU_R01|CORPUS-1|P|2.5.1",
        "PID|1||HG00628^^^LAB^MR||Doe^Jane",
        "OBR|1||F1|81247-9^Master HL7 genetic variant reporting panel^LN",
        *obx, ""])
    conv = to_fhir(message.encode())
    groups = {m.group(1) for ln in obx if (m := re.match(r"OBX\|[^|]*\|[^|]*\|[^|]*\|(2[a-z]+)", ln))}
    variants = [o for o in resources(conv.bundle, "Observation") if has_profile(o, "variant")]
    assert len(variants) == len(groups) > 0
    for var in variants:  # each carries its positions and alleles
        codes = {c["code"]["coding"][0]["code"] for c in var["component"]}
        assert {"81254-5", "69551-0"} <= codes
