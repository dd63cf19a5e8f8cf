"""Every phenopacket of the corpus (phenopacket-store and the schema's own test data) → FHIR as the edge converts
it (the registry's `phenopacket` format): 0 validation errors against R4 and the Genomics Reporting IG, nothing
reported as not mapped, and back to a phenopacket the official package reads that equals the input's canonical JSON
(every field carried). The expected values are the corpus files themselves, read with the official package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.phenopacket import schema
from mappers.toolkit.registry import ConvertOptions, get
from tests import corpora

pytestmark = corpora.needs("phenopackets")
CORPUS = "phenopackets"


def files() -> list[Path]:
    return sorted(corpora.corpus(CORPUS).glob("*.json"))


def test_the_corpus_is_all_there() -> None:
    assert len(files()) == 361  # 360 phenopacket-store cases and the schema's covid19 example (corpus README)


def test_every_file_converts_valid_and_round_trips(validator: Any) -> None:
    fmt = get("phenopacket")
    assert fmt.to_fhir is not None and fmt.from_fhir is not None
    problems: list[str] = []
    for path in files():
        data = path.read_bytes()
        conv = fmt.to_fhir(data, ConvertOptions())
        errors = [f"{i.expression}: {i.message}" for i in validator.validate(conv.bundle)
                  if i.severity in ("error", "fatal")]
        if errors:
            problems.append(f"{path.name}: {errors[:3]}")
        unmapped = [i.message for i in conv.issues if i.details == "phenopacket-field-not-mapped"]
        if unmapped:
            problems.append(f"{path.name}: not mapped {unmapped[:3]}")
        back = fmt.from_fhir(conv.bundle, ConvertOptions())
        if fmt.check_output and fmt.check_output(back.data):
            problems.append(f"{path.name}: the written phenopacket fails the official schema")
        if orjson.loads(back.data) != schema.read(data).doc:
            problems.append(f"{path.name}: the round trip differs")
    assert problems == []


@pytest.mark.parametrize("name", ["ABCA4__PMID_10874631_II_2.json", "schema__covid19.json"])
def test_the_same_input_gives_the_same_bytes(name: str) -> None:
    data = (corpora.corpus(CORPUS) / name).read_bytes()
    fmt = get("phenopacket")
    assert fmt.to_fhir is not None
    first, second = fmt.to_fhir(data, ConvertOptions()), fmt.to_fhir(data, ConvertOptions())
    assert orjson.dumps(first.bundle) == orjson.dumps(second.bundle)
    assert fmt.from_fhir is not None
    assert fmt.from_fhir(first.bundle, ConvertOptions()).data == fmt.from_fhir(second.bundle, ConvertOptions()).data
