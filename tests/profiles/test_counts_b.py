"""Findings the HL7 validator reports one by one, matched in number: a bare code outside a required value set
(system not inferable + not in the set), dom-3 orphans, versioned references to a missing version, a repeated
single-valued element, eld-19's anchored regex, duplicate element ids, txt-1/txt-2 apart, OperationDefinition
input/output profiles, obligation profiles, bindings merged in snapshots, and MIME types judged by their grammar."""

from __future__ import annotations

from typing import Any

import pytest

from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.packages import closure, conformance_resources
from profiles.references import HL7_VALIDATOR_DEFAULT, ReferencePolicy
from profiles.snapshot import generate
from profiles.validator import Validator

BASE = ("hl7.fhir.r4.core#4.0.1", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1")
CORE = "http://hl7.org/fhir/StructureDefinition/"
T = "http://example.org/fhir/StructureDefinition/"


def params_profile(name: str, slices: list[dict[str, Any]]) -> dict[str, Any]:
    """A Parameters profile with one `parameter` slice per entry (name, min, max, resource type or value type)."""
    elements: list[dict[str, Any]] = [
        {"id": "Parameters", "path": "Parameters"},
        {"id": "Parameters.parameter", "path": "Parameters.parameter",
         "slicing": {"discriminator": [{"type": "value", "path": "name"}], "rules": "open"}}]
    for s in slices:
        sid = f"Parameters.parameter:{s['name']}"
        elements += [
            {"id": sid, "path": "Parameters.parameter", "sliceName": s["name"], "min": s["min"], "max": s["max"]},
            {"id": f"{sid}.name", "path": "Parameters.parameter.name", "fixedString": s["name"]}]
        if "resource" in s:
            elements += [{"id": f"{sid}.value[x]", "path": "Parameters.parameter.value[x]", "max": "0"},
                         {"id": f"{sid}.resource", "path": "Parameters.parameter.resource",
                          "type": [{"code": s["resource"]}]}]
        else:
            elements += [{"id": f"{sid}.value[x]", "path": "Parameters.parameter.value[x]", "type": [s["value"]]},
                         {"id": f"{sid}.resource", "path": "Parameters.parameter.resource", "max": "0"}]
        elements.append({"id": f"{sid}.part", "path": "Parameters.parameter.part", "max": "0"})
    return {"resourceType": "StructureDefinition", "id": name, "url": T + name, "name": name, "status": "active",
            "kind": "resource", "abstract": False, "type": "Parameters", "baseDefinition": CORE + "Parameters",
            "derivation": "constraint", "differential": {"element": elements}}


OBLIGATION_BASE = {
    "resourceType": "StructureDefinition", "id": "pat-ob-base", "url": T + "pat-ob-base", "name": "PatObBase",
    "status": "active", "kind": "resource", "abstract": False, "type": "Patient", "baseDefinition": CORE + "Patient",
    "derivation": "constraint", "differential": {"element": [
        {"id": "Patient", "path": "Patient"},
        # a binding that names only its value set: the strength comes from the base (extensible)
        {"id": "Patient.maritalStatus", "path": "Patient.maritalStatus",
         "binding": {"valueSet": "http://hl7.org/fhir/ValueSet/marital-status"}}]}}

SUPPORT = [
    params_profile("op-in", [{"name": "subject", "min": 1, "max": "1", "resource": "Patient"},
                             {"name": "extra", "min": 0, "max": "1", "value": {"code": "string"}}]),
    params_profile("op-out", [{"name": "return", "min": 1, "max": "1", "resource": "Bundle"}]),
    OBLIGATION_BASE,
]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return list(conformance_resources(closure(BASE), CONFORMANCE_TYPES))


@pytest.fixture(scope="module")
def v(base: list[dict[str, Any]]) -> Validator:
    return Validator(Definitions([*base, *SUPPORT]), security_checks=False, references=HL7_VALIDATOR_DEFAULT)


def errors(v: Validator, res: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(i.code, i.expression or "", i.message) for i in v.validate(res) if i.severity in ("error", "fatal")]


# ---- required binding on a bare code ----
def test_bare_code_outside_required_value_set_is_two_errors(v: Validator) -> None:
    found = errors(v, {"resourceType": "Patient", "gender": "unknownish"})
    assert [c for c, _, _ in found] == ["not-found", "code-invalid"]
    assert "System URI could not be determined for the code 'unknownish'" in found[0][2]
    assert all(p == "Patient.gender" for _, p, _ in found)
    assert errors(v, {"resourceType": "Patient", "gender": "female"}) == []


# ---- dom-3 ----
def condition(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, **extra}


def test_unreferenced_contained_resource_is_an_orphan(v: Validator) -> None:
    found = errors(v, condition(contained=[{"resourceType": "Practitioner", "id": "pr"}]))
    assert [(c, p) for c, p, _ in found] == [("invalid", "Condition.contained[0]")]
    assert "(dom-3)" in found[0][2] and "'pr'" in found[0][2]


@pytest.mark.parametrize("extra", [
    {"asserter": {"reference": "#pr"}},
    {"text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><img src="#pr"/></div>'}},
])
def test_referenced_contained_resource_is_not_an_orphan(v: Validator, extra: dict[str, Any]) -> None:
    res = condition(contained=[{"resourceType": "Practitioner", "id": "pr"}], **extra)
    assert not [f for f in errors(v, res) if "dom-3" in f[2]]


def test_contained_referring_to_its_container_or_a_sibling_is_not_an_orphan(v: Validator) -> None:
    res = condition(asserter={"reference": "#role"}, contained=[
        {"resourceType": "PractitionerRole", "id": "role", "practitioner": {"reference": "#pr"}},
        {"resourceType": "Practitioner", "id": "pr"},
        {"resourceType": "Provenance", "id": "prov", "target": [{"reference": "#"}], "recorded": "2020-01-01T00:00:00Z",
         "agent": [{"who": {"reference": "Practitioner/x"}}]}])
    assert not [f for f in errors(v, res) if "dom-3" in f[2]]


def test_contained_ignored_reports_no_orphan(base: list[dict[str, Any]]) -> None:
    ignore = Validator(Definitions(base), security_checks=False,
                       references=ReferencePolicy(contained=False))
    assert errors(ignore, condition(contained=[{"resourceType": "Practitioner", "id": "pr"}])) == []


# ---- references ----
def test_versioned_reference_to_a_missing_version_is_a_warning(v: Validator) -> None:
    obs = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/Observation/o", "resource": obs | {"meta": {"versionId": "1"}}},
        {"fullUrl": "http://example.org/Observation/o", "resource": obs | {"meta": {"versionId": "2"}}},
        {"fullUrl": "http://example.org/DiagnosticReport/d", "resource": {
            "resourceType": "DiagnosticReport", "id": "d", "status": "final", "code": {"text": "x"},
            "result": [{"reference": "Observation/o/_history/3"}, {"reference": "Observation/o/_history/2"}]}}]}
    issues = v.validate(bundle)
    at = "Bundle.entry[2].resource.result"
    assert not [i for i in issues if i.severity == "error" and (i.expression or "").startswith(at)]
    assert [i.severity for i in issues if i.expression == f"{at}[0]"] == ["warning"]


# ---- structure ----
def test_single_valued_element_given_twice_is_one_error(v: Validator) -> None:
    found = errors(v, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                       "subject": [{"reference": "Patient/a"}, {"reference": "Patient/b"}]})
    assert len(found) == 1 and "max allowed = 1, but found 2" in found[0][2]
    one = errors(v, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "subject": [{"reference": "Patient/a"}]})
    assert [m for _, _, m in one] == ["This property must be a single value, not an array"]


def test_duplicate_element_ids_among_siblings(v: Validator) -> None:
    res = {"resourceType": "Patient", "name": [{"id": "n1", "family": "A"}, {"id": "n1", "family": "B"}],
           "address": [{"id": "n2", "city": "X"}]}
    assert errors(v, res) == [("business-rule", "Patient.name[1]", "Duplicate id value 'n1'")]
    res["name"][1]["id"] = "n3"
    assert errors(v, res) == []


# ---- invariants ----
def sd_with_path(path: str) -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "url": T + "x", "name": "X", "status": "draft",
            "kind": "resource", "abstract": False, "type": "Observation", "baseDefinition": CORE + "Observation",
            "derivation": "constraint", "differential": {"element": [{"id": path, "path": path}]}}


def test_eld19_matches_the_whole_path(v: Validator) -> None:
    bad = [f for f in errors(v, sd_with_path("Observation...unit")) if "eld-19" in f[2]]
    assert [p for _, p, _ in bad] == ["StructureDefinition.differential.element[0]"]
    assert not [f for f in errors(v, sd_with_path("Observation.value[x]")) if "eld-19" in f[2]]


def test_narrative_checks_apart(v: Validator) -> None:
    empty = {"resourceType": "Basic", "code": {"text": "x"},
             "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">  </div>'}}
    assert [m[:28] for _, _, m in errors(v, empty)] == ["Constraint failed: txt-2: 'T"]
    active = {"resourceType": "Basic", "code": {"text": "x"}, "text": {
        "status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">hi<script>x()</script></div>'}}
    found = errors(v, active)
    assert len(found) == 2 and any("txt-1" in m for _, _, m in found) and not any("txt-2" in m for _, _, m in found)


# ---- OperationDefinition ----
def opdef(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationDefinition", "url": "http://example.org/OperationDefinition/op", "name": "Op",
            "status": "draft", "kind": "operation", "code": "op", "system": False, "type": False, "instance": True,
            "resource": ["Patient"], "inputProfile": T + "op-in", "outputProfile": T + "op-out",
            "parameter": parameters}


def test_operation_profiles_match_the_parameters(v: Validator) -> None:
    good = opdef([{"name": "subject", "use": "in", "min": 1, "max": "1", "type": "Patient"},
                  {"name": "extra", "use": "in", "min": 0, "max": "1", "type": "string"},
                  {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Bundle"}])
    assert errors(v, good) == []
    assert not [i for i in v.validate(good) if i.severity == "warning" and "profile" in i.message]


def test_operation_profiles_disagreeing_with_the_parameters(v: Validator) -> None:
    bad = opdef([{"name": "subject", "use": "in", "min": 0, "max": "*", "type": "Patient"},
                 {"name": "extra", "use": "in", "min": 0, "max": "1", "type": "integer"},
                 {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Bundle"},
                 {"name": "more", "use": "out", "min": 0, "max": "1", "type": "string"}])
    found = errors(v, bad)
    assert [(p, m.split(" in the ")[0]) for _, p, m in found] == [
        ("OperationDefinition.parameter[0]", "The parameter 'subject' has a value for 'min' of '1'"),
        ("OperationDefinition.parameter[0]", "The parameter 'subject' has a value for 'max' of '1'"),
        ("OperationDefinition.parameter[1]", "The type 'string' is allowed for the parameter 'extra'"),
        ("OperationDefinition.parameter[1]", "The type 'integer' is not allowed for the parameter 'extra'"),
    ]
    warnings = [i for i in v.validate(bad) if i.severity == "warning" and "'more'" in i.message]
    assert [i.expression for i in warnings] == ["OperationDefinition.parameter[3]"]


# ---- obligation profiles ----
def obligation_profile(elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "url": T + "pat-ob", "name": "PatOb", "status": "draft",
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/obligation-profile",
                           "valueBoolean": True}],
            "kind": "resource", "abstract": False, "type": "Patient", "baseDefinition": T + "pat-ob-base",
            "derivation": "constraint", "differential": {"element": elements}}


def test_obligation_profile_only_adds_obligations(v: Validator) -> None:
    sd = obligation_profile([
        {"id": "Patient.active", "path": "Patient.active", "mustSupport": True},
        {"id": "Patient.gender", "path": "Patient.gender", "short": "changed"},
        {"id": "Patient.maritalStatus", "path": "Patient.maritalStatus",
         "binding": {"strength": "example", "description": "d"}}])
    found = [(p, m) for c, p, m in errors(v, sd) if "Obligation profiles" in m]
    assert [p for p, _ in found] == ["StructureDefinition.differential.element[1].short",
                                     "StructureDefinition.differential.element[2].binding.strength",
                                     "StructureDefinition.differential.element[2].binding.description"]
    assert "('example') from the base ('extensible')" in found[1][1]
    ok = obligation_profile([{"id": "Patient.maritalStatus", "path": "Patient.maritalStatus", "mustSupport": True,
                              "binding": {"strength": "extensible"}}])
    assert not [m for _, _, m in errors(v, ok) if "Obligation profiles" in m]


def test_snapshot_binding_keeps_the_base_strength(v: Validator) -> None:
    snap = generate(OBLIGATION_BASE, v.defs)["snapshot"]["element"]
    binding = next(e for e in snap if e["id"] == "Patient.maritalStatus")["binding"]
    assert binding["strength"] == "extensible"
    assert binding["valueSet"] == "http://hl7.org/fhir/ValueSet/marital-status"


# ---- MIME types ----
def endpoint(mime: str) -> dict[str, Any]:
    return {"resourceType": "Endpoint", "status": "active", "address": "http://example.org/fhir",
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                               "code": "hl7-fhir-rest"},
            "payloadType": [{"text": "any"}], "payloadMimeType": [mime]}


@pytest.mark.parametrize("mime", ["application/fhir+json", "text/plain; charset=UTF-8", "json"])
def test_mime_types_judged_by_their_grammar(v: Validator, mime: str) -> None:
    assert errors(v, endpoint(mime)) == []


def test_malformed_mime_type_is_not_in_the_value_set(v: Validator) -> None:
    found = errors(v, endpoint("[%format%]"))
    assert [(c, p) for c, p, _ in found] == [("not-found", "Endpoint.payloadMimeType[0]"),
                                             ("code-invalid", "Endpoint.payloadMimeType[0]")]
