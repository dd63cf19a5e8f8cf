"""The mechanisms behind the installed packages' examples validating (issue 14, items 5 and 6), each on its own:
canonicals with `|version`, core-namespace profile names as target profiles, discriminators that reach into
re-sliced elements (blood-pressure components, IPS Bundle.entry:composition), rng-2 on Quantities with and without
units, and `urn:uuid:` references no entry of a transaction or batch carries."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from mappers.exceptions import Issue
from profiles.context import load
from profiles.definitions import same_canonical
from profiles.packages import cache_dir
from profiles.validator import Validator

CORE = "http://hl7.org/fhir/StructureDefinition/"
TEST = "http://example.org/fhir/helixgate-test/StructureDefinition/"
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
VITAL = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}


def profile(name: str, rtype: str, elements: list[dict[str, Any]], version: str = "1.0.0") -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "url": TEST + name, "version": version, "name": name,
            "status": "draft", "kind": "resource", "abstract": False, "type": rtype, "derivation": "constraint",
            "baseDefinition": CORE + rtype, "differential": {"element": elements}}


PROFILES = [
    # a reference whose target profiles pin the core version, as IPS's do
    profile("patient-versioned-target", "Patient", [
        {"id": "Patient.managingOrganization", "path": "Patient.managingOrganization",
         "type": [{"code": "Reference", "targetProfile": [CORE + "Organization|4.0.1"]}]},
        {"id": "Patient.generalPractitioner", "path": "Patient.generalPractitioner",
         "type": [{"code": "Reference", "targetProfile": [TEST + "org-named|1.0.0"]}]}]),
    profile("org-named", "Organization", [{"id": "Organization.name", "path": "Organization.name", "min": 1}]),
    # a target profile in the core namespace that names a profile, not a type (IPS's vital-signs section)
    profile("panel-of-vital-signs", "Observation", [
        {"id": "Observation.hasMember", "path": "Observation.hasMember",
         "type": [{"code": "Reference", "targetProfile": [CORE + "vitalsigns"]}]}]),
]


@pytest.fixture(scope="module")
def v() -> Validator:
    defs = load()  # the default packages: R4 core, Genomics Reporting, IPS (and what they depend on)
    defs.add(PROFILES)
    return Validator(defs)


def errors(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.expression or "", i.message) for i in issues if i.severity in ("error", "fatal")]


def collection(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in resources]}


def heart_rate(oid: str = "hr") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "category": [VITAL],
            "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2024-05-01T10:00:00Z",
            "valueQuantity": {"value": 72, "unit": "beats/minute", "system": UCUM, "code": "/min"}}


PATIENT = {"resourceType": "Patient", "id": "p"}


# ---- canonicals with |version ----
def test_same_canonical_ignores_a_version_only_one_side_pins() -> None:
    assert same_canonical(CORE + "Organization|4.0.1", CORE + "Organization")
    assert same_canonical(CORE + "Organization", CORE + "Organization|4.0.1")
    assert not same_canonical(CORE + "Organization|4.0.1", CORE + "Organization|5.0.0")
    assert not same_canonical(CORE + "Organization|4.0.1", CORE + "Patient|4.0.1")


def test_versioned_core_target_profile_accepts_its_type(v: Validator) -> None:
    patient = {"resourceType": "Patient", "id": "p", "meta": {"profile": [TEST + "patient-versioned-target"]},
               "managingOrganization": {"reference": "Organization/o"}}
    assert errors(v.validate(collection(patient, {"resourceType": "Organization", "id": "o", "name": "Lab"}))) == []


def test_versioned_core_target_profile_refuses_another_type_naming_the_type(v: Validator) -> None:
    patient = {"resourceType": "Patient", "id": "p", "meta": {"profile": [TEST + "patient-versioned-target"]},
               "managingOrganization": {"reference": "Practitioner/d"}}
    found = errors(v.validate(collection(patient, {"resourceType": "Practitioner", "id": "d"})))
    where = "Bundle.entry[0].resource.managingOrganization"
    assert (where, "Invalid Resource target type. Found Practitioner, but expected one of (Organization)") in found


def test_versioned_target_profile_of_a_package_profile_is_checked_on_the_target(v: Validator) -> None:
    patient = {"resourceType": "Patient", "id": "p", "meta": {"profile": [TEST + "patient-versioned-target"]},
               "generalPractitioner": [{"reference": "Organization/o"}]}
    named = {"resourceType": "Organization", "id": "o", "name": "Lab"}
    assert errors(v.validate(collection(patient, named))) == []
    found = errors(v.validate(collection(patient, {"resourceType": "Organization", "id": "o"})))
    assert any(w == "Bundle.entry[0].resource.generalPractitioner[0]" and "Unable to find a profile match" in m
               and "org-named|1.0.0" in m for w, m in found), found


def test_a_profile_claimed_with_its_version_is_applied(v: Validator) -> None:
    org = {"resourceType": "Organization", "id": "o", "meta": {"profile": [TEST + "org-named|1.0.0"]}}
    found = errors(v.validate(org))
    assert any("Organization.name: minimum required = 1" in m for _, m in found), found
    assert v.node(TEST + "org-named|1.0.0") is v.node(TEST + "org-named")  # one compiled checker for both


# ---- a core-namespace profile as target profile ----
def test_core_profile_target_is_an_observation_profile_not_a_type(v: Validator) -> None:
    panel = {"resourceType": "Observation", "id": "panel", "meta": {"profile": [TEST + "panel-of-vital-signs"]},
             "status": "final", "code": {"text": "vital signs"}, "hasMember": [{"reference": "Observation/hr"}]}
    assert errors(v.validate(collection(panel, heart_rate(), PATIENT))) == []


def test_core_profile_target_refuses_another_type(v: Validator) -> None:
    panel = {"resourceType": "Observation", "id": "panel", "meta": {"profile": [TEST + "panel-of-vital-signs"]},
             "status": "final", "code": {"text": "vital signs"}, "hasMember": [{"reference": "Patient/p"}]}
    found = errors(v.validate(collection(panel, PATIENT)))
    assert ("Bundle.entry[0].resource.hasMember[0]",
            "Invalid Resource target type. Found Patient, but expected one of (Observation)") in found


def test_core_profile_target_must_be_met_by_the_target(v: Validator) -> None:
    not_vital = heart_rate()
    not_vital.update(category=[], code={"text": "mood"})
    del not_vital["category"]
    panel = {"resourceType": "Observation", "id": "panel", "meta": {"profile": [TEST + "panel-of-vital-signs"]},
             "status": "final", "code": {"text": "vital signs"}, "hasMember": [{"reference": "Observation/hr"}]}
    found = errors(v.validate(collection(panel, not_vital, PATIENT)))
    assert any(w == "Bundle.entry[0].resource.hasMember[0]" and "Unable to find a profile match" in m
               and CORE + "vitalsigns" in m for w, m in found), found


# ---- slices whose discriminator reaches into a re-sliced element ----
def blood_pressure(*components: tuple[str, float]) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "bp", "meta": {"profile": [CORE + "bp"]}, "status": "final",
            "category": [VITAL], "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2024-05-01T10:00:00Z",
            "component": [{"code": {"coding": [{"system": LOINC, "code": code}]},
                           "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}
                          for code, value in components]}


@pytest.mark.parametrize("order", [("8480-6", "8462-4"), ("8462-4", "8480-6")])
def test_blood_pressure_components_fall_in_their_own_slices(v: Validator, order: tuple[str, str]) -> None:
    assert errors(v.validate(blood_pressure((order[0], 120), (order[1], 80)))) == []


def test_blood_pressure_without_diastolic_misses_that_slice(v: Validator) -> None:
    found = errors(v.validate(blood_pressure(("8480-6", 120), ("8480-6", 121))))
    assert ("Observation", "Slice 'Observation.component:DiastolicBP': a matching slice is required, but not found "
            f"(from {CORE}bp)") in found
    assert any("Observation.component:SystolicBP: max allowed = 1, but found 2" in m for _, m in found), found


def ips_example(name: str) -> dict[str, Any]:
    return orjson.loads((cache_dir() / "hl7.fhir.uv.ips#2.0.0" / "package" / "example" / name).read_bytes())


def test_ips_minimal_bundle_has_its_composition_slice(v: Validator) -> None:
    bundle = ips_example("Bundle-bundle-minimal.json")
    assert not any("entry:composition" in m for _, m in errors(v.validate(bundle)))
    without = copy.deepcopy(bundle)
    without["entry"] = without["entry"][1:]
    assert any(w == "Bundle" and "Slice 'Bundle.entry:composition': a matching slice is required" in m
               for w, m in errors(v.validate(without)))


# ---- rng-2 ----
def quantity(value: float, code: str | None = None, unit: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if code:
        q.update(system=UCUM, code=code)
    if unit:
        q["unit"] = unit
    return q


@pytest.mark.parametrize(("low", "high", "fails"), [
    (quantity(5), quantity(3), True),  # no unit on either: numbers
    (quantity(3), quantity(5), False),
    (quantity(5, "mg"), quantity(3, "mg"), True),
    (quantity(5, "kg"), quantity(3, "g"), True),  # UCUM codes that convert
    (quantity(5, "g"), quantity(3, "kg"), False),
    (quantity(5, unit="tablets"), quantity(3, unit="tablets"), True),  # the same free-text unit
    (quantity(5, unit="tablets"), quantity(3, unit="capsules"), False),  # units that do not compare
    (quantity(5, "mg"), quantity(3, "mL"), False),
    (quantity(4), quantity(4), False),
])
def test_rng_2_compares_low_and_high(v: Validator, low: dict[str, Any], high: dict[str, Any], fails: bool) -> None:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "dose"},
           "valueRange": {"low": low, "high": high}}
    rng2 = [m for w, m in errors(v.validate(obs)) if "rng-2" in m]
    assert bool(rng2) == fails, rng2


# ---- urn:uuid references in transactions and batches ----
def bundle_with_reference(btype: str, carried: bool) -> dict[str, Any]:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "urn:uuid:2d7b8a5e-9f31-4f55-8a0c-5b8f0d3c1a22"}}
    entries = [{"fullUrl": "urn:uuid:7f0c1f1e-4c5a-4d7c-9c2e-0f3b5a6d7e88", "resource": obs}]
    if carried:
        entries.append({"fullUrl": "urn:uuid:2d7b8a5e-9f31-4f55-8a0c-5b8f0d3c1a22",
                        "resource": {"resourceType": "Patient"}})
    if btype in ("transaction", "batch"):
        for e in entries:
            e["request"] = {"method": "POST", "url": e["resource"]["resourceType"]}
    return {"resourceType": "Bundle", "type": btype, "entry": entries}


def unresolved(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.expression == "Bundle.entry[0].resource.subject" and "resolve" in i.message]


@pytest.mark.parametrize("btype", ["transaction", "batch"])
def test_unresolvable_urn_uuid_in_a_transaction_or_batch_is_an_error(v: Validator, btype: str) -> None:
    found = unresolved(v.validate(bundle_with_reference(btype, carried=False)))
    assert [(i.severity, i.code) for i in found] == [("error", "not-found")], found
    assert "no server can resolve it" in found[0].message
    assert unresolved(v.validate(bundle_with_reference(btype, carried=True))) == []


def test_unresolved_urn_uuid_in_a_collection_stays_a_warning(v: Validator) -> None:
    found = unresolved(v.validate(bundle_with_reference("collection", carried=False)))
    assert [(i.severity, i.code) for i in found] == [("warning", "not-found")], found


def test_urn_uuid_inside_a_bundle_nested_in_a_transaction_is_not_the_transactions_business(v: Validator) -> None:
    inner = bundle_with_reference("collection", carried=True)
    outer = {"resourceType": "Bundle", "type": "transaction",
             "entry": [{"fullUrl": "urn:uuid:0b9d3c4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "resource": inner,
                        "request": {"method": "POST", "url": "Bundle"}}]}
    found = [i for i in v.validate(outer) if i.expression == "Bundle.entry[0].resource.entry[0].resource.subject"]
    assert not any(i.severity == "error" for i in found), found
