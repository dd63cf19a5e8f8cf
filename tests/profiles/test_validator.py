"""The validator, check by check, against the installed official packages (R4 core, Genomics Reporting IG)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from profiles.validator import Validator

GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"


@pytest.fixture(scope="module")
def v(validator: Validator) -> Validator:
    return validator


def errors(v: Validator, res: dict[str, Any], profiles: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    return [(i.code, i.expression or "", i.message) for i in v.validate(res, profiles)
            if i.severity in ("error", "fatal")]


def variant() -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": "v1", "meta": {"profile": [GR + "variant"]}, "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                         "code": "laboratory"}]},
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "GE"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "69548-6"}]},
        "subject": {"reference": "Patient/p1"},
        "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA9633-4"}]},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "48013-7"}]},
             "valueCodeableConcept": {"coding": [{"system": "http://www.ncbi.nlm.nih.gov/refseq",
                                                  "code": "NC_000007.14"}]}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "81254-5"}]},
             "valueRange": {"low": {"value": 55191822}, "high": {"value": 55191822}}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]}, "valueString": "T"},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "69551-0"}]}, "valueString": "G"},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "81258-6"}]},
             "valueQuantity": {"value": 0.31, "system": "http://unitsofmeasure.org", "code": "1"}}],
    }


def test_valid_variant_has_no_errors(v: Validator) -> None:
    assert errors(v, variant()) == []


@pytest.mark.parametrize(("mutate", "code", "where", "text"), [
    (lambda r: r.pop("status"), "structure", "Observation", "Observation.status: minimum required = 1"),
    (lambda r: r.update(foo=1), "structure", "Observation.foo", "Unrecognized property 'foo'"),
    (lambda r: r.update(status=7), "structure", "Observation.status", "must be a JSON string"),
    (lambda r: r.update(status="finished"), "code-invalid", "Observation.status", "not in the value set"),
    (lambda r: r.update(effectiveDateTime="2020-13-45"), "invalid", "Observation.effective.ofType(DateTime)",
     "not a valid dateTime"),
    (lambda r: r.update(issued=""), "invalid", "Observation.issued", "cannot be empty"),
    (lambda r: r.update(note=[]), "invalid", "Observation.note", "Array cannot be empty"),
    (lambda r: r.update(code={"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}), "value",
     "Observation.code", "pattern"),
    (lambda r: r.update(category=r["category"][:1]), "structure", "Observation", "geCategory"),
    (lambda r: r.update(dataAbsentReason={"text": "x"}), "invariant", "Observation", "obs-6"),
    (lambda r: r.update(subject={"reference": "Medication/1"}), "structure", "Observation.subject",
     "Invalid Resource target type"),
    (lambda r: r.update(id="bad id!"), "invalid", "Observation.id", "Invalid Resource id"),
    (lambda r: r.update(valueString="x", valueBoolean=True), "structure", "Observation.valueBoolean",
     "more than one value"),
    (lambda r: r["component"][4]["valueQuantity"].update(value="0.3"), "structure",
     "Observation.component[4].value.ofType(Quantity).value", "must be a JSON number"),
    (lambda r: r["component"].append(copy.deepcopy(r["component"][2])), "structure", "Observation",
     "max allowed = 1"),
    (lambda r: r.update(derivedFrom={"reference": "Observation/x"}), "structure", "Observation.derivedFrom",
     "must be an array"),
])
def test_each_kind_of_check_reports_an_error_at_the_right_place(v: Validator, mutate, code, where, text) -> None:
    res = variant()
    mutate(res)
    found = errors(v, res)
    assert any(c == code and w == where and text in m for c, w, m in found), found


def test_malformed_reference_is_a_warning_as_in_the_hl7_validator(v: Validator) -> None:
    res = variant()
    res["subject"] = {"reference": "not a ref"}
    issues = v.validate(res)
    assert any(i.severity == "warning" and "Invalid reference format" in i.message for i in issues)


def test_bindings_by_strength_and_external_systems(v: Validator) -> None:
    res = variant()
    # extensible binding (genomic source class, LL378-1 is a LOINC answer list not available locally)
    res["component"].append({"code": {"coding": [{"system": "http://loinc.org", "code": "48002-0"}]},
                             "valueCodeableConcept": {"coding": [{"system": "http://loinc.org",
                                                                  "code": "LA6683-2"}]}})
    issues = v.validate(res)
    assert not [i for i in issues if i.severity == "error"]
    assert any(i.severity == "information" and "not available locally" in i.message for i in issues)
    # a code from a local CodeSystem that does not exist there is an error
    res = variant()
    res["category"][0]["coding"][0]["code"] = "lab"
    assert any("Unknown code 'lab'" in m for _, _, m in errors(v, res))


def test_profile_discriminator_resolves_inside_the_bundle(v: Validator) -> None:
    var = variant()
    impl = {
        "resourceType": "Observation", "id": "i1", "meta": {"profile": [GR + "diagnostic-implication"]},
        "status": "final", "category": copy.deepcopy(var["category"]),
        "code": {"coding": [{"system": "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/tbd-codes-cs",
                             "code": "diagnostic-implication"}]},
        "derivedFrom": [{"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"}],
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": var},
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002", "resource": impl}]}
    assert errors(v, bundle) == []
    # derivedFrom (1..*) pointing at something that is not a genomic finding: the slice finds nothing
    impl["derivedFrom"] = []
    found = errors(v, bundle)
    assert any("derivedFrom" in m and "minimum required = 1" in m for _, _, m in found), found


def test_requested_profile_and_unknown_profile(v: Validator) -> None:
    res = variant()
    res.pop("meta")
    assert errors(v, res) == []  # base R4 only
    assert errors(v, res, (GR + "variant",)) == []
    res["code"]["coding"][0]["code"] = "1234-5"
    assert errors(v, res, (GR + "variant",))
    assert any("not known locally" in m for _, _, m in errors(v, variant(), ("http://example.org/nope",)))


def test_bundle_rules(v: Validator) -> None:
    pat = {"resourceType": "Patient", "id": "p1"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "Patient/p1", "resource": pat},
        {"fullUrl": "http://x.org/Patient/p1", "resource": pat},
        {"fullUrl": "http://x.org/Patient/p1", "resource": pat}]}
    msgs = [m for _, _, m in errors(v, bundle)]
    assert any("must be an absolute URL" in m for m in msgs)
    assert any("Duplicate fullUrl" in m for m in msgs)


def test_not_a_resource(v: Validator) -> None:
    assert errors(v, [1, 2]) and errors(v, {"resourceType": "Nope"})


def test_invariant_that_names_its_resource_type_is_evaluated() -> None:
    """`Patient.active.not()` must be evaluated on a Patient, not pass because the type name matched nothing."""
    from profiles import fhirpath

    scope = fhirpath.Scope(lambda ref: None, lambda url, system, code: None, lambda res, url: None)
    patient = {"resourceType": "Patient", "active": True}
    assert fhirpath.evaluate("Patient.active.not()", patient, "Patient", patient, patient, scope) is False
    assert fhirpath.evaluate("Patient.active", patient, "Patient", patient, patient, scope) is True


@pytest.mark.parametrize("res", [
    {"resourceType": 5}, {"resourceType": ["Patient"]}, {"resourceType": "Patient", "contained": 1},
    {"resourceType": "Patient", "contained": [1, {"resourceType": {}}]},
    {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": None}}, 3]},
])
def test_malformed_input_is_reported_not_a_crash(v: Validator, res: dict[str, Any]) -> None:
    assert any(i.severity == "error" for i in v.validate(res))


def test_integer_beyond_64_bits_is_validated_not_a_crash(v: Validator) -> None:
    """FHIR decimals have no size limit; XML input and Python's json module give such values as int."""
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "count"},
           "valueQuantity": {"value": 10**30, "unit": "1"}}
    assert errors(v, obs) == []


def test_a_malformed_profile_is_reported_not_a_crash(v: Validator) -> None:
    from profiles.definitions import Definitions

    bad = {"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/bad", "name": "Bad",
           "status": "draft", "kind": "resource", "abstract": False, "type": "Patient", "derivation": "constraint",
           "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
           "differential": {"element": [1, {"path": None}]}}
    local = Validator(Definitions([*v.defs.structures.values(), *v.defs.value_sets.values(), bad]))
    issues = local.validate({"resourceType": "Patient"}, ["http://example.org/StructureDefinition/bad"])
    assert [(i.severity, i.code) for i in issues if "example.org/StructureDefinition/bad" in i.message] == [
        ("error", "not-found")]
