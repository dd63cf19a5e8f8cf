"""SMART scopes: the parser (v2, v1, URI form, narrowing, operation scopes; everything else fails closed), what they
grant, and the route table's reading of FHIR REST requests."""

from __future__ import annotations

import pytest

from gateway.auth.compartment import COMPARTMENT, narrowing, references_patient
from gateway.auth.scopes import Grant, broadest, grants, grants_operation, parse, parse_all
from gateway.auth.table import includes, rest_need


@pytest.mark.parametrize(("text", "context", "resource", "letters"), [
    ("system/Observation.rs", "system", "Observation", "rs"),
    ("patient/*.cruds", "patient", "*", "cruds"),
    ("user/Encounter.cud", "user", "Encounter", "cud"),
    ("system/Patient.r", "system", "Patient", "r"),
    ("system/Patient.s", "system", "Patient", "s"),
    ("patient/Observation.read", "patient", "Observation", "rs"),  # v1
    ("user/*.write", "user", "*", "cud"),
    ("system/*.*", "system", "*", "cruds"),
    ("http://smarthealthit.org/fhir/scopes/system/Observation.rs", "system", "Observation", "rs"),
])
def test_resource_scopes(text: str, context: str, resource: str, letters: str) -> None:
    s = parse(text)
    assert s is not None
    assert (s.context, s.resource, s.interactions, s.operation, s.narrowing) == (context, resource, letters, None, ())


def test_search_narrowed_scope() -> None:
    s = parse("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory")
    assert s is not None and s.interactions == "rs"
    assert s.narrowing == (("category", "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"),)
    two = parse("system/Observation.rs?category=laboratory&status=final")
    assert two is not None and two.narrowing == (("category", "laboratory"), ("status", "final"))


@pytest.mark.parametrize("text", ["system/$convert", "user/$validate", "patient/$translate",
                                  "http://smarthealthit.org/fhir/scopes/system/$convert"])
def test_operation_scopes(text: str) -> None:
    s = parse(text)
    assert s is not None and s.operation == text.rsplit("$", 1)[1] and s.resource is None and not s.interactions


@pytest.mark.parametrize("text", [
    "", "openid", "fhirUser", "launch", "launch/patient", "offline_access",  # not resource scopes: nothing here
    "system/Observation.sr", "system/Observation.rr", "system/Observation.dus", "system/Observation.x",  # letters
    "system/Observation.", "system/Observation.all", "system/*.all", "system/Observation.read*",
    "admin/Observation.rs", "System/Observation.rs", "system/observation.rs", "system/Observation",  # context, type
    "system/Observation.rs ", " system/Observation.rs", "system/Obs ervation.rs", "system//Observation.rs",
    "system/$export", "system/$Convert", "system/$convert.rs", "system/ConceptMap.$translate",  # unknown operation
    "system/Observation.read?category=lab",  # v1 has no narrowing
    "system/Observation.rs?", "system/Observation.rs?category", "system/Observation.rs?=lab",  # malformed narrowing
    "system/Observation.rs?code:in=http://vs", "system/Observation.rs?subject.name=x",  # modifier, chain
    "system/Observation.rs?_has:Group:member:_id=1", "system/Observation.rs?_include=Observation:subject",
    "https://smarthealthit.org/fhir/scopes/system/Observation.rs", "urn:system/Observation.rs",
    "system/Observation.rs" + "x" * 2000,
])
def test_malformed_or_unknown_scopes_grant_nothing(text: str) -> None:
    assert parse(text) is None
    assert parse_all([text]) == ()


def test_parse_all_takes_a_token_scope_string_and_drops_what_it_cannot_read() -> None:
    got = parse_all("openid fhirUser system/Observation.rs system/$convert system/Foo.xyz")
    assert [s.text for s in got] == ["system/Observation.rs", "system/$convert"]
    assert grants_operation(got, "convert") and not grants_operation(got, "validate")


def test_what_a_scope_grants() -> None:
    scopes = parse_all(["system/Observation.rs", "user/*.c"])
    assert grants(scopes, "Observation", "r", patient=None, in_compartment=True) == (
        Grant(scope="system/Observation.rs"),)
    assert grants(scopes, "Observation", "u", patient=None, in_compartment=True) == ()
    assert grants(scopes, "Patient", "c", patient=None, in_compartment=True) == (Grant(scope="user/*.c"),)
    assert grants(scopes, "Patient", "r", patient=None, in_compartment=True) == ()
    assert grants(parse_all(["system/$convert"]), "Observation", "r", patient=None, in_compartment=True) == ()


def test_patient_scopes_need_a_patient_and_the_compartment() -> None:
    scopes = parse_all(["patient/*.rs"])
    assert grants(scopes, "Observation", "r", patient=None, in_compartment=True) == ()
    assert grants(scopes, "Practitioner", "r", patient="p1", in_compartment=False) == ()
    (g,) = grants(scopes, "Observation", "s", patient="p1", in_compartment=True)
    assert g.patient == "p1" and g.restricted and g.constraints() == {("patient", "p1")}


def test_narrowed_scopes_grant_reads_searches_and_deletes_never_writes() -> None:
    scopes = parse_all(["system/Observation.cruds?category=laboratory"])
    for letter in "rsd":
        (g,) = grants(scopes, "Observation", letter, patient=None, in_compartment=True)
        assert g.narrowing == (("category", "laboratory"),)
    for letter in "cu":
        assert grants(scopes, "Observation", letter, patient=None, in_compartment=True) == ()


def test_an_unrestricted_scope_wins_over_narrowed_ones() -> None:
    scopes = parse_all(["patient/Observation.rs", "system/Observation.rs?category=lab", "user/Observation.r"])
    assert grants(scopes, "Observation", "r", patient="p1", in_compartment=True) == (
        Grant(scope="user/Observation.r"),)


def test_broadest_of_alternatives() -> None:
    plain = Grant("p1", (), "patient/Observation.rs")
    lab = Grant("p1", (("category", "lab"),), "patient/Observation.rs?category=lab")
    system_lab = Grant(None, (("category", "lab"),), "system/Observation.rs?category=lab")
    vital = Grant(None, (("category", "vital-signs"),), "system/Observation.rs?category=vital-signs")
    assert broadest((lab, plain)) is plain  # a subset of the constraints is the wider grant
    assert broadest((system_lab, vital)) is None  # OR of two narrowings: the client must pick one
    assert broadest((system_lab, vital), [("category", "vital-signs")]) is vital
    assert broadest((plain, system_lab), [("category", "lab"), ("code", "x")]) is system_lab
    assert broadest(()) is None


def test_compartment_narrowing_and_membership() -> None:
    assert narrowing("Observation", "p1") == ("subject", "Patient/p1")
    assert narrowing("Condition", "p1") == ("patient", "Patient/p1")
    assert narrowing("Patient", "p1") == ("_id", "p1")
    assert narrowing("Practitioner", "p1") is None
    assert len(COMPARTMENT) == 65  # R4 CompartmentDefinition/patient: 66 types with parameters, Patient apart
    obs = {"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}
    assert references_patient(obs, "p1") and not references_patient(obs, "p2")
    assert not references_patient({**obs, "subject": {"reference": "http://elsewhere/fhir/Patient/p1"}}, "p1")
    assert references_patient({**obs, "subject": {"reference": "Patient/p1/_history/3"}}, "p1")
    appt = {"resourceType": "Appointment", "participant": [{"actor": {"reference": "Practitioner/x"}},
                                                           {"actor": {"reference": "Patient/p1"}}]}
    assert references_patient(appt, "p1")
    assert references_patient({"resourceType": "Patient", "id": "p1"}, "p1")
    assert not references_patient({"resourceType": "Practitioner", "id": "p1"}, "p1")


@pytest.mark.parametrize(("method", "path", "needed", "search", "target", "unrestricted"), [
    ("GET", "Observation", (("Observation", "s"),), "Observation", None, False),
    ("GET", "Observation/1", (("Observation", "r"),), None, ("Observation", "1"), False),
    ("HEAD", "Observation/1", (("Observation", "r"),), None, ("Observation", "1"), False),
    ("GET", "Observation/1/_history", (("Observation", "r"),), None, ("Observation", "1"), False),
    ("GET", "Observation/1/_history/2", (("Observation", "r"),), None, ("Observation", "1"), False),
    ("GET", "Observation/_history", (("Observation", "s"),), None, None, True),
    ("GET", "Patient/1/Observation", (("Observation", "s"),), "Observation", None, False),
    ("GET", "Patient/1/*", (("*", "s"),), None, None, True),
    ("GET", "Patient/1/$everything", (("*", "r"), ("*", "s")), None, None, True),
    ("GET", "Observation/$lastn", (("*", "r"), ("*", "s")), None, None, True),
    ("POST", "Observation", (("Observation", "c"),), None, None, False),
    ("PUT", "Observation/1", (("Observation", "u"),), None, ("Observation", "1"), False),
    ("PUT", "Observation", (("Observation", "u"),), "Observation", None, False),  # conditional update
    ("DELETE", "Observation/1", (("Observation", "d"),), None, ("Observation", "1"), False),
    ("PATCH", "Observation/1", (("Observation", "u"),), None, ("Observation", "1"), False),
    ("POST", "Observation/$validate", tuple(("*", c) for c in "cruds"), None, None, True),
    ("GET", "metadata", (("*", "r"), ("*", "s")), None, None, True),  # not a type
])
def test_rest_requests_map_to_smart_interactions(method: str, path: str, needed: tuple, search: str | None,
                                                 target: tuple | None, unrestricted: bool) -> None:
    need = rest_need(method, path.split("/"), [])
    assert (need.resources, need.search, need.target, need.unrestricted) == (needed, search, target, unrestricted)


def test_include_targets() -> None:
    assert includes([("_include", "Observation:subject:Patient"), ("_revinclude", "Provenance:target")]) == (
        "Patient", "Provenance")
    assert includes([("_include", "Observation:subject")]) == ("*",)  # any type the reference may name
    assert includes([("_include:iterate", "*")]) == ("*",)
    assert includes([("_include", "garbage")]) == ("*",)
    assert includes([("code", "x")]) == ()
