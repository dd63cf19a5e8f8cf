"""The exchange suite against the gateway: it passes where the example routes are enforced, and fails, naming the
test, where a target's route lets through what it should refuse or remove."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from conformance import FAIL, PASS, load_suite, run_suite
from gateway.settings import Settings
from tests.conftest import ROOT, ServedApp


def _served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: object = None) -> ServedApp:
    for name in ("routes.json", "demo-keys.json"):
        shutil.copy(ROOT / "examples" / "exchange" / name, tmp_path / name)
    (tmp_path / "demo-keys.json").chmod(0o600)
    if change is not None:
        doc = orjson.loads((tmp_path / "routes.json").read_bytes())
        change(doc)  # type: ignore[operator]
        (tmp_path / "routes.json").write_bytes(orjson.dumps(doc))
    monkeypatch.setenv("HELIXGATE_EXCHANGE_ROUTES", str(tmp_path / "routes.json"))
    return ServedApp(Settings())


def test_the_exchange_suite_passes_against_the_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _served(tmp_path, monkeypatch) as app:
        report = run_suite(load_suite("exchange"), f"{app.url}/fhir")
    statuses = {r.test.id: (r.status, r.message) for r in report.results}
    assert all(s == PASS for s, _ in statuses.values()), statuses
    assert len(statuses) == 8
    assert "genetic" in statuses["exch-genetic-no-filing"][1]


def test_the_suite_catches_a_route_that_does_not_enforce(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def lax(doc: dict) -> None:
        treatment, research = doc["routes"]
        treatment["rules"]["genetic"]["enforce"] = False  # genetic content leaves without a filing
        treatment["rules"]["consent"]["required"] = False
        research["rules"].pop("pseudonymise")  # identities leave
        research["rules"]["minimise"]["research"]["dropPaths"] = []

    with _served(tmp_path, monkeypatch, lax) as app:
        report = run_suite(load_suite("exchange"), f"{app.url}/fhir")
    statuses = {r.test.id: r.status for r in report.results}
    assert statuses["exch-genetic-no-filing"] == FAIL
    assert statuses["exch-no-consent"] == FAIL
    assert statuses["exch-pseudonymised"] == FAIL and statuses["exch-dry-run"] == FAIL
    assert statuses["exch-purpose"] == PASS and not report.passed
