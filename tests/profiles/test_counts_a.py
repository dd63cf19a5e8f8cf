"""Findings the HL7 validator reports one by one, matched in number: several type profiles (none/one/many fit),
conformsTo() that validates, Extension.url absent/empty/versioned, a choice type the profile has restricted,
complex fixed values child by child, narrative links and internal hyperlinks, #id between contained siblings,
base-definition cardinality beside a profile's, and unknown datatype profiles."""

from __future__ import annotations

from typing import Any

import pytest

from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.packages import closure, conformance_resources
from profiles.validator import Validator

BASE = ("hl7.fhir.r4.core#4.0.1", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1")
CORE = "http://hl7.org/fhir/StructureDefinition/"
T = "http://example.org/fhir/StructureDefinition/"


def sd(name: str, typ: str, elements: list[dict[str, Any]], kind: str = "resource") -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "id": name, "url": T + name, "name": name, "status": "active",
            "kind": kind, "abstract": False, "type": typ, "baseDefinition": CORE + typ, "derivation": "constraint",
            "differential": {"element": [{"id": typ, "path": typ}, *elements]}}


PROFILES = [
    sd("addr-use", "Address", [{"id": "Address.use", "path": "Address.use", "min": 1}], "complex-type"),
    sd("addr-type", "Address", [{"id": "Address.type", "path": "Address.type", "min": 1}], "complex-type"),
    sd("pat-addr", "Patient", [{"id": "Patient.address", "path": "Patient.address",
                                "type": [{"code": "Address", "profile": [T + "addr-use", T + "addr-type"]}]}]),
    sd("pat-conforms", "Patient", [], "resource") | {"differential": {"element": [
        {"id": "Patient", "path": "Patient", "constraint": [
            {"key": "ck-1", "severity": "error", "human": "conformsToCheck",
             "expression": "conformsTo('http://hl7.org/fhir/StructureDefinition/Patient')"}]}]}},
    sd("obs-qty", "Observation", [{"id": "Observation.value[x]", "path": "Observation.value[x]", "min": 1,
                                   "type": [{"code": "Quantity"}]}]),
    sd("obs-qty-cc", "Observation", [{"id": "Observation.value[x]", "path": "Observation.value[x]",
                                      "type": [{"code": "Quantity"}, {"code": "CodeableConcept"}]}]),
    sd("obs-cat", "Observation", [{"id": "Observation.category", "path": "Observation.category", "min": 1}]),
    sd("prac-home", "Practitioner", [{"id": "Practitioner.telecom", "path": "Practitioner.telecom",
                                      "fixedContactPoint": {"use": "home"}}]),
    sd("org-ident", "Organization", [{"id": "Organization.identifier", "path": "Organization.identifier",
                                      "type": [{"code": "Identifier", "profile": [T + "not-loaded"]}]}]),
]


@pytest.fixture(scope="module")
def v() -> Validator:
    base = list(conformance_resources(closure(BASE), CONFORMANCE_TYPES))
    return Validator(Definitions([*base, *PROFILES]), security_checks=False)


def errors(v: Validator, res: dict[str, Any], profiles: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    return [(i.code, i.expression or "", i.message) for i in v.validate(res, list(profiles))
            if i.severity in ("error", "fatal")]


def test_several_type_profiles_none_fits(v: Validator) -> None:
    found = errors(v, {"resourceType": "Patient", "address": [{"city": "X"}]}, (T + "pat-addr",))
    assert len(found) == 3
    assert found[0][2].startswith("Unable to find a match for the specified profile among choices: " + T)
    assert any("Address.use: minimum required" in m and m.endswith(f"(validating against {T}addr-use)")
               for _, _, m in found)
    assert any("Address.type: minimum required" in m for _, _, m in found)


def test_several_type_profiles_one_or_both_fit(v: Validator) -> None:
    assert errors(v, {"resourceType": "Patient", "address": [{"use": "home"}]}, (T + "pat-addr",)) == []
    issues = v.validate({"resourceType": "Patient", "address": [{"use": "home", "type": "postal"}]},
                        [T + "pat-addr"])
    assert [i.severity for i in issues if "multiple matching profiles" in i.message] == ["warning"]
    assert not [i for i in issues if i.severity == "error"]


def test_conforms_to_validates_against_the_core_definition(v: Validator) -> None:
    bad = errors(v, {"resourceType": "Patient", "gender": "nonsense"}, (T + "pat-conforms",))
    assert ("invariant", "Patient", "Constraint failed: ck-1: 'conformsToCheck'") in bad
    assert errors(v, {"resourceType": "Patient", "gender": "male"}, (T + "pat-conforms",)) == []


def test_extension_url_absent_or_empty(v: Validator) -> None:
    required = "Extension.url is required in order to identify, use and validate the extension"
    empty = errors(v, {"resourceType": "Patient", "extension": [{"url": "", "valueString": "x"}]})
    assert ("invalid", "Patient.extension[0]", required) in empty
    assert any(e == "Patient.extension[0].url" and "ele-1" in m for _, e, m in empty)
    assert not any("absolute URL" in m for _, _, m in empty)
    assert len(empty) == 3
    absent = errors(v, {"resourceType": "Patient", "extension": [{"valueString": "x"}]})
    assert ("invalid", "Patient.extension[0]", required) in absent
    assert len(absent) == 2  # and Extension.url's cardinality


def test_versioned_extension_url(v: Validator) -> None:
    url = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
    assert errors(v, {"resourceType": "Patient", "extension": [{"url": url, "valueAddress": {"city": "X"}}]}) == []
    found = errors(v, {"resourceType": "Patient", "extension": [{"url": url + "|4.0.0",
                                                                 "valueAddress": {"city": "X"}}]})
    assert any(e == f"Patient.extension[0][url='{url}|4.0.0']" and "must not contain a version" in m
               for _, e, m in found)


def test_choice_type_restricted_by_the_profile(v: Validator) -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueString": "test"}
    assert errors(v, obs, (T + "obs-qty",)) == [
        ("structure", "Observation.value.ofType(string)",
         f"The Profile '{T}obs-qty' definition allows for the type Quantity but found type string")]
    (found,) = errors(v, obs, (T + "obs-qty-cc",))
    assert found[1] == "Observation" and "Valid types at this point are Quantity, CodeableConcept" in found[2]
    assert errors(v, obs) == []
    nonsense = {k: x for k, x in obs.items() if k != "valueString"} | {"valueNonsense": 1}
    assert "Unrecognized property 'valueNonsense'" in [m for _, _, m in errors(v, nonsense, (T + "obs-qty",))]


def test_fixed_complex_value_child_by_child(v: Validator) -> None:
    prac = {"resourceType": "Practitioner", "telecom": [{"system": "phone", "value": "555", "use": "home"}]}
    found = errors(v, prac, (T + "prac-home",))
    assert sorted(e for _, e, _ in found) == ["Practitioner.telecom[0].system", "Practitioner.telecom[0].value"]
    assert all("is present in the instance but not allowed in the applicable fixed value" in m for _, _, m in found)
    assert errors(v, {"resourceType": "Practitioner", "telecom": [{"use": "home"}]}, (T + "prac-home",)) == []
    other = errors(v, {"resourceType": "Practitioner", "telecom": [{"rank": 1}]}, (T + "prac-home",))
    assert sorted((e, m[:30]) for _, e, m in other) == [
        ("Practitioner.telecom[0]", "Missing element 'use' - requir"),
        ("Practitioner.telecom[0].rank", "The element rank is present in")]


def test_base_cardinality_beside_the_profile(v: Validator) -> None:
    found = errors(v, {"resourceType": "Observation", "status": "final"}, (T + "obs-cat",))
    code = {m for _, _, m in found if m.startswith("Observation.code:")}
    assert code == {f"Observation.code: minimum required = 1, but only found 0 (from {CORE}Observation)",
                    f"Observation.code: minimum required = 1, but only found 0 (from {T}obs-cat)"}
    category = [m for _, _, m in found if m.startswith("Observation.category:")]
    assert len(category) == 1  # the base allows none


def test_unknown_datatype_profile(v: Validator) -> None:
    found = errors(v, {"resourceType": "Organization", "identifier": [{"value": "1"}]}, (T + "org-ident",))
    assert found == [("structure", "Organization.identifier[0]", f"Unknown profile {T}not-loaded")]


def test_contained_siblings_resolve_each_other(v: Validator) -> None:
    lst = {"resourceType": "List", "status": "current", "mode": "snapshot",
           "contained": [{"resourceType": "Appointment", "id": "a", "status": "proposed",
                          "supportingInformation": [{"reference": "#d"}],
                          "participant": [{"actor": {"display": "Fred"}, "status": "accepted"}]},
                         {"resourceType": "Device", "id": "d"}],
           "entry": [{"item": {"reference": "#a"}}]}
    assert not any("not found" in m for _, _, m in errors(v, lst))
    lst["contained"][0]["supportingInformation"] = [{"reference": "#nothing"}]
    assert any("#nothing was not found" in m for _, _, m in errors(v, lst))


def narrative(div: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{div}</div>'}


def test_internal_hyperlinks(v: Validator) -> None:
    good = {"resourceType": "Patient", "text": narrative('<a name="top"> </a><a href="#top">up</a>'
                                                         '<a href="#c1">the contained one</a>'),
            "contained": [{"resourceType": "Device", "id": "c1"}], "extension": [
                {"url": "http://example.org/x", "valueReference": {"reference": "#c1"}}]}
    assert not any("Hyperlink" in m for _, _, m in errors(v, good))
    bad = {"resourceType": "Patient", "text": narrative('<p><a href="#nowhere/x">a <b>link</b></a></p>')}
    assert errors(v, bad) == [("invalid", "Patient.text.div", "Hyperlink '#nowhere/x' for 'a link' does not resolve")]


def test_internal_hyperlinks_between_bundle_entries(v: Validator) -> None:
    def entry(n: int, div: str) -> dict[str, Any]:
        return {"fullUrl": f"urn:uuid:{n}", "resource": {"resourceType": "Basic", "code": {"text": "x"},
                                                         "text": narrative(div)}}

    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        entry(1, '<a name="one">1</a><a href="#two">to 2</a>'), entry(2, '<a name="two">2</a><a href="#one">to 1</a>')]}
    assert not any("Hyperlink" in m for _, _, m in errors(v, bundle))
    # the same instance changed between calls: its targets are collected afresh
    bundle["entry"][1]["resource"]["text"] = narrative('<a href="#one">to 1</a>')
    assert [(e, m) for _, e, m in errors(v, bundle) if "Hyperlink" in m] == [
        ("Bundle.entry[0].resource.text.div", "Hyperlink '#two' for 'to 2' does not resolve")]


def test_narrative_links_in_a_bundle(v: Validator) -> None:
    link = "http://hl7.org/fhir/StructureDefinition/narrativeLink"
    rows = '<table><tr id="r1"><td>a</td></tr><tr id="r2"><td>b</td></tr></table>'
    comp = {"resourceType": "Composition", "status": "final", "type": {"text": "x"}, "date": "2024-01-01",
            "author": [{"display": "me"}], "title": "t", "text": narrative(rows),
            "section": [{"title": "s", "text": narrative('<p id="r2">again</p>')}]}

    def allergy(fragment: str) -> dict[str, Any]:
        return {"resourceType": "AllergyIntolerance", "patient": {"display": "p"},
                "extension": [{"url": link, "valueUrl": f"urn:uuid:c#{fragment}"}]}

    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:c", "resource": comp},
        {"fullUrl": "urn:uuid:a1", "resource": allergy("r1")},
        {"fullUrl": "urn:uuid:a2", "resource": allergy("r2")},
        {"fullUrl": "urn:uuid:a3", "resource": allergy("r3")}]}
    found = [(e, m) for _, e, m in errors(v, bundle)]
    assert ("Bundle", "Can't find 'urn:uuid:c' in the bundle (r3)") in found
    assert ("Bundle", "Found 2 matches for fragment r2 in resource 'urn:uuid:c' in the bundle "
            "(Bundle.entry[2].resource.extension[0].value[x])") in found
    assert not any("(r1)" in m or "fragment r1 " in m for _, m in found)
