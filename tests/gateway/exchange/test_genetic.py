"""Genetic-data export control from every source format: HGR information classified, refused without a registered
filing id when leaving China, passed with one, or withheld (with every reference to it) when the route says so."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.exchange.rules import Refused, genetic
from gateway.exchange.rules.bundle import resources
from tests.gateway.exchange.conftest import SOURCES
from tests.gateway.exchange.test_minimise import _errors

GENETIC_SOURCES = {"hl7v2", "vcf"}  # the others carry lab results, problems, medications: clinical data


def route(on_missing: str = "refuse", jurisdiction: str = "CN", **more: Any) -> dict[str, Any]:
    return {"id": "t", "source": {"jurisdiction": jurisdiction},
            "rules": {"genetic": {"filingIds": ["MOST-1"], "onMissing": on_missing, **more}}}


@pytest.mark.parametrize("source", list(SOURCES))
def test_classification(source: str, converted: dict[str, Any]) -> None:
    found = genetic.census(converted[source])
    assert (found["class"] == genetic.HGR) == (source in GENETIC_SOURCES)
    for _, res in resources(converted[source]):
        profiles = set((res.get("meta") or {}).get("profile") or [])
        if genetic.GR + "variant" in profiles or res["resourceType"] == "MolecularSequence":
            assert genetic.classify(res) == genetic.HGR
        if res["resourceType"] in ("Patient", "Specimen", "Condition", "Composition"):
            assert genetic.classify(res) == genetic.CLINICAL
    if source == "cda-cn":  # ordinary lab results are not HGR information
        labs = [r for _, r in resources(converted[source]) if r["resourceType"] == "Observation"]
        assert labs and all(genetic.classify(r) == genetic.CLINICAL for r in labs)


@pytest.mark.parametrize("source", list(SOURCES))
def test_refused_without_a_filing_id(source: str, converted: dict[str, Any]) -> None:
    if source not in GENETIC_SOURCES:
        step = genetic.apply(converted[source], route(), None)
        assert step.bundle is converted[source] and step.facts["hgrClass"] == genetic.CLINICAL
        return
    with pytest.raises(Refused) as e:
        genetic.apply(converted[source], route(), None)
    assert e.value.rule == "genetic" and "filing" in e.value.satisfy
    with pytest.raises(Refused):
        genetic.apply(converted[source], route(), "MOST-UNREGISTERED")
    step = genetic.apply(converted[source], route(), "MOST-1")
    assert step.bundle is converted[source] and step.facts["hgrFiling"] == "MOST-1"


@pytest.mark.parametrize("source", sorted(GENETIC_SOURCES))
def test_withheld_when_the_route_says_so(source: str, converted: dict[str, Any], validator: Any) -> None:
    step = genetic.apply(converted[source], route("withhold"), None)
    out = step.bundle
    assert genetic.census(out)["class"] == genetic.CLINICAL
    text = orjson.dumps(out).decode()
    for _, res in resources(converted[source]):
        if genetic.classify(res) == genetic.HGR:
            assert res["id"] not in text
    assert any(c.action == "withheld" for c in step.changes)
    assert any(r["resourceType"] == "Patient" for _, r in resources(out))
    assert _errors(validator, out) == []


@pytest.mark.parametrize("source", sorted(GENETIC_SOURCES))
def test_no_control_outside_china_unless_enforced(source: str, converted: dict[str, Any]) -> None:
    assert genetic.apply(converted[source], route(jurisdiction="DE"), None).bundle is converted[source]
    with pytest.raises(Refused):
        genetic.apply(converted[source], route(jurisdiction="DE", enforce=True), None)


def test_a_genomic_report_document_is_genetic_content() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "r", "status": "final",
              "meta": {"profile": [genetic.GENOMIC_REPORT]}, "code": {"text": "x"},
              "conclusion": "EGFR L858R", "presentedForm": [{"contentType": "application/pdf", "data": "AA=="}]}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1", "resource": report}]}
    assert genetic.census(bundle)["parts"] == ["DiagnosticReport/r.presentedForm", "DiagnosticReport/r.conclusion"]
    out = genetic.apply(bundle, route("withhold"), None).bundle["entry"][0]["resource"]
    assert "presentedForm" not in out and "conclusion" not in out
