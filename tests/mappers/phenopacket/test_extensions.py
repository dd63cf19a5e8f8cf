"""The mapper's extensions: each URL it writes has its StructureDefinition in profiles/local, the same as
mappers.phenopacket.extensions writes it, and the validator applies it (a wrong value type is an error)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mappers.phenopacket import extensions
from mappers.phenopacket.systems import EXT
from tests.conftest import ROOT

SOURCES = sorted((ROOT / "mappers" / "phenopacket").glob("*.py"))


def test_the_local_definitions_are_the_generated_ones() -> None:
    for name in extensions.names():
        assert extensions.path(name).read_text("utf-8") == extensions.text(name), name
    written = {p.name for p in extensions.LOCAL.glob("StructureDefinition-phenopacket-*.json")}
    assert written == {extensions.path(n).name for n in extensions.names()}


def test_every_extension_the_mapper_writes_is_defined() -> None:
    used = set()
    for source in SOURCES:
        text = Path(source).read_text("utf-8")
        used |= set(re.findall(r'ext\("([a-z-]+)"', text))
    assert used and used <= set(extensions.EXTENSIONS)
    by_url = set(re.findall(r'EXT \+ "([a-z-]+)"', (ROOT / "mappers" / "phenopacket" / "to_fhir.py").read_text()))
    assert by_url <= set(extensions.names())


def test_a_map_entry_needs_its_key_and_value(validator: Any) -> None:
    def doc(parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"resourceType": "DocumentReference", "id": "d", "status": "current",
                "content": [{"attachment": {"url": "file:///x.vcf"}}],
                "extension": [{"url": EXT + "file-attribute", "extension": parts}]}

    key, value = {"url": "key", "valueString": "genomeAssembly"}, {"url": "value", "valueString": "GRCh38"}
    assert [i for i in validator.validate(doc([key, value])) if i.severity == "error"] == []
    assert [i for i in validator.validate(doc([key])) if i.severity == "error"]
    assert [i for i in validator.validate(doc([key, value, {"url": "other", "valueString": "x"}]))
            if i.severity == "error"]


def test_the_validator_checks_the_value_type(validator: Any) -> None:
    patient = {"resourceType": "Patient", "id": "p", "extension": [{"url": EXT + "karyotypic-sex", "valueCode": "XX"}]}
    assert [i for i in validator.validate(patient) if i.severity == "error"] == []
    patient["extension"][0] = {"url": EXT + "karyotypic-sex", "valueBoolean": True}
    assert [i for i in validator.validate(patient) if i.severity == "error"]
