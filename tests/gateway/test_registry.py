"""The format registry end to end: a format outside helixgate (tests/gateway/toyformat, registered through the
`helixgate.formats` entry point) converts from the CLI and over HTTP without any other change; every conversion
validates its output and an error names the source field; the CLI never clobbers what the user had."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.settings import Settings
from mappers.toolkit import registry
from tests.conftest import ServedApp

TOY = Path(__file__).parent / "toyformat"
GOOD = b"#toy\nglucose,5.4 mmol/L,2024-03-01\nsodium,140 mmol/L,2024-03-02\n"
BAD = b"#toy\nglucose,5.4 mmol/L,2024-03-01\nsodium,140 mmol/L,2024-13-02\n"  # month 13


def cli(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TOY), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], input=data, capture_output=True,
                          env=env, timeout=120)


@pytest.fixture()
def toy_registered() -> Iterator[None]:
    sys.path.insert(0, str(TOY))
    registry.registry.cache_clear()
    yield
    sys.path.remove(str(TOY))
    registry.registry.cache_clear()


def test_the_cli_lists_and_converts_a_format_registered_from_outside(tmp_path: Path) -> None:
    help_text = cli("convert", "--help").stdout.decode()
    assert "toy: toy rows" in help_text
    src = tmp_path / "in.toy"
    src.write_bytes(GOOD)
    first = cli("convert", str(src))
    assert first.returncode == 0, first.stderr.decode()
    bundle = orjson.loads(first.stdout)
    assert [e["resource"]["code"]["text"] for e in bundle["entry"]] == ["glucose", "sodium"]
    assert cli("convert", str(src)).stdout == first.stdout  # same input, same bytes
    back = cli("convert", "-", "--to", "toy", data=first.stdout)
    assert back.returncode == 0 and back.stdout == GOOD


def test_invalid_output_is_refused_naming_the_source_field_unless_allowed(tmp_path: Path) -> None:
    src = tmp_path / "bad.toy"
    src.write_bytes(BAD)
    refused = cli("convert", str(src))
    assert refused.returncode == 1 and refused.stdout == b""
    err = refused.stderr.decode()
    assert "at line 3 field 3" in err and "effectiveDateTime" in err and "validation error" in err
    allowed = cli("convert", str(src), "--allow-invalid", "--report", str(tmp_path / "report.json"))
    assert allowed.returncode == 0
    assert orjson.loads(allowed.stdout)["entry"][1]["resource"]["effectiveDateTime"] == "2024-13-02"
    report = orjson.loads((tmp_path / "report.json").read_bytes())
    assert any(i["severity"] == "error" and i.get("expression") == ["line 3 field 3"] for i in report["issue"])


def test_a_refused_conversion_leaves_the_output_path_alone(tmp_path: Path) -> None:
    src = tmp_path / "bad.toy"
    src.write_bytes(BAD)
    kept = tmp_path / "kept.json"
    kept.write_bytes(b"what the user had")
    assert cli("convert", str(src), "-o", str(kept)).returncode == 1
    assert kept.read_bytes() == b"what the user had"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    assert cli("convert", str(src), "-o", os.devnull).returncode == 1
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # -o /dev/null as root once deleted it
    good = tmp_path / "good.toy"
    good.write_bytes(GOOD)
    assert cli("convert", str(good), "-o", str(kept)).returncode == 0
    assert orjson.loads(kept.read_bytes())["resourceType"] == "Bundle"


def test_a_closed_output_pipe_ends_quietly(tmp_path: Path) -> None:
    src = tmp_path / "many.toy"
    src.write_bytes(GOOD)
    env = {**os.environ, "PYTHONPATH": str(TOY)}
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "convert", str(src)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write, as when `| head` has had enough
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141 and "Traceback" not in err


def test_http_converts_a_registered_format_and_refuses_invalid_output(toy_registered: None) -> None:
    with ServedApp(Settings()) as app:
        meta = httpx.get(f"{app.url}/fhir/metadata", timeout=10).json()
        assert "toy (toy rows; text/x-toy)" in meta["rest"][0]["operation"][0]["documentation"]
        ok = httpx.post(f"{app.url}/fhir/$convert", content=GOOD, headers={"Content-Type": "text/x-toy"}, timeout=60)
        assert ok.status_code == 200, ok.text
        assert len(ok.json()["entry"]) == 2
        bad = httpx.post(f"{app.url}/fhir/$convert", content=BAD, headers={"Content-Type": "text/x-toy"}, timeout=60)
        assert bad.status_code == 422
        issues = bad.json()["issue"]
        assert issues[0]["details"]["coding"][0]["code"] == "invalid-output"
        assert any(i.get("expression") == ["line 3 field 3"] for i in issues[1:])
        allowed = httpx.post(f"{app.url}/fhir/$convert?allowInvalid=true", content=BAD,
                             headers={"Content-Type": "text/x-toy"}, timeout=60)
        assert allowed.status_code == 200
        assert allowed.json()["entry"][1]["resource"]["effectiveDateTime"] == "2024-13-02"
