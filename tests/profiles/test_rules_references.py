"""Reference resolution in Bundles and Parameters, profiles on nested resources, aggregation, reference options
and document links (profiles/references.py, profiles/rules/documents.py): inline resources, and the
fhir-test-cases inputs with the Java validator's verdicts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mappers.exceptions import Issue
from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.packages import closure, conformance_resources
from profiles.references import HL7_VALIDATOR_DEFAULT, ReferencePolicy, target_url
from profiles.validator import Validator
from profiles.xml import xml_to_json
from tests.profiles import corpus

BASE = ("hl7.fhir.r4.core#4.0.1", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1")
T = "http://example.org/fhir/StructureDefinition/"


def read(name: str) -> dict[str, Any]:
    data = corpus.case_file(name).read_bytes()
    return xml_to_json(data, None) if name.endswith(".xml") else orjson.loads(data)


def sd(name: str, rtype: str, elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "url": T + name, "name": name, "status": "active",
            "kind": "resource", "abstract": False, "type": rtype, "derivation": "constraint",
            "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "differential": {"element": [{"id": rtype, "path": rtype}, *elements]}}


PROFILES = [
    sd("named-patient", "Patient", [{"id": "Patient.name", "path": "Patient.name", "min": 1}]),
    sd("aged-patient", "Patient", [{"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1}]),
    sd("params", "Parameters", [
        {"id": "Parameters.parameter.resource", "path": "Parameters.parameter.resource",
         "type": [{"code": "Resource", "profile": [T + "named-patient"]}]}]),
    sd("params-either", "Parameters", [
        {"id": "Parameters.parameter.resource", "path": "Parameters.parameter.resource",
         "type": [{"code": "Resource", "profile": [T + "named-patient", T + "aged-patient"]}]}]),
    sd("bundled-subject", "Encounter", [
        {"id": "Encounter.subject", "path": "Encounter.subject",
         "type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
                   "aggregation": ["bundled"]}]}]),
    sd("unknown-target", "Encounter", [
        {"id": "Encounter.subject", "path": "Encounter.subject",
         "type": [{"code": "Reference", "targetProfile": ["http://example.org/nowhere/StructureDefinition/x"]}]}]),
    sd("patient-or-location", "Observation", [
        {"id": "Observation.subject", "path": "Observation.subject",
         "type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient",
                                                          "http://hl7.org/fhir/StructureDefinition/Location"]}]}]),
]


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return Definitions([*conformance_resources(closure(BASE), CONFORMANCE_TYPES), *PROFILES])


@pytest.fixture(scope="module")
def v(defs: Definitions) -> Validator:
    return Validator(defs, security_checks=False)


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity in ("error", "fatal")]


def has(issues: list[Issue], severity: str, expression: str, fragment: str) -> bool:
    return any(i.severity == severity and i.expression == expression and fragment in i.message for i in issues)


def collection(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": full, "resource": res} for full, res in entries]}


ENCOUNTER = {"resourceType": "Encounter", "status": "planned",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}


# ---- resolution (R4 bundle.html#references) ----
def test_target_url_of_relative_references() -> None:
    assert target_url("Patient/1", "http://acme.org/fhir/Observation/9") == "http://acme.org/fhir/Patient/1"
    assert target_url("Patient/1", "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0") == "urn:uuid:1"
    assert target_url("not a ref", "urn:uuid:x") is None


def test_relative_reference_resolves_against_urn_uuid_scheme(v: Validator) -> None:
    # urn:uuid: entries: Practitioner/<uuid> means urn:uuid:<uuid>, which here is an Organization
    bundle = collection(
        ("urn:uuid:54fc3e09-e279-4b74-a8ff-2649ec968642",
         {"resourceType": "Patient", "generalPractitioner": [
             {"reference": "Practitioner/5d9588d8-3cd6-4b32-8fb7-ad13694e069d"}]}),
        ("urn:uuid:5d9588d8-3cd6-4b32-8fb7-ad13694e069d", {"resourceType": "Organization", "name": "x"}))
    issues = v.validate(bundle)
    assert has(issues, "error", "Bundle.entry[0].resource.generalPractitioner[0]", "has resourceType Organization")


def test_type_and_id_match_under_another_base_is_only_a_warning(v: Validator) -> None:
    bundle = collection(
        ("urn:uuid:10a67a86-a9ec-427e-ba3f-f042cef21733",
         {"resourceType": "Patient", "managingOrganization": {"reference": "Organization/666"}}),
        ("urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2",
         {"resourceType": "Organization", "id": "666", "name": "Zrbj"}))
    issues = v.validate(bundle)
    assert has(issues, "warning", "Bundle.entry[0].resource.managingOrganization",
               "Entry 1 matches the reference Organization/666 by type and id but its fullUrl")
    assert not errors(issues)


def test_relative_reference_resolves_against_restful_base(v: Validator) -> None:
    bundle = collection(
        ("http://acme.org/fhir/Patient/p", {"resourceType": "Patient", "id": "p",
                                            "managingOrganization": {"reference": "Organization/o"}}),
        ("http://acme.org/fhir/Organization/o", {"resourceType": "Organization", "id": "o", "name": "O"}))
    assert not [i for i in v.validate(bundle) if i.severity != "information" and "Organization/o" in i.message]


def test_parameters_resources_resolve_each_other(defs: Definitions) -> None:
    v = Validator(defs, security_checks=False, references=ReferencePolicy(check_exists=True))
    coverage = {"resourceType": "Coverage", "id": "c", "status": "active", "beneficiary": {"reference": "Patient/1"},
                "payor": [{"reference": "Patient/1"}]}
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "p", "resource": {"resourceType": "Patient", "id": "1"}}, {"name": "c", "resource": coverage}]}
    assert not errors(v.validate(params))
    coverage["beneficiary"] = {"reference": "Patient/2"}
    issues = v.validate(params)
    assert has(issues, "error", "Parameters.parameter[1].resource.beneficiary",
               "Unable to resolve resource with reference 'Patient/2'")
    assert len(errors(issues)) == 1
    # without the option, an unresolved reference is not an error
    assert not errors(Validator(defs, security_checks=False).validate(params))


def test_corpus_parameters_reference(defs: Definitions) -> None:
    v = Validator(defs, security_checks=False, references=ReferencePolicy(check_exists=True))
    assert not errors(v.validate(read("parameters-reference.json")))
    assert len(errors(v.validate(read("parameters-reference-bad.json")))) == 1


# ---- profiles on nested resources ----
def test_parameter_resource_profile_applies(v: Validator) -> None:
    params = {"resourceType": "Parameters", "parameter": [{"name": "one", "resource": {"resourceType": "Patient"}}]}
    issues = v.validate(params, [T + "params"])
    assert has(issues, "error", "Parameters.parameter[0].resource", "Patient.name: minimum required = 1")
    params["parameter"][0]["resource"]["name"] = [{"family": "Chalmers"}]
    assert not errors(v.validate(params, [T + "params"]))


def test_parameter_resource_of_the_wrong_type(v: Validator) -> None:
    params = {"resourceType": "Parameters", "parameter": [{"name": "one", "resource": {
        "resourceType": "Organization", "name": "x"}}]}
    issues = v.validate(params, [T + "params"])
    assert has(issues, "error", "Parameters.parameter[0].resource", "The type 'Organization' is not valid - must be "
               "Patient")


def test_any_of_several_profiles_will_do(v: Validator) -> None:
    params = {"resourceType": "Parameters", "parameter": [{"name": "one", "resource": {
        "resourceType": "Patient", "birthDate": "1970-01-01"}}]}
    assert not errors(v.validate(params, [T + "params-either"]))
    del params["parameter"][0]["resource"]["birthDate"]
    assert errors(v.validate(params, [T + "params-either"]))


def test_bundle_param_rule(defs: Definitions) -> None:
    bundle = collection(("http://acme.org/Patient/a", {"resourceType": "Patient", "id": "a"}),
                        ("http://acme.org/Patient/b", {"resourceType": "Patient", "id": "b", "name": [{"text": "B"}]}))
    v = Validator(defs, security_checks=False,
                  references=ReferencePolicy(bundle_rules=(("Patient:0", T + "named-patient"),)))
    issues = v.validate(bundle)
    assert has(issues, "error", "Bundle.entry[0].resource", "Patient.name: minimum required = 1")
    assert len(errors(issues)) == 1
    v1 = Validator(defs, security_checks=False,
                   references=ReferencePolicy(bundle_rules=(("Patient:1", T + "named-patient"),)))
    assert not errors(v1.validate(bundle))


def test_corpus_bundle_entry_profiles() -> None:
    extra = [read("bundle-ihe-profile.xml"), read("res-inv-profile-bundle.json"), read("res-inv-profile-ep.json"),
             read("res-inv-profile-org.json"), read("res-inv-cs.json")]
    v = Validator(Definitions([*conformance_resources(closure(BASE), CONFORMANCE_TYPES), *extra]),
                  security_checks=False)
    issues = v.validate(read("bundle-ihe-bad.xml"), [extra[0]["url"]])
    assert has(issues, "error", "Bundle.entry[0].resource", "The type 'Patient' is not valid - must be "
               "DocumentManifest")
    good = errors(v.validate(read("res-inv-example-good.json"), [extra[1]["url"]]))
    assert any("Unable to resolve the profile reference" in i.message for i in good)
    bad = errors(v.validate(read("res-inv-example-bad.json"), [extra[1]["url"]]))
    assert any("Bundled or contained reference not found within the bundle/resource Endpoint/examplelabsXX"
               in i.message for i in bad)
    assert any("uab-1" in i.message for i in bad)


# ---- references: targets, aggregation, options ----
def test_unknown_target_profile(v: Validator) -> None:
    bundle = collection(("http://acme.org/Encounter/e", {**ENCOUNTER, "id": "e", "meta": {"profile": [
        T + "unknown-target"]}, "subject": {"reference": "Patient/p"}}),
        ("http://acme.org/Patient/p", {"resourceType": "Patient", "id": "p"}))
    issues = v.validate(bundle)
    assert has(issues, "error", "Bundle.entry[0].resource.subject", "Unable to resolve the profile reference "
               "'http://example.org/nowhere/StructureDefinition/x'")


def test_bundled_aggregation(v: Validator) -> None:
    enc = {**ENCOUNTER, "id": "e", "meta": {"profile": [T + "bundled-subject"]}, "subject": {"reference": "Patient/p"}}
    issues = v.validate(collection(("http://acme.org/Encounter/e", enc)))
    assert has(issues, "error", "Bundle.entry[0].resource.subject", "Bundled or contained reference not found")
    ok = collection(("http://acme.org/Encounter/e", enc),
                    ("http://acme.org/Patient/p", {"resourceType": "Patient", "id": "p"}))
    assert not errors(v.validate(ok))
    # outside a Bundle, R4 gives `bundled` no meaning
    assert not errors(v.validate({k: val for k, val in enc.items() if k != "meta"}, [T + "bundled-subject"]))


def test_type_of_unresolved_reference_checked_only_when_asked(defs: Definitions) -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Group/12345"}}
    java = Validator(defs, security_checks=False, references=HL7_VALIDATOR_DEFAULT)
    assert not errors(java.validate(obs, [T + "patient-or-location"]))
    gateway = Validator(defs, security_checks=False)  # the default: the type a RESTful reference names is checked
    assert has(gateway.validate(obs, [T + "patient-or-location"]), "error", "Observation.subject",
               "Invalid Resource target type. Found Group")


def test_contained_resources_ignored_on_request(defs: Definitions) -> None:
    res = read("contained-resource.json")
    assert errors(Validator(defs, security_checks=False).validate(res))
    assert not errors(Validator(defs, security_checks=False, references=ReferencePolicy(contained=False))
                      .validate(res))


def test_type_function_knows_fhir_types(defs: Definitions) -> None:
    extra = [read("contained-invariant-profile.json")]
    v = Validator(Definitions([*conformance_resources(closure(BASE), CONFORMANCE_TYPES), *extra]),
                  security_checks=False)
    assert not errors(v.validate(read("contained-invariant-instance.json")))


# ---- documents ----
def document(author_ref: str, org_full: str, comp_full: str = "urn:uuid:10a67a86-a9ec-427e-ba3f-f042cef21733"
             ) -> dict[str, Any]:
    comp = {"resourceType": "Composition", "status": "final", "type": {"text": "note"}, "date": "2023-11-11",
            "author": [{"reference": author_ref}], "title": "t"}
    return {"resourceType": "Bundle", "type": "document", "timestamp": "2023-11-11T12:16:44Z",
            "identifier": {"system": "http://example.org/docs", "value": "1"},
            "entry": [{"fullUrl": comp_full, "resource": comp},
                      {"fullUrl": org_full, "resource": {"resourceType": "Organization", "id": "666", "name": "Zrbj"}}]}


def test_document_links_and_reachability(v: Validator) -> None:
    org = "urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2"
    issues = v.validate(document("Organization/666", org))
    assert has(issues, "error", "Bundle.entry[0].resource.author[0]", "Can't find 'Organization/666' in the bundle "
               "(Composition.author)")
    assert has(issues, "error", "Bundle.entry[1]", f"Entry '{org}' isn't reachable by traversing links")
    assert not errors(v.validate(document(org, org)))


def test_corpus_relative_reference_case(v: Validator) -> None:
    # the Java validator's two findings: the author link, and the entry it therefore cannot reach
    issues = errors(v.validate(read("relative_reference_to_TYPE_ID.all_fullUrl_UUID.xml")))
    assert len(issues) == 2
    assert any(i.message.startswith("Can't find 'Organization/666' in the bundle (Composition.author). Note that")
               for i in issues)
    assert any("urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2' isn't reachable" in i.message for i in issues)


def test_versioned_document_references(v: Validator) -> None:
    assert not errors(v.validate(read("bundle-document-versioned-references-good.json")))
    # as the Java validator: the version no entry has, and the unversioned reference that two entries match
    bad = errors(v.validate(read("bundle-document-versioned-references-bad.json")))
    assert len(bad) == 3
    assert any("Can't find 'Observation/ObservationExample/_history/3' in the bundle (Section Entry)" in i.message
               for i in bad)
    assert any("Found 2 matches for 'Observation/ObservationExample' in the bundle (Section Entry)" in i.message
               for i in bad)


def test_document_with_malformed_entries_keeps_entry_numbers(v: Validator) -> None:
    doc = document("Organization/666", "urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2")
    doc["entry"].insert(1, "not an entry")
    unreachable = [i for i in v.validate(doc) if "isn't reachable" in i.message]
    assert [i.expression for i in unreachable] == ["Bundle.entry[2]"]
    doc["entry"][0]["resource"] = ["not a resource"]
    assert not any("isn't reachable" in i.message for i in v.validate(doc))  # no Composition: no document rules


@pytest.mark.parametrize("name", ["bundle-ihe-good.xml", "bad-bundle-reference-type.xml"])
def test_corpus_inputs_still_checked(v: Validator, name: str) -> None:
    assert errors(v.validate(read(name)))


def test_fetch_hook_satisfies_check_exists(defs: Definitions) -> None:
    store = {"Patient/7": {"resourceType": "Patient", "id": "7"}}
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Patient/7"}}
    strict = ReferencePolicy(check_exists=True)
    assert has(Validator(defs, security_checks=False, references=strict).validate(obs), "error",
               "Observation.subject", "Unable to resolve resource with reference 'Patient/7'")
    fetching = ReferencePolicy(check_exists=True, fetch=store.get)
    assert not errors(Validator(defs, security_checks=False, references=fetching).validate(obs))
