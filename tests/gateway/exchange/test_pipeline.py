"""The pipeline's own guarantees: output the rules leave invalid is refused (422), audited as failed and not counted;
a dry run leaves no trace; the target's profiles apply to FHIR output."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.exchange.counters import MemoryCounters
from gateway.exchange.pipeline import InvalidAfterRules, run
from gateway.exchange.routes import RoutesError, load
from gateway.exchange.rules.facts import Transfer
from gateway.exchange.service import LocalEngine
from gateway.exchange.trail import MemoryTrail
from tests.gateway.exchange.conftest import source_bytes

RESEARCH = Transfer("research", "2026-12-07", ("EU-SCC-2021-914-M1-0007",))
IPS_BUNDLE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips"


def _edit(path: Path, change: Any) -> Path:
    doc = orjson.loads(path.read_bytes())
    change(doc)
    path.write_bytes(orjson.dumps(doc))
    return path


def test_invalid_after_the_rules(routes_file: Path, validator: Any) -> None:
    routes = load(_edit(routes_file, lambda d: d["routes"][1]["target"].update(profiles=[IPS_BUNDLE])))
    counters, trail = MemoryCounters(), MemoryTrail()
    with pytest.raises(InvalidAfterRules) as e:
        asyncio.run(run(source_bytes("ws445"), source=None, route_id="eu-cn-research", transfer=RESEARCH,
                        routes=routes, engine=LocalEngine(validator), counters=counters, trail=trail))
    assert "Bundle-uv-ips" in " ".join(i.message for i in e.value.issues)
    assert asyncio.run(counters.counts()) == {}
    [entry] = trail.items
    assert entry["event"]["outcome"] == "8"
    assert entry["event"]["outcomeDesc"] == "failed: output invalid: exchange-invalid-output"


def test_a_dry_run_leaves_no_trace(routes: Any, validator: Any) -> None:
    counters, trail = MemoryCounters(), MemoryTrail()
    result = asyncio.run(run(source_bytes("ws445"), source=None, route_id="eu-cn-research", transfer=RESEARCH,
                             routes=routes, engine=LocalEngine(validator), counters=counters, trail=trail,
                             dry_run=True))
    assert result.decision == "permit" and result.counted == 1 and result.changes
    assert asyncio.run(counters.counts()) == {} and trail.items == []


def test_profiles_are_for_fhir_targets(routes_file: Path) -> None:
    with pytest.raises(RoutesError, match="profiles apply to a fhir target"):
        load(_edit(routes_file, lambda d: d["routes"][0]["target"].update(profiles=[IPS_BUNDLE])))
