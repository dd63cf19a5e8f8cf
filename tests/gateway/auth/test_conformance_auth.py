"""The conformance kit's gateway suite against a gateway with auth on: `helixgate conformance run --header` with an
API key passes; without it, it does not (every protected route answers 401)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from gateway.settings import Settings
from tests.conftest import ROOT
from tests.gateway.auth.served import AuthServed, Client


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServed]:
    clients = {"kit": Client(["system/$convert", "system/$validate", "system/$translate"])}
    with AuthServed(Settings(max_request_bytes=512 * 1024), tmp_path_factory.mktemp("kit-keys"), clients) as app:
        yield app


def run(app: AuthServed, out: Path, *headers: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "gateway.cli.main", "conformance", "run", "--suite", "gateway", "--target",
            f"{app.url}/fhir", "--report", "json", "--out", str(out), "-q"]
    for h in headers:
        args += ["--header", h]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_gateway_suite_passes_with_an_api_key_header(keyed: AuthServed, tmp_path: Path) -> None:
    key = keyed.keys["kit"]
    done = run(keyed, tmp_path / "with", f"Authorization: ApiKey {key}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASSED" in done.stderr
    report = next((tmp_path / "with").glob("*.json")).read_text()
    assert key not in report  # the kit redacts Authorization in what it writes
    results = orjson.loads(report)
    assert results  # a report was written


def test_gateway_suite_fails_without_credentials(keyed: AuthServed, tmp_path: Path) -> None:
    done = run(keyed, tmp_path / "without")
    assert done.returncode == 1
    assert "401" in done.stderr
