"""The HTTP harnesses' client (bench/fuzz/http_client.py): the three transports (the app in this thread over
ASGI, starlette's TestClient, uvicorn on loopback over TCP) give the same answers to the same fuzz inputs, and a
harness's strategy turns the same random buffer into the same request."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "fuzz"))

import fuzz_http_translate  # noqa: E402 - bench/fuzz is not a package
import http_client  # noqa: E402


def _draw(n: int, seed: int) -> list[bytes]:
    """n requests of the $translate harness (its seeds are the shipped ConceptMaps: no corpora needed)."""
    drawn: list[bytes] = []

    def keep(data: bytes) -> None:
        drawn.append(data)

    test = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))(
        given(fuzz_http_translate.inputs(fuzz_http_translate.seeds()))(keep))
    rng = random.Random(seed)
    for _ in range(n):
        test.hypothesis.fuzz_one_input(rng.randbytes(4096))  # type: ignore[attr-defined]
    return drawn


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, Any]]:
    made = {t: http_client.client(t) for t in ("asgi", "testclient", "loopback")}
    yield made
    for c in made.values():
        http_client.close(c)


def test_the_same_buffer_draws_the_same_request() -> None:
    first, again = _draw(30, seed=4), _draw(30, seed=4)
    assert first == again
    assert len(set(first)) > 20 and first != _draw(30, seed=5)


def test_the_transports_answer_alike(clients: dict[str, Any]) -> None:
    statuses = set()
    for data in _draw(60, seed=8):
        meta, body = http_client.unpack(data)
        answers = {}
        for name, c in clients.items():
            r = c.request(meta["method"], meta["path"], params=meta["query"], headers=meta["headers"], content=body)
            answers[name] = (r.status_code, r.content)
            http_client.send(c, data, "translate")  # and the invariant holds on each
        assert answers["asgi"] == answers["testclient"] == answers["loopback"], data[:300]
        statuses.add(answers["asgi"][0])
    assert 200 in statuses and any(s >= 400 for s in statuses)  # successes and refusals both compared


def test_an_xml_outcome_is_an_outcome() -> None:
    xml = (b'<OperationOutcome xmlns="http://hl7.org/fhir"><issue><severity value="error"/>'
           b'<code value="invalid"/></issue></OperationOutcome>')
    assert http_client.is_outcome("application/fhir+xml", xml)
    assert not http_client.is_outcome("application/fhir+xml", b'<Patient xmlns="http://hl7.org/fhir"/>')
    assert not http_client.is_outcome("application/fhir+json", xml)
    assert http_client.is_outcome("application/fhir+json", b'{"resourceType":"OperationOutcome","issue":[{}]}')
    assert not http_client.is_outcome("application/fhir+json", b'{"resourceType":"OperationOutcome","issue":[]}')


@pytest.mark.parametrize("transport", ["asgi", "loopback"])
def test_a_harness_run_ends_with_its_summary(tmp_path: Path, transport: str) -> None:
    """The $translate harness end to end: the count reached, nothing found, and the process exits (the app's
    worker threads do not keep it alive)."""
    import json
    import subprocess

    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fuzz" / "fuzz_http_translate.py"), "--count", "60",
                           "--seed", "2", "--transport", transport, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "http-translate" / "summary.json").read_text())
    assert doc["inputs"] == 60 and doc["crashes"] == {} and not doc["running"]
