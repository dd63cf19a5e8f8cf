"""Minimisation per purpose, from every source format: dropped paths and types are gone with every reference to
them, birth dates generalised, free text dropped, and the result still validates with 0 errors."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.exchange.rules import minimise
from gateway.exchange.rules.bundle import aliases, resources, target
from tests.gateway.exchange.conftest import SOURCES

RESEARCH = {"id": "t", "rules": {"minimise": {"research": {
    "dropTypes": ["Practitioner", "Encounter"],
    "dropPaths": ["Patient.identifier(urn:oid:2.16.156.10011.1.3)", "Patient.telecom", "Patient.address",
                  "*.extension(urn:helixgate:cn:ext:ethnic-group)", "Patient.extension(urn:helixgate:cn:ext:age)"],
    "birthDate": "year", "narrative": "drop", "notes": "drop"}}}}


def _errors(validator: Any, bundle: dict[str, Any]) -> list[str]:
    out = validator.outcome(bundle, ())
    return [f"{i.get('expression')}: {i['details']['text']}" for i in out["issue"]
            if i["severity"] in ("error", "fatal")]


@pytest.mark.parametrize("source", list(SOURCES))
def test_research_minimisation(source: str, converted: dict[str, Any], validator: Any) -> None:
    before = converted[source]
    kept = copy.deepcopy(before)
    step = minimise.apply(before, RESEARCH, "research", "HRESCH")
    assert before == kept  # the rule does not change its input
    out = step.bundle
    text = orjson.dumps(out).decode()
    assert not any(r["resourceType"] in ("Practitioner", "Encounter") for _, r in resources(out))
    names = aliases(out)
    for _, r in resources(before):  # no reference to a dropped resource is left
        if r["resourceType"] in ("Practitioner", "Encounter"):
            assert f"{r['resourceType']}/{r['id']}" not in text
    for _, res in resources(out):
        assert "text" not in res and "note" not in res and "conclusion" not in res
        if res["resourceType"] == "Patient":
            assert "telecom" not in res and "address" not in res
            assert all(i.get("system") != "urn:oid:2.16.156.10011.1.3" for i in res.get("identifier", []))
            assert all(e["url"] not in ("urn:helixgate:cn:ext:ethnic-group", "urn:helixgate:cn:ext:age")
                       for e in res.get("extension", []))
            if "birthDate" in res:
                assert len(res["birthDate"]) == 4
    for _, res in resources(out):  # every reference that resolved before still resolves or says it was withheld
        for ref in _refs(res):
            assert target(ref, names) is not None or ref.get("display") or not ref.get("reference", "").startswith(
                "urn:uuid:")
    births = [r.get("birthDate", "") for _, r in resources(before) if r["resourceType"] == "Patient"]
    if any(len(b) == 10 for b in births):
        assert any(c.action == "generalised" and c.path.endswith(".birthDate") for c in step.changes)
    assert all(c.rule == "minimise" for c in step.changes)
    assert _errors(validator, out) == []


def _refs(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.append(node)
        for v in node.values():
            found += _refs(v)
    elif isinstance(node, list):
        for v in node:
            found += _refs(v)
    return found


@pytest.mark.parametrize("source", ["cda-cn", "ws445", "hl7v2"])
def test_five_year_band_masks_the_date(source: str, converted: dict[str, Any], validator: Any) -> None:
    route = {"rules": {"minimise": {"*": {"birthDate": "band5"}}}}
    out = minimise.apply(converted[source], route, "research", "HRESCH").bundle
    patient = next(r for _, r in resources(out) if r["resourceType"] == "Patient")
    original = next(r for _, r in resources(converted[source]) if r["resourceType"] == "Patient")
    year = int(original["birthDate"][:4])
    assert "birthDate" not in patient
    assert {"url": minimise.DATA_ABSENT, "valueCode": "masked"} in patient["_birthDate"]["extension"]
    band = next(e["valueRange"] for e in patient["extension"] if e["url"] == minimise.BAND_EXTENSION)
    assert band["low"]["value"] <= year <= band["high"]["value"] and band["high"]["value"] - band["low"]["value"] == 4
    assert band["low"]["value"] % 5 == 0
    assert original["birthDate"] not in orjson.dumps(out).decode()
    assert _errors(validator, out) == []


def test_keep_types_is_an_allow_list(converted: dict[str, Any]) -> None:
    route = {"rules": {"minimise": {"treatment": {"keepTypes": ["Patient", "DiagnosticReport", "Observation"]}}}}
    out = minimise.apply(converted["hl7v2"], route, "treatment", "TREAT").bundle
    assert {r["resourceType"] for _, r in resources(out)} == {"Patient", "DiagnosticReport", "Observation"}


def test_a_purpose_without_a_policy_changes_nothing(converted: dict[str, Any]) -> None:
    step = minimise.apply(converted["cda-cn"], RESEARCH, "treatment", "TREAT")
    assert step.bundle is converted["cda-cn"] and step.changes == []


@pytest.mark.parametrize("bad", ["Patient", "Patient..x", "patient telecom", "Patient.identifier(a"])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        minimise.parse_path(bad)
