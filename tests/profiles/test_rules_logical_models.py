"""StructureDefinition type rules for logical models and specialisations, on the fhir-test-cases inputs and an
inline definition."""

from __future__ import annotations

import pytest

from profiles.definitions import Definitions
from profiles.validator import Validator
from profiles.xml import xml_to_json
from tests.profiles import corpus


@pytest.fixture(scope="module")
def v(validator) -> Validator:  # type: ignore[no-untyped-def]
    foo = xml_to_json(corpus.case_file("logical-foo.xml").read_bytes(), None)
    return Validator(Definitions([*validator.defs.structures.values(), foo]))


def _errors(v: Validator, name: str) -> list[tuple[str, str]]:
    res = xml_to_json(corpus.case_file(name).read_bytes(), None)
    return [(i.expression or "", i.message) for i in v.validate(res) if i.severity == "error"]


def test_a_logical_model_that_specialises_another(v: Validator) -> None:
    assert _errors(v, "logical-boo-good.xml") == []


def test_a_logical_type_needs_a_namespace(v: Validator) -> None:
    assert _errors(v, "logical-boo-bad1.xml") == [
        ("StructureDefinition.type", "The type Boo is not legal because it is not defined in the FHIR specification. "
                                     "Other types must have a namespace on them")]


def test_a_specialisation_defines_a_new_type_and_paths_start_with_it(v: Validator) -> None:
    errors = _errors(v, "logical-boo-bad2.xml")
    assert errors[0][0] == "StructureDefinition" and "must not be the same as the type in the base" in errors[0][1]
    assert [e for e, _ in errors[1:]] == [
        "StructureDefinition.differential.element[0]", "StructureDefinition.differential.element[1]",
        "StructureDefinition.snapshot.element[0]", "StructureDefinition.snapshot.element[1]",
        "StructureDefinition.snapshot.element[2]"]


def test_type_namespace_other_than_the_url_is_a_warning(v: Validator) -> None:
    res = xml_to_json(corpus.case_file("logical-boo-bad3.xml").read_bytes(), None)
    issues = [(i.severity, i.expression) for i in v.validate(res) if "namespace" in i.message]
    assert issues == [("warning", "StructureDefinition.type")]
