"""Consent matched on patient, purpose, recipient, period and data class, from every source format; separate
consent for sensitive data; refusals say what is missing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.exchange.rules import Refused, consent
from gateway.exchange.rules.bundle import patients, subject_key
from gateway.exchange.rules.facts import Transfer
from gateway.exchange.rules.genetic import HGR, census
from tests.gateway.exchange.conftest import SOURCES

PARTNER = {"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "750000001"}
ROUTE = {"id": "t", "destination": {"partner": PARTNER},
         "rules": {"consent": {"required": True,
                               "dataClasses": [{"system": consent.DATA_CLASS, "code": "health"}]}}}


def make(bundle: dict[str, Any], *, separate: bool = False, by_reference: bool = False, **changes: Any
         ) -> dict[str, Any]:
    index, patient = patients(bundle)[0]
    system, value = subject_key(patient)
    by_reference = by_reference or not patient.get("identifier")  # (the eHDSI example's patient has no id)
    who = ({"reference": bundle["entry"][index]["fullUrl"]} if by_reference
           else {"identifier": {"system": system, "value": value}})
    c: dict[str, Any] = {
        "resourceType": "Consent", "id": "c-sep" if separate else "c1", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": who,
        "provision": {"type": "permit", "period": {"start": "2026-01-01", "end": "2026-12-31"},
                      "actor": [{"role": {"coding": [{"system": consent.RECIPIENT_ROLE[0],
                                                      "code": consent.RECIPIENT_ROLE[1]}]},
                                 "reference": {"identifier": PARTNER}}],
                      "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
                      "class": [{"system": consent.DATA_CLASS, "code": "health"},
                                {"system": consent.DATA_CLASS, "code": "genetic"}]}}
    if separate:
        c["category"].append({"coding": [consent.SEPARATE]})
    for path, value in changes.items():
        node = c
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return c


def transfer(*consents: dict[str, Any], day: str = "2026-12-07", purpose: str = "treatment") -> Transfer:
    return Transfer(purpose=purpose, day=day, consents=consents)


@pytest.mark.parametrize("source", list(SOURCES))
def test_a_matching_consent_permits(source: str, converted: dict[str, Any]) -> None:
    bundle = converted[source]
    assert consent.apply(bundle, ROUTE, transfer(make(bundle))).facts["consents"] == ["c1"]
    assert consent.apply(bundle, ROUTE, transfer(make(bundle, by_reference=True))).facts["consents"] == ["c1"]


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize(("change", "said"), [
    ({"status": "inactive"}, "status is 'inactive'"),
    ({"status": "rejected"}, "status is 'rejected'"),
    ({"provision__period": {"start": "2025-01-01", "end": "2025-12-31"}}, "does not cover 2026-12-07"),
    ({"provision__purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}]},
     "does not permit purpose TREAT"),
    ({"provision__actor": []}, "does not name the recipient"),
    ({"provision__class": [{"system": consent.DATA_CLASS, "code": "genetic"}]}, "does not cover data class"),
    ({"provision__type": "deny"}, "does not permit"),
    ({"provision__provision": [{"type": "deny", "purpose": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}]}, "deny provision"),
])
def test_refusals_name_the_reason(source: str, change: dict[str, Any], said: str, converted: dict[str, Any]) -> None:
    bundle = converted[source]
    with pytest.raises(Refused) as e:
        consent.apply(bundle, ROUTE, transfer(make(bundle, **change)))
    assert e.value.rule == "consent" and said in e.value.message
    assert "purpose TREAT" in e.value.satisfy and PARTNER["value"] in e.value.satisfy


@pytest.mark.parametrize("source", list(SOURCES))
def test_absent_or_for_another_patient(source: str, converted: dict[str, Any]) -> None:
    bundle = converted[source]
    with pytest.raises(Refused, match="none was supplied"):
        consent.apply(bundle, ROUTE, transfer())
    other = make(bundle)
    other["patient"] = {"identifier": {"system": "urn:oid:1.2.3", "value": "someone-else"}}
    assert consent.apply(bundle, ROUTE, transfer(make(bundle), other)).facts["consents"] == ["c1"]
    with pytest.raises(Refused, match="none was supplied"):
        consent.apply(bundle, ROUTE, transfer(other))


@pytest.mark.parametrize("source", list(SOURCES))
def test_genetic_content_needs_the_genetic_class(source: str, converted: dict[str, Any]) -> None:
    bundle = converted[source]
    health_only = make(bundle, provision__class=[{"system": consent.DATA_CLASS, "code": "health"}])
    if census(bundle)["class"] == HGR:
        with pytest.raises(Refused, match="genetic"):
            consent.apply(bundle, ROUTE, transfer(health_only))
    else:
        consent.apply(bundle, ROUTE, transfer(health_only))


@pytest.mark.parametrize("source", ["cda-cn", "ws445", "hl7v2"])
def test_separate_consent_for_sensitive_data(source: str, converted: dict[str, Any]) -> None:
    bundle = converted[source]
    route = copy.deepcopy(ROUTE)
    route["rules"]["consent"]["separateConsent"] = True
    with pytest.raises(Refused, match="separate consent"):
        consent.apply(bundle, route, transfer(make(bundle)))
    step = consent.apply(bundle, route, transfer(make(bundle), make(bundle, separate=True)))
    assert step.facts["consents"] == ["c1", "c-sep"]
    expired = make(bundle, separate=True, provision__period={"end": "2026-06-30"})
    with pytest.raises(Refused, match="separate consent"):
        consent.apply(bundle, route, transfer(make(bundle), expired))


@pytest.mark.parametrize("source", ["hl7v2", "vcf"])
def test_withheld_genetic_content_needs_no_genetic_consent(source: str, converted: dict[str, Any]) -> None:
    bundle = converted[source]
    route = copy.deepcopy(ROUTE)
    route["source"] = {"jurisdiction": "CN"}
    route["rules"]["genetic"] = {"filingIds": ["MOST-1"], "onMissing": "withhold"}
    health_only = make(bundle, provision__class=[{"system": consent.DATA_CLASS, "code": "health"}])
    consent.apply(bundle, route, transfer(health_only))  # nothing genetic will leave
    with pytest.raises(Refused, match="genetic"):  # with the filing, it will
        consent.apply(bundle, route, Transfer("treatment", "2026-12-07", consents=(health_only,), filing="MOST-1"))
