"""Smaller validator behaviours: JSON comments, HTML in markdown, example URLs, display names, vital-signs
profiles by code, ImplementationGuide global profiles, profile extensions (mustHaveValue, valueAlternatives,
additional bindings, narrative source/language control) and extension contexts."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from mappers.exceptions import Issue
from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.jsonc import loads, strip_comments
from profiles.packages import closure, conformance_resources
from profiles.validator import Validator
from profiles.xml import xml_to_json
from tests.profiles import corpus

BASE = ("hl7.fhir.r4.core#4.0.1", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1")
X5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition."
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"


def read(name: str) -> dict[str, Any]:
    data = corpus.case_file(name).read_bytes()
    return xml_to_json(data, None) if name.endswith(".xml") else orjson.loads(data)


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return list(conformance_resources(closure(BASE), CONFORMANCE_TYPES))


@pytest.fixture(scope="module")
def validator(base: list[dict[str, Any]]) -> Validator:
    return Validator(Definitions(base), security_checks=False)


def with_defs(base: list[dict[str, Any]], *extra: dict[str, Any], **options: Any) -> Validator:
    return Validator(Definitions([*base, *extra]), security_checks=False, **options)


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity in ("error", "fatal")]


def profile(url: str, rtype: str, elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "url": url, "name": "P", "status": "draft", "kind": "resource",
            "abstract": False, "type": rtype, "derivation": "constraint",
            "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{rtype}", "differential": {"element": elements}}


# ---- JSON comments ----
def test_strip_comments_keeps_strings_and_positions() -> None:
    text = '// head\n{"a": "x // not a comment", /* c */ "b": "/* nor this */"}\n'
    out = strip_comments(text)
    assert orjson.loads(out) == {"a": "x // not a comment", "b": "/* nor this */"}
    assert len(out) == len(text.encode()) and out.count(b"\n") == text.count("\n")
    assert loads('{"a": "\\"//"} // tail', allow_comments=True) == {"a": '"//'}
    with pytest.raises(orjson.JSONDecodeError):
        loads("// c\n{}")


@pytest.mark.parametrize("name", ["json-comments-1.json", "json-comments-2.json"])
def test_corpus_json_with_comments_reads_and_validates(validator: Validator, name: str) -> None:
    resource = loads(corpus.case_file(name).read_bytes(), allow_comments=True)
    assert errors(validator.validate(resource)) == []


# ---- HTML in markdown ----
def test_html_in_markdown_warning_by_default_error_when_asked(base: list[dict[str, Any]],
                                                               validator: Validator) -> None:
    comm = read("bad-markdown.json")
    found = [i for i in validator.validate(comm) if "embedded HTML tag" in i.message]
    assert [(i.severity, i.expression) for i in found] == [("warning", "Communication.note[0].text")]
    assert "starting at '<r'" in found[0].message
    strict = with_defs(base, html_in_markdown="error")
    assert [(i.severity, i.code, i.expression) for i in errors(strict.validate(comm))] == [
        ("error", "invalid", "Communication.note[0].text")]
    plain = copy.deepcopy(comm)
    plain["note"][0]["text"] = "a < b and **bold**"
    assert errors(strict.validate(plain)) == []


# ---- example URLs ----
def test_example_urls_refused_when_examples_are_off(base: list[dict[str, Any]], validator: Validator) -> None:
    no_examples = with_defs(base, examples=False)
    doc = read("dr-example-org.json")
    assert errors(validator.validate(doc)) == []
    got = errors(no_examples.validate(doc))
    assert [(i.code, i.expression) for i in got] == [("invalid", "DocumentReference.content[0].attachment.url")]
    assert "Example URLs are not allowed" in got[0].message
    pat = read("pat-example-ext.json")
    assert errors(validator.validate(pat)) == []
    got = errors(no_examples.validate(pat))
    assert {i.expression for i in got} == {"Patient.birthDate.extension[0]", "Patient.birthDate.extension[0].url"}


# ---- display names ----
def relationship(code: str, display: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "contact": [{"name": {"text": "x"}, "relationship": [
        {"coding": [{"system": V2_0131, "code": code, "display": display}]}]}]}


def test_display_checked_against_code_system_designations(validator: Validator) -> None:
    got = errors(validator.validate(relationship("C", "alt-display")))
    assert [(i.code, i.expression) for i in got] == [
        ("invalid", "Patient.contact[0].relationship[0].coding[0].display")]
    assert "Wrong Display Name 'alt-display'" in got[0].message and "'Emergency Contact'" in got[0].message
    assert errors(validator.validate(relationship("C", "emergency  contact"))) == []  # case, whitespace
    assert errors(validator.validate(relationship("C", "Ansprechpartner in Notfällen"))) == []  # designation


def test_display_given_by_the_bound_value_set_is_accepted(base: list[dict[str, Any]]) -> None:
    sd = read("patient-translated-codes.profile.xml")
    v = with_defs(base, sd)
    pat = read("patient-translated-codes.xml")
    assert len(errors(v.validate(pat))) == 2
    assert errors(v.validate(pat, [sd["url"]])) == []


# ---- vital signs ----
def test_vital_signs_profile_applied_by_code(validator: Validator) -> None:
    obs = read("obs-temp-bad.json")
    issues = validator.validate(obs)
    assert any("Body temperature profile" in i.message and i.severity == "information" for i in issues)
    assert errors(issues) and all(i.expression.startswith("Observation") for i in errors(issues))
    good = copy.deepcopy(obs)
    good["code"]["coding"].append({"system": "http://loinc.org", "code": "8310-5"})
    assert errors(validator.validate(good)) == []
    requested = validator.validate(obs, ["http://hl7.org/fhir/StructureDefinition/bodytemp"])
    assert not any("Body temperature profile" in i.message for i in requested)  # checked as a requested profile
    assert len(errors(requested)) == len(errors(issues))
    other = copy.deepcopy(obs)
    other["code"] = {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}
    assert not any("Body temperature" in i.message for i in validator.validate(other))


# ---- global profiles ----
def test_implementation_guide_global_profile(base: list[dict[str, Any]]) -> None:
    sd = read("patient-ig-sd.json")
    v = with_defs(base, read("patient-ig-ig.json"), sd)
    bad = read("patient-ig-bad.json")
    issues = v.validate(bad)
    got = errors(issues)
    assert len(got) == 1 and "Patient.name: minimum required = 1" in got[0].message
    assert any("a global profile in" in i.message for i in issues)
    # asked for explicitly, the profile is checked once, as a requested one
    requested = v.validate(bad, [sd["url"]])
    assert len(errors(requested)) == 1 and not any("a global profile in" in i.message for i in requested)
    assert errors(v.validate({"resourceType": "Patient", "name": [{"family": "x"}]})) == []


# ---- profile extensions ----
def test_must_have_value(base: list[dict[str, Any]]) -> None:
    url = "http://example.org/StructureDefinition/mhv"
    sd = profile(url, "Patient", [{"id": "Patient.active", "path": "Patient.active", "extension": [
        {"url": X5 + "mustHaveValue", "valueBoolean": True}]}])
    v = with_defs(base, sd)
    absent = {"resourceType": "Patient", "_active": {"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}}
    got = errors(v.validate(absent, [url]))
    assert [(i.code, i.expression) for i in got] == [("invalid", "Patient.active")]
    assert "requires that a value be present" in got[0].message
    assert errors(v.validate({"resourceType": "Patient", "active": True}, [url])) == []
    assert errors(v.validate(absent)) == []  # only under the profile


def test_value_alternatives_corpus(base: list[dict[str, Any]]) -> None:
    sd = read("patient-profile-value-alternative.xml")
    v = with_defs(base, sd)
    assert errors(v.validate(read("patient-value-alternative-good.xml"), [sd["url"]])) == []
    got = errors(v.validate(read("patient-value-alternative-bad.xml"), [sd["url"]]))
    assert [(i.code, i.expression) for i in got] == [("invalid", "Patient.active")]


def test_additional_binding_required(base: list[dict[str, Any]]) -> None:
    sd = read("additional-bindings-profile-2.json")
    v = with_defs(base, sd, read("additional-bindings-vs1.json"))
    obs = read("additional-bindings-observation.json")
    got = errors(v.validate(obs, [sd["url"]]))
    assert [(i.code, i.expression) for i in got] == [("code-invalid", "Observation.code")]
    assert "additional binding" in got[0].message
    ok = copy.deepcopy(obs)
    ok["code"]["coding"][0]["code"] = "100065-2"
    assert errors(v.validate(ok, [sd["url"]])) == []


@pytest.mark.parametrize(("instance", "profile_file", "expected"), [
    ("xhtml-ctrl-source1.xml", "xhtml-ctrl-source-profile.xml", 2),
    ("xhtml-ctrl-lang-none.xml", "xhtml-ctrl-no-lang-profile.xml", 0),
    ("xhtml-ctrl-lang-none.xml", "xhtml-ctrl-yes-lang-profile.xml", 1),
    ("xhtml-ctrl-lang-two.xml", "xhtml-ctrl-no-lang-profile.xml", 1),
    ("xhtml-ctrl-lang-two.xml", "xhtml-ctrl-yes-lang-profile.xml", 0),
    ("xhtml-ctrl-lang-two.xml", "xhtml-ctrl-rl-lang-profile.xml", 0),
    ("xhtml-ctrl-lang-twob.xml", "xhtml-ctrl-no-lang-profile.xml", 1),
    ("xhtml-ctrl-lang-twob.xml", "xhtml-ctrl-yes-lang-profile.xml", 0),
    ("xhtml-ctrl-lang-twob.xml", "xhtml-ctrl-rl-lang-profile.xml", 1),
])
def test_narrative_controls(base: list[dict[str, Any]], instance: str, profile_file: str, expected: int) -> None:
    sd = read(profile_file)
    v = with_defs(base, sd)
    got = errors(v.validate(read(instance), [sd["url"]]))
    assert len(got) == expected
    assert all(i.code == "business-rule" and i.expression == "Patient.text" for i in got)
    assert errors(v.validate(read(instance))) == []


# ---- extension contexts ----
def test_extension_context_of_type_extension_names_the_extension(base: list[dict[str, Any]]) -> None:
    v = with_defs(base, read("ext-ctxt-defn.xml"))
    got = errors(v.validate(read("ext-ctxt-bad-ext.xml")))
    assert len(got) == 1 and "not allowed to be used at this point" in got[0].message
    assert got[0].expression.startswith("Patient.extension[0].value")


def test_extension_context_invariant(base: list[dict[str, Any]]) -> None:
    v = with_defs(base, read("extb-ctxt-defn.xml"))
    bad = read("extb-ctxt-bad.xml")
    got = errors(v.validate(bad))
    assert len(got) == 1 and "context invariant 'Patient.active.not()'" in got[0].message
    good = copy.deepcopy(bad)
    good.pop("active")
    assert errors(v.validate(good)) == []


def test_display_in_a_language_the_code_system_lacks_is_a_warning(validator) -> None:  # type: ignore[no-untyped-def]
    coding = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H",
              "display": "偏高"}
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "血红蛋白"},
           "interpretation": [{"coding": [coding]}]}
    def displays(res):  # type: ignore[no-untyped-def]
        return [(i.severity, i.expression) for i in validator.validate(res) if "Wrong Display Name" in i.message]
    where = "Observation.interpretation[0].coding[0].display"
    assert displays(obs) == [("error", where)]
    assert displays({**obs, "language": "zh-CN"}) == [("warning", where)]
    assert displays({**obs, "language": "en-US"}) == [("error", where)]
