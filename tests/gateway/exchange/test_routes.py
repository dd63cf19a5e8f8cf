"""Routes as data: the schema and the gateway's own checks name each problem's place; `routes check` explains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.cli.exchange import main
from gateway.exchange.routes import RoutesError, explain, load
from gateway.exchange.rules import Refused, basis
from gateway.exchange.rules.facts import Transfer
from tests.gateway.exchange.conftest import ROUTES


def _edit(path: Path, change: Any) -> Path:
    doc = orjson.loads(path.read_bytes())
    change(doc)
    path.write_bytes(orjson.dumps(doc))
    return path


def test_the_examples_load(routes_file: Path) -> None:
    routes = load(routes_file)
    assert set(routes.routes) == {"cn-eu-treatment", "eu-cn-research"}
    assert routes.keyrings["eu-cn-research"].current == "demo-2026"
    assert "demo-2026" in repr(routes.keyrings["eu-cn-research"])
    key = routes.keyrings["eu-cn-research"].key()
    assert key.hex() not in repr(routes.keyrings) and key.hex() not in repr(routes)


@pytest.mark.parametrize(("change", "where", "said"), [
    (lambda d: d["routes"][0].pop("purposes"), "routes[0]", "'purposes' is a required property"),
    (lambda d: d["routes"][1]["target"].update(format="nope"), "routes[1].target.format", "not a registered writer"),
    (lambda d: d["routes"][0]["rules"]["genetic"].update(onMissing="ignore"), "routes[0].rules.genetic.onMissing",
     "is not one of"),
    (lambda d: d["routes"][0]["rules"]["counters"].update(warnAt=20000), "routes[0].rules.counters.warnAt",
     "below stopAt"),
    (lambda d: d["routes"][1].update(id=d["routes"][0]["id"]), "routes[1].id", "also the id of routes[0]"),
    (lambda d: d["routes"][1]["purposes"].append("marketing"), "routes[1].purposes[1]", "unknown purpose"),
    (lambda d: d["routes"][1]["rules"]["pseudonymise"].update(keyFile="missing.json"),
     "routes[1].rules.pseudonymise.keyFile", "cannot read"),
    (lambda d: d["routes"][1]["rules"]["minimise"]["research"]["dropPaths"].append("Patient..x"),
     "routes[1].rules.minimise.research.dropPaths[8]", "bad step"),
    (lambda d: d["routes"][0].update(extra=1), "routes[0]", "Additional properties"),
])
def test_problems_are_named_by_place(routes_file: Path, change: Any, where: str, said: str) -> None:
    with pytest.raises(RoutesError) as e:
        load(_edit(routes_file, change))
    assert any(w == where and said in m for w, m in e.value.problems), e.value.problems
    assert where in str(e.value)


def test_weak_keys_are_refused(routes_file: Path) -> None:
    (routes_file.parent / "demo-keys.json").write_text('{"current": "a", "keys": {"a": "c2hvcnQ="}}')
    with pytest.raises(RoutesError, match="at least 32 are needed"):
        load(routes_file)


def test_explain_in_words(routes: Any) -> None:
    text = explain(routes.get("cn-eu-treatment"))
    for words in ("From Hospital A, Beijing (CN", "Allowed purposes: treatment", "standard-contract CN-SC-2026-0042",
                  "each request must cite one", "Output: ips", "separate consent for sensitive data",
                  "MOST-HGR-2026-0001", "is refused", "warning at 8000, refused beyond 10000"):
        assert words in text, words
    research = explain(routes.get("eu-cn-research"))
    assert "generalises the birth date to the year" in research and "Pseudonymisation" in research
    assert "Consent: not required" in research and "no export control" in research


def test_cli_routes_check(capsys: pytest.CaptureFixture[str], routes_file: Path) -> None:
    assert main(["routes", "check", str(ROUTES)]) == 0
    out = capsys.readouterr().out
    assert "2 route(s), all checks passed" in out and "Route eu-cn-research" in out
    bad = _edit(routes_file, lambda d: d["routes"][1]["target"].update(format="nope"))
    assert main(["routes", "check", str(bad)]) == 2
    assert "routes[1].target.format" in capsys.readouterr().err


@pytest.mark.parametrize(("transfer", "said"), [
    (Transfer("research", "2026-12-07", ("CN-SC-2026-0042",)), "purpose 'research' is not allowed"),
    (Transfer("treatment", "2026-12-07"), "cites no transfer mechanism"),
    (Transfer("treatment", "2026-12-07", ("SCC-OTHER",)), "none registered"),
    (Transfer("treatment", "2026-12-07", ("CN-SC-2026-0042",), legal_basis="contract"), "legal basis"),
])
def test_basis_refusals(routes: Any, transfer: Transfer, said: str) -> None:
    with pytest.raises(Refused) as e:
        basis.apply({}, routes.get("cn-eu-treatment"), transfer)
    assert e.value.rule == "basis" and said in e.value.message


def test_basis_records_the_mechanism(routes: Any) -> None:
    step = basis.apply({}, routes.get("cn-eu-treatment"), Transfer("TREAT", "2026-12-07", ("CN-SC-2026-0042",)))
    assert step.facts == {"legalBasis": "consent", "mechanisms": ["CN-SC-2026-0042"], "purpose": "TREAT"}


def test_yaml_routes(routes_file: Path) -> None:
    import yaml

    doc = orjson.loads(routes_file.read_bytes())
    path = routes_file.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert set(load(path).routes) == {"cn-eu-treatment", "eu-cn-research"}
    path.write_text("routes: [\n")
    with pytest.raises(RoutesError, match="not YAML"):
        load(path)


def test_the_day_and_year_follow_the_routes_time_zone(routes: Any) -> None:
    from datetime import UTC, datetime

    from gateway.exchange.pipeline import today

    new_year_in_beijing = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)  # 01:30 on 1 January 2027 at +08:00
    assert today(routes.get("cn-eu-treatment"), new_year_in_beijing) == "2027-01-01"
    assert today(routes.get("eu-cn-research"), new_year_in_beijing) == "2026-12-31"  # no zone: UTC


def test_the_exchange_scope() -> None:
    from gateway.auth.scopes import parse

    scope = parse("system/$exchange")
    assert scope is not None and scope.operation == "exchange"
    assert parse("system/$exchanges") is None


def test_serve_refuses_a_bad_routes_file(routes_file: Path) -> None:
    import os
    import subprocess
    import sys

    bad = _edit(routes_file, lambda d: d["routes"][1]["target"].update(format="nope"))
    run = subprocess.run([sys.executable, "-m", "gateway.cli.main", "serve", "--port", "1"], capture_output=True,
                         timeout=60, env={**os.environ, "HELIXGATE_EXCHANGE_ROUTES": str(bad)})
    assert run.returncode == 2
    assert b"routes[1].target.format" in run.stdout + run.stderr
