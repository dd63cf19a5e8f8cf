"""helixgate validate as a user runs it: table or OperationOutcome, exit 0/1/2, --profile, --ig."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from profiles.packages import cache_dir
from tests.conftest import ROOT

IG = cache_dir() / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package"
EXAMPLE = IG / "example" / "Observation-SNVexample.json"


def helixgate(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], capture_output=True, cwd=ROOT,
                          timeout=120)


def test_valid_and_invalid_files(tmp_path: Path) -> None:
    bad = orjson.loads(EXAMPLE.read_bytes())
    bad["status"] = "finished"
    bad_file = tmp_path / "bad.json"
    bad_file.write_bytes(orjson.dumps(bad))
    ok = helixgate("validate", str(EXAMPLE))
    assert ok.returncode == 0, ok.stdout
    assert b"OK (0 error(s)" in ok.stdout
    r = helixgate("validate", str(EXAMPLE), str(bad_file))
    assert r.returncode == 1
    assert b"FAIL" in r.stdout and b"Observation.status" in r.stdout
    js = helixgate("validate", "--format", "json", str(bad_file))
    outcome = orjson.loads(js.stdout)
    assert outcome["resourceType"] == "OperationOutcome"


def test_profile_and_ig_folder(tmp_path: Path) -> None:
    res = orjson.loads(EXAMPLE.read_bytes())
    res.pop("meta")
    f = tmp_path / "plain.json"
    f.write_bytes(orjson.dumps(res))
    sd = orjson.loads((IG / "StructureDefinition-variant.json").read_bytes())
    sd["url"] = "http://example.org/StructureDefinition/my-variant"
    sd["snapshot"]["element"] = [e for e in sd["snapshot"]["element"]]
    for e in sd["snapshot"]["element"]:
        if e["path"] == "Observation.issued":
            e["min"] = 1
    igdir = tmp_path / "ig"
    igdir.mkdir()
    (igdir / "StructureDefinition-my-variant.json").write_bytes(orjson.dumps(sd))
    r = helixgate("validate", str(f), "--ig", str(igdir), "--profile", sd["url"])
    assert r.returncode == 1 and b"Observation.issued: minimum required = 1" in r.stdout


def test_usage_and_unreadable_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{nope")
    r = helixgate("validate", str(junk))
    assert r.returncode == 1 and b"JSON cannot be read" in r.stderr and b"Traceback" not in r.stderr
    r = helixgate("validate", "--ig", "no-such-thing", str(EXAMPLE))
    assert r.returncode == 2 and b"neither an existing file" in r.stderr
    assert helixgate("validate").returncode == 2
