"""Property tests (hypothesis) of a pseudonymising route: no source identifier, name, address, phone or exact birth
date anywhere in the output bytes (narrative, extensions, references included), from generated FHIR and HL7 v2
inputs; the same pseudonyms twice; a refused transfer leaves no output, no counter change and no delivery."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.exchange.counters import MemoryCounters
from gateway.exchange.pipeline import apply_rules, run
from gateway.exchange.routes import load
from gateway.exchange.rules import Refused
from gateway.exchange.rules.facts import Transfer
from gateway.exchange.service import LocalEngine
from gateway.exchange.trail import MemoryTrail
from mappers.hl7v2.format import FORMAT as HL7V2
from mappers.toolkit.registry import ConvertOptions
from tests.gateway.exchange.conftest import ROUTES, source_bytes

ROUTES_LOADED = load(ROUTES)
RESEARCH = Transfer("research", "2026-12-07", ("EU-SCC-2021-914-M1-0007",))
NAME = st.from_regex(r"Zq[a-z]{6,10}", fullmatch=True)
IDENT = st.from_regex(r"ID[0-9]{6,10}", fullmatch=True)
PHONE = st.from_regex(r"\+[1-9][0-9]{8,11}", fullmatch=True)
STREET = st.from_regex(r"Qx[a-z]{5,9}strasse [1-9][0-9]?", fullmatch=True)
BIRTH = st.dates(min_value=date(1920, 1, 1), max_value=date(2005, 12, 31))
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _person(ident: str, family: str, given_name: str, phone: str, street: str, born: date) -> dict[str, Any]:
    div = f'<div xmlns="http://www.w3.org/1999/xhtml">{given_name} {family}, {born.isoformat()}, {ident}</div>'
    return {
        "resourceType": "Patient", "id": "p1", "text": {"status": "generated", "div": div},
        "identifier": [{"system": "urn:oid:1.2.276.0.76.4.8", "value": ident}],
        "name": [{"family": family, "given": [given_name], "text": f"{given_name} {family}"}],
        "telecom": [{"system": "phone", "value": phone}],
        "address": [{"line": [street], "city": "Heidelberg", "country": "DE"}],
        "birthDate": born.isoformat(), "gender": "female",
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                       "valueString": family}],
    }


def _bundle(person: dict[str, Any], family: str, ident: str, phone: str) -> dict[str, Any]:
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
           "subject": {"reference": "Patient/p1", "display": family},
           "valueQuantity": {"value": 13.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
           "note": [{"text": f"drawn from {family}"}],
           "identifier": [{"system": "urn:oid:1.2.3.4", "value": ident + "-o"}],
           "contained": [{"resourceType": "RelatedPerson", "id": "mother", "patient": {"reference": "Patient/p1"},
                          "name": [{"family": family, "given": ["Mother"]}],
                          "telecom": [{"system": "phone", "value": phone}]}],
           "performer": [{"reference": "#mother"}]}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": person},
                      {"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "resource": obs}]}


def _secrets(ident: str, family: str, given_name: str, phone: str, street: str, born: date) -> list[str]:
    return [ident, family, given_name, phone, street, born.isoformat(), born.strftime("%Y%m%d")]


def _research(bundle: dict[str, Any]) -> bytes:
    out, _, _, _ = apply_rules(bundle, ROUTES_LOADED.get("eu-cn-research"), RESEARCH, ROUTES_LOADED)
    return orjson.dumps(out)


@PROPS
@given(IDENT, NAME, NAME, PHONE, STREET, BIRTH)
def test_fhir_input_leaves_no_identity(ident: str, family: str, given_name: str, phone: str, street: str,
                                       born: date) -> None:
    bundle = _bundle(_person(ident, family, given_name, phone, street, born), family, ident, phone)
    out = _research(bundle)
    for secret in _secrets(ident, family, given_name, phone, street, born):
        assert secret.encode() not in out, secret
    assert out == _research(bundle)  # the same pseudonyms (and bytes) twice


@PROPS
@given(IDENT, NAME, NAME, PHONE, STREET, BIRTH)
def test_hl7v2_input_leaves_no_identity(ident: str, family: str, given_name: str, phone: str, street: str,
                                        born: date) -> None:
    message = source_bytes("hl7v2").decode()
    pid = (f"PID|1||{ident}^^^HOSP-A&2.16.840.1.113883.19.5&ISO^MR||{family}^{given_name}||{born.strftime('%Y%m%d')}"
           f"|F|||{street}^^Heidelberg^^69117^DE||{phone}")
    lines = [pid if line.startswith("PID|") else line for line in message.replace("\n", "\r").split("\r")]
    assert HL7V2.to_fhir is not None
    bundle = HL7V2.to_fhir("\r".join(lines).encode(), ConvertOptions()).bundle
    assert ident.encode() in orjson.dumps(bundle) and family.encode() in orjson.dumps(bundle)  # the input has them
    out = _research(bundle)
    for secret in _secrets(ident, family, given_name, phone, street, born):
        assert secret.encode() not in out, secret
    assert out == _research(bundle)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["research", "treatment"]), st.sampled_from([(), ("SCC-UNKNOWN",)]),
       st.sampled_from([None, "MOST-UNREGISTERED"]))
def test_a_refused_transfer_leaves_nothing(tmp_path_factory: Any, validator: Any, purpose: str,
                                           mechanisms: tuple[str, ...], filing: str | None) -> None:
    outbox = tmp_path_factory.mktemp("outbox")
    routes = load(ROUTES)
    routes.routes["cn-eu-treatment"]["delivery"] = {"mode": "file", "directory": str(outbox)}
    counters, trail = MemoryCounters(), MemoryTrail()

    async def go() -> None:
        await counters.reserve("cn-hosp-a", "2026", ["someone-before"], 10)
        before = await counters.counts()
        transfer = Transfer(purpose, "2026-12-07", mechanisms, filing=filing)  # no consent, no valid filing
        try:
            await run(source_bytes("hl7v2"), source=None, route_id="cn-eu-treatment", transfer=transfer,
                      routes=routes, engine=LocalEngine(validator), counters=counters, trail=trail)
        except Refused as e:
            assert e.rule in ("basis", "consent", "genetic")
        else:
            raise AssertionError("not refused")
        assert await counters.counts() == before
        assert list(Path(outbox).iterdir()) == []
        assert [i["event"]["outcome"] for i in trail.items] == ["4"]

    asyncio.run(go())
