"""Rules on conformance resources themselves (profiles/rules/search_parameter.py, capability_statement.py,
structure_definition.py and the snapshot generator's refusals): the fhir-test-cases inputs with the Java
validator's verdicts, and inline resources with their valid counterparts."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.packages import closure, conformance_resources
from profiles.snapshot import SnapshotError, generate
from profiles.validator import Validator
from profiles.xml import xml_to_json
from tests.profiles import corpus

BASE = ("hl7.fhir.r4.core#4.0.1", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1")
SUPPORT = ["ext-base.json", "slice23/StructureDefinition-OtherId.json", "profile-patient-op-base.xml",
           "profile-patient-op1.xml", "profile-patient-op2.xml", "profile-patient-op2a.xml",
           "profile-repeated-type.xml"]


def read(name: str) -> dict[str, Any]:
    data = corpus.case_file(name).read_bytes()
    return xml_to_json(data, None) if name.endswith(".xml") else orjson.loads(data)


@pytest.fixture(scope="module")
def v() -> Validator:
    extra = [read(name) for name in SUPPORT]
    return Validator(Definitions([*conformance_resources(closure(BASE), CONFORMANCE_TYPES), *extra]),
                     security_checks=False)


def errors(v: Validator, res: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.expression or "", i.message) for i in v.validate(res) if i.severity in ("error", "fatal")]


def warnings(v: Validator, res: dict[str, Any], code: str) -> list[tuple[str, str]]:
    return [(i.expression or "", i.message) for i in v.validate(res) if i.severity == "warning" and i.code == code]


# --- SearchParameter -----------------------------------------------------------------------------------------------

def search_parameter(**more: Any) -> dict[str, Any]:
    sp = {"resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/org-name", "name": "OrgName",
          "status": "active", "description": "d", "code": "name", "base": ["Organization"], "type": "string",
          "expression": "Organization.name | Organization.alias",
          "derivedFrom": "http://hl7.org/fhir/SearchParameter/Organization-name"}
    sp.update(more)
    return {k: v for k, v in sp.items() if v is not None}


def test_a_derived_search_parameter_keeping_type_bases_and_expression_is_valid(v: Validator) -> None:
    assert errors(v, search_parameter()) == []
    assert warnings(v, search_parameter(), "business-rule") == []


def test_a_derived_search_parameter_cannot_change_the_type(v: Validator) -> None:
    assert errors(v, read("sp-diff-type.json")) == [
        ("SearchParameter", "The type token is different to the type string of "
                            "http://hl7.org/fhir/SearchParameter/Organization-name in the derivedFrom SearchParameter")]


def test_a_derived_search_parameter_cannot_add_bases_and_its_expression_must_fit_them(v: Validator) -> None:
    assert errors(v, read("sp-diff-base.json")) == [
        ("SearchParameter.expression", "Error in search expression 'Organization.name | Organization.alias': Error "
                                       "evaluating FHIRPath expression: The name 'Organization' is not valid for any "
                                       "of the possible types: [http://hl7.org/fhir/StructureDefinition/Patient] "
                                       "(@char 1)"),
        ("SearchParameter", "The resource type Patient is not listed as a base in the SearchParameter this is "
                            "derived from (http://hl7.org/fhir/SearchParameter/Organization-name)")]


def test_a_narrower_derived_expression_is_only_a_warning(v: Validator) -> None:
    res = read("sp-diff-expression.json")
    assert errors(v, res) == []
    assert [m for _, m in warnings(v, res, "business-rule")] == [
        "The expression 'Organization.name' is not compatible with the expression 'Organization.name | "
        "Organization.alias' in the derivedFrom SearchParameter http://hl7.org/fhir/SearchParameter/Organization-name,"
        " and this likely indicates that the derivation relationship is not valid"]


def test_an_unknown_derived_from_is_a_warning(v: Validator) -> None:
    res = search_parameter(derivedFrom="http://example.org/SearchParameter/nowhere")
    assert errors(v, res) == []
    assert warnings(v, res, "business-rule") == [
        ("SearchParameter", "The SearchParameter http://example.org/SearchParameter/nowhere could not be found")]


def test_a_multi_base_expression_naming_each_base_is_valid(v: Validator) -> None:
    res = search_parameter(derivedFrom=None, base=["Patient", "Practitioner"], code="phonetic",
                           expression="Patient.name | (Practitioner.name.where(use = 'official'))")
    assert errors(v, res) == []


def test_a_composite_search_parameter_needs_two_components(v: Validator) -> None:
    assert errors(v, read("sp-composite.json")) == [
        ("SearchParameter", "When the SearchParameter has a type of 'composite', then the SearchParameter must define "
                            "two or more components")]
    res = search_parameter(derivedFrom=None, type="composite", expression="Organization", component=[
        {"definition": "http://hl7.org/fhir/SearchParameter/Organization-name", "expression": "name"},
        {"definition": "http://hl7.org/fhir/SearchParameter/Organization-type", "expression": "type"}])
    assert errors(v, res) == []


def test_the_core_search_parameters_pass_the_expression_check(v: Validator) -> None:
    from profiles.rules.search_parameter import _expression_error

    core = [r for r in v.defs.others.values() if r.get("resourceType") == "SearchParameter" and r.get("expression")]
    assert len(core) > 1000
    assert [r["url"] for r in core if _expression_error(v.defs, r["expression"], r.get("base") or [])] == []


# --- CapabilityStatement -------------------------------------------------------------------------------------------

def test_a_capability_statement_search_param_must_have_its_definitions_type(v: Validator) -> None:
    res = read("capstmt.json")
    assert errors(v, res) == [
        ("CapabilityStatement.rest[0].resource[0].searchParam[0]", "Type mismatch - SearchParameter "
         "'http://hl7.org/fhir/SearchParameter/AllergyIntolerance-clinical-status|4.0.1' type is token, but type "
         "here is date")]
    fixed = copy.deepcopy(res)
    fixed["rest"][0]["resource"][0]["searchParam"][0]["type"] = "token"
    assert errors(v, fixed) == []


# --- StructureDefinition -------------------------------------------------------------------------------------------

def profile(*elements: dict[str, Any], base: str = "Observation", **more: Any) -> dict[str, Any]:
    sd = {"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/p", "name": "P",
          "status": "draft", "kind": "resource", "abstract": False, "type": base,
          "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{base}", "derivation": "constraint",
          "differential": {"element": list(elements)}}
    sd.update(more)
    return sd


def test_a_type_profile_must_be_a_profile_on_that_type(v: Validator) -> None:
    assert errors(v, read("observation-bad-profile.xml")) == [
        ("StructureDefinition.differential.element[0].type[0].profile[0]", "Profile "
         "http://hl7.org/fhir/StructureDefinition/Count is for type Count, but the Observation.valueQuantity element "
         "has type Quantity")]
    good = profile({"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "type": [
        {"code": "Quantity", "profile": ["http://hl7.org/fhir/StructureDefinition/SimpleQuantity"]}]})
    assert errors(v, good) == []


def test_a_malformed_differential_is_named_plainly(v: Validator) -> None:
    # the snapshot generator meets content of the wrong shape: its Python error text is not for the author
    plain = ("Error generating Snapshot: the differential is not well-formed (see its errors) (this usually arises "
             "from a problem in the differential)")
    for differential in ([{"element": []}], {"element": {"path": "Observation"}}, {"element": ["x", 5]},
                         {"element": [{"path": 5}]}):
        assert [m for _, m in errors(v, profile(differential=differential)) if "Snapshot" in m] == [plain]


def test_a_renamed_choice_must_name_one_of_its_types(v: Validator) -> None:
    assert errors(v, read("obs-mz.json")) == [
        ("StructureDefinition", "Error generating Snapshot: The path must be 'Observation.value[x]' not "
                                "'Observation.valueBla' when the type list is not constrained (this usually arises "
                                "from a problem in the differential)")]
    good = profile({"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "min": 1},
                   {"id": "Observation.valueQuantity.unit", "path": "Observation.valueQuantity.unit", "min": 1})
    assert errors(v, good) == []
    snapshot = {e["id"]: e for e in generate(good, v.defs)["snapshot"]["element"]}
    assert snapshot["Observation.value[x].unit"]["min"] == 1  # expanded from the Quantity the path names


def test_a_slicing_cannot_be_redefined_and_discriminators_must_fit_the_type(v: Validator) -> None:
    assert errors(v, read("slice23/StructureDefinition-Slice23-original.json")) == [
        ("StructureDefinition", "The element at AuditEvent.agent.extension defines the slicing unordered/open "
                                "[value=url] but then an element in the slicing AuditEvent.agent.extension:extOtherId "
                                "tries to redefine the slicing to ??/open [value=type]"),
        ("StructureDefinition.differential.element[2].slicing.discriminator[0]", "The discriminator path 'type' does "
         "not appear to be valid for the element that is being sliced 'AuditEvent.agent.extension'"),
        ("StructureDefinition.differential.element[15].slicing.discriminator[0]", "The discriminator path 'type' does "
         "not appear to be valid for the element that is being sliced 'AuditEvent.agent.extension'")]


def test_valid_discriminator_paths(v: Validator) -> None:
    from profiles.rules.structure_definition import discriminator_valid

    for types, path in [(["Extension"], "url"), (["Coding"], "$this"), (["CodeableConcept"], "coding.system"),
                        (["Reference"], "resolve().code"), (["Extension"], "value.ofType(Identifier).type"),
                        (["Identifier"], "extension('http://example.org/x').value"), (["Quantity"], "code")]:
        assert discriminator_valid(v, types, path), (types, path)
    assert not discriminator_valid(v, ["Identifier"], "code")
    assert not discriminator_valid(v, ["CodeableConcept"], "coding.nothing")


def test_a_constraint_cannot_change_a_fixed_value_of_its_base(v: Validator) -> None:
    res = read("ext-derived.json")
    assert errors(v, res) == [
        ("StructureDefinition.differential.element[1].fixedUri", "Value is "
         "'http://hl7.org/fhir/test/StructureDefinition/ext-derived' but is fixed to "
         "'http://hl7.org/fhir/test/StructureDefinition/ext-base' in the profile "
         "http://hl7.org/fhir/test/StructureDefinition/ext-base, because the value must match the fixed value defined "
         "in 'http://hl7.org/fhir/test/StructureDefinition/ext-base'")]
    assert warnings(v, res, "business-rule") == [
        ("StructureDefinition.context[0]", "Review the extension type for ext-derived: extensions should not have a "
                                           "context of Element unless it's really intended that they can be used "
                                           "anywhere")]
    same = copy.deepcopy(res)
    same["differential"]["element"][1]["fixedUri"] = "http://hl7.org/fhir/test/StructureDefinition/ext-base"
    assert errors(v, same) == []


def test_inherited_obligations_come_from_obligation_profiles_on_the_same_base(v: Validator) -> None:
    assert errors(v, read("profile-patient-op3.xml")) == [
        ("StructureDefinition.extension[2]", "The profile "
         "'http://hl7.org/fhir/test/StructureDefinition/profile-repeated-type' is not marked as an obligation profile"),
        ("StructureDefinition.extension[3]", "The profile 'http://hl7.org/fhir/tests/StructureDefinition/patient-op2a' "
         "has a different base 'http://hl7.org/fhir/StructureDefinition/Patient' from that expected "
         "'http://hl7.org/fhir/tests/StructureDefinition/patient-op-base'")]


def test_the_differential_follows_the_snapshot_order(v: Validator) -> None:
    birth = {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1}
    ident = {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1}
    assert errors(v, profile(birth, ident, base="Patient")) == [
        ("StructureDefinition.differential.element[0]", "No match found for Patient.birthDate in the generated "
         "snapshot: check that the path and definitions are legal in the differential (including order)"),
        ("StructureDefinition", "The profile http://example.org/StructureDefinition/p has 1 element in the "
         "differential (id: Patient.birthDate) that don't have a matching element in the snapshot: check that the "
         "path and definitions are legal in the differential (including order)")]
    sliced = [ident | {"slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
              {"id": "Patient.identifier:a", "path": "Patient.identifier", "sliceName": "a"},
              {"id": "Patient.identifier:a.system", "path": "Patient.identifier.system", "fixedUri": "urn:a"},
              birth, {"id": "Patient.contact.name", "path": "Patient.contact.name", "min": 1}]
    assert errors(v, profile(*sliced, base="Patient")) == []


def test_a_binding_needs_a_bindable_type(v: Validator) -> None:
    el = {"id": "Patient.birthDate", "path": "Patient.birthDate", "type": [{"code": "date"}],
          "binding": {"strength": "required", "valueSet": "http://hl7.org/fhir/ValueSet/administrative-gender"}}
    assert errors(v, profile(el, base="Patient")) == [
        ("StructureDefinition.differential.element[0]", "This element has a Binding but the types [date] do not make "
                                                        "this kind of constraint relevant")]
    el = {"id": "Patient.gender", "path": "Patient.gender", "type": [{"code": "code"}],
          "binding": {"strength": "required", "valueSet": "http://hl7.org/fhir/ValueSet/administrative-gender"}}
    assert errors(v, profile(el, base="Patient")) == []


def test_slicing_at_the_root_and_unknown_discriminator_types_stop_the_snapshot(v: Validator) -> None:
    res = read("ext-ccuk.json")
    found = errors(v, res)
    assert ("StructureDefinition", "Error generating Snapshot: Error: The profile has slicing at the root "
            "('Extension'), which is illegal (this usually arises from a problem in the differential)") in found
    assert ("StructureDefinition.differential.element[0]", "Slicing is not allowed at the root of a profile") in found
    bad = profile({"id": "Observation.code.coding", "path": "Observation.code.coding",
                   "slicing": {"discriminator": [{"type": "expression", "path": "system"}], "rules": "open"}})
    with pytest.raises(SnapshotError, match="Unknown DiscriminatorType code 'expression'"):
        generate(bad, v.defs)


def test_the_package_profiles_pass_the_authoring_rules(v: Validator) -> None:
    from profiles.rules.structure_definition import structure_definition

    class Run:
        def __init__(self) -> None:
            self.errors: list[str] = []

        def add(self, severity: str, code: str, path: str, message: str, details: str = "") -> None:
            if severity == "error":
                self.errors.append(message)

    checked = bad = 0
    for sd in [s for url, s in v.defs.structures.items() if "|" not in url and url.startswith("http://hl7.org/")]:
        run = Run()
        structure_definition(v, sd, "StructureDefinition", run)
        checked += 1
        bad += bool(run.errors)
    assert checked > 900
    assert bad <= 1  # picoelement: an R5-style profile on EvidenceVariable.characteristic.definition[x]


def test_a_profile_in_use_whose_snapshot_cannot_be_generated_is_unknown(v: Validator) -> None:
    bad = read("obs-mz.json")
    validator = Validator(Definitions([*v.defs.structures.values(), bad]), security_checks=False)
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    assert [i.code for i in validator.validate(obs, [bad["url"]]) if i.severity == "error"] == ["not-found"]
