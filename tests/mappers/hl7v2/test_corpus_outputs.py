"""The public ORU^R01 samples of the hl7v2 corpus (Microsoft FHIR-Converter, Google HDH; located by tests/corpora.py)
convert to Bundles that validate with 0 errors, the same bytes each time; those that cannot be converted are refused
with a MappingError saying why. Four of them used to give invalid FHIR (`urn:id:` systems with spaces, identifier
types outside table 0203, a reference pointer as an Observation value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.exceptions import MappingError
from mappers.hl7v2 import parse_message, to_fhir
from tests import corpora


def _orus(folder: Path) -> list[Path]:
    files = [*sorted(folder.glob("microsoft-fhir-converter/*.hl7")), *sorted(folder.glob("google-hdh/*.hl7"))]
    return [p for p in files if parse_message(p.read_bytes()).message_type.startswith("ORU")]


ORUS = corpora.params("hl7v2", _orus)


@corpora.needs("hl7v2")
def test_there_are_oru_samples() -> None:
    assert len(ORUS) >= 8


@pytest.mark.parametrize("path", ORUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_oru_sample_converts_to_valid_fhir(validator: Any, path: Path) -> None:
    data = path.read_bytes()
    try:
        conv = to_fhir(data)
    except MappingError as e:
        assert e.issues[0].message and e.issues[0].details.startswith("hl7v2-")
        return
    assert orjson.dumps(to_fhir(data).bundle) == orjson.dumps(conv.bundle)
    errors = [(i.expression, i.message) for i in validator.validate(conv.bundle) if i.severity in ("error", "fatal")]
    assert errors == []


GENOMIC_OBX = corpora.params("hl7v2", lambda d: sorted((d / "genomics").glob("expected_*.txt")))


@pytest.mark.parametrize("path", GENOMIC_OBX, ids=lambda p: p.stem)
def test_vcf2hl7v2_obx_sets_convert_to_valid_fhir(validator: Any, path: Path) -> None:
    """vcf2hl7v2's genomic OBX sets, wrapped in a minimal ORU^R01 (as test_corpus.py does)."""
    obx = [ln for ln in path.read_text().splitlines() if ln.startswith("OBX|")]
    message = "\r".join([
        "MSH|^~\\&|VCF2HL7V2|LAB|HELIXGATE|HOSP|20221109120000+0000||ORU^R01^ORU_R01|CORPUS-1|P|2.5.1",
        "PID|1||HG00628^^^LAB^MR||Doe^Jane",
        "OBR|1||F1|81247-9^Master HL7 genetic variant reporting panel^LN",
        *obx, ""]).encode()
    conv = to_fhir(message)
    assert orjson.dumps(to_fhir(message).bundle) == orjson.dumps(conv.bundle)
    errors = [(i.expression, i.message) for i in validator.validate(conv.bundle) if i.severity in ("error", "fatal")]
    assert errors == []
