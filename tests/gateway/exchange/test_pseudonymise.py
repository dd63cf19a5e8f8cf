"""Pseudonymisation from every source format: identifiers and ids replaced by keyed HMAC pseudonyms, references
rewritten consistently, direct identifiers removed; same input and key → same pseudonyms; another destination or
key → others; the output validates."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.exchange.reidentify import match
from gateway.exchange.rules import minimise, pseudonymise
from gateway.exchange.rules.bundle import aliases, patients, resources, subject_key, target
from tests.gateway.exchange.conftest import SECRETS, SOURCES
from tests.gateway.exchange.test_minimise import RESEARCH, _errors, _refs

KEY = bytes(range(32))


def _run(bundle: dict[str, Any], destination: str = "cn-lab", key: bytes = KEY, kid: str = "k1",
         original: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pseudonymised as the pipeline does it: subjects named by their identifiers before minimisation."""
    subjects = {f"Patient/{p['id']}": subject_key(p) for _, p in patients(original or bundle)}
    return pseudonymise.apply(bundle, destination, key, kid, subjects).bundle


@pytest.mark.parametrize("source", list(SOURCES))
def test_no_source_identity_is_left(source: str, converted: dict[str, Any], validator: Any) -> None:
    before = converted[source]
    minimised = minimise.apply(before, RESEARCH, "research", "HRESCH").bundle
    out = _run(minimised, original=before)
    text = orjson.dumps(out).decode()
    for secret in SECRETS[source]:
        assert secret not in text, secret
    for _, res in resources(before):  # no resource id of the source survives, nor a patient's identifier
        assert res["id"] not in text
        for ident in res.get("identifier", []) if res["resourceType"] == "Patient" else []:
            assert ident.get("value") not in text
    for _, p in patients(out):
        assert not {"telecom", "address", "contact", "photo"} & set(p)
        assert p["name"] == [{"_text": {"extension": [{"url": minimise.DATA_ABSENT, "valueCode": "masked"}]}}]
        assert any(i["system"] == pseudonymise.system_of("cn-lab", "k1") for i in p["identifier"])
    assert _errors(validator, out) == []


@pytest.mark.parametrize("source", list(SOURCES))
def test_references_point_where_they_pointed(source: str, converted: dict[str, Any]) -> None:
    before = converted[source]
    out = _run(before)
    old, new = aliases(before), aliases(out)
    order_before = [r["resourceType"] for _, r in resources(before)]
    assert [r["resourceType"] for _, r in resources(out)] == order_before
    for (_, a), (_, b) in zip(resources(before), resources(out), strict=True):
        refs_a, refs_b = _refs(a), _refs(b)
        assert len(refs_a) == len(refs_b)
        for ra, rb in zip(refs_a, refs_b, strict=True):
            assert target(ra, old) == target(rb, new)
            assert "display" not in rb


@pytest.mark.parametrize("source", ["hl7v2", "cda-cn", "fhir-ips", "ws445", "vcf"])
def test_same_pseudonyms_twice_other_ones_elsewhere(source: str, converted: dict[str, Any]) -> None:
    bundle = converted[source]
    first, second = _run(bundle), _run(bundle)
    assert orjson.dumps(first) == orjson.dumps(second)
    other_destination = _run(bundle, destination="eu-lab")
    rotated = _run(bundle, key=bytes(range(1, 33)), kid="k2")
    ids = {r["id"] for _, r in resources(first)}
    assert not ids & {r["id"] for _, r in resources(other_destination)}
    assert not ids & {r["id"] for _, r in resources(rotated)}
    patient = patients(rotated)[0][1]
    assert patient["identifier"][0]["system"].endswith(":k2")


@pytest.mark.parametrize("source", ["hl7v2", "cda-cn", "ws445"])
def test_reidentification_needs_the_key(source: str, converted: dict[str, Any]) -> None:
    bundle = converted[source]
    original = subject_key(patients(bundle)[0][1])
    minimised = minimise.apply(bundle, RESEARCH, "research", "HRESCH").bundle  # even with the identifier dropped
    pseudonym = patients(_run(minimised, original=bundle))[0][1]["identifier"][0]["value"]
    candidates = ["urn:oid:1.2.3|nobody", f"{original[0]}|{original[1]}", "urn:oid:1.2.3|other"]
    assert match(pseudonym, candidates, "cn-lab", KEY) == f"{original[0]}|{original[1]}"
    assert match(pseudonym, candidates, "cn-lab", bytes(32)) is None
    assert match(pseudonym, candidates, "eu-lab", KEY) is None


def test_transaction_requests_are_rewritten(converted: dict[str, Any], validator: Any) -> None:
    from gateway.convert import run
    from gateway.formats import Request
    from mappers.toolkit.registry import ConvertOptions
    from tests.gateway.exchange.conftest import source_bytes

    bundle = orjson.loads(run(source_bytes("hl7v2"), Request("hl7v2", "fhir", ConvertOptions("transaction")),
                              validator).body)
    out = _run(bundle)
    text = orjson.dumps(out).decode()
    assert "PAT123" not in text and "FIL88" not in text
    for entry in out["entry"]:
        req = entry["request"]
        if req.get("ifNoneExist"):
            assert req["ifNoneExist"].startswith("identifier=" + pseudonymise.system_of("cn-lab", "k1") + "|")
            value = req["ifNoneExist"].rsplit("|", 1)[1]
            assert value in [i["value"] for i in entry["resource"].get("identifier", [])]
        if req["method"] == "PUT":
            assert req["url"] == f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
    assert _errors(validator, out) == []
