"""helixgate conformance list / run: progress on stderr, report paths on stdout, exit codes by required tests."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.cli.main import main
from tests.conformance.conftest import served
from tests.conformance.servers import ReferenceServer


def test_list_names_every_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("gateway", "converter", "genomics-server"):
        assert f"\n{name} " in "\n" + out
    assert main(["conformance", "list", "--tests"]) == 0
    assert "capability/srv-profiles: The Genomics Reporting profiles are declared as supported" in \
        capsys.readouterr().out


def test_run_writes_reports_and_exits_0_when_required_tests_pass(
        reference_fhir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["conformance", "run", "--suite", "gateway", "--target", reference_fhir, "--report", "json",
               "--report", "junit", "--report", "html", "--out", str(tmp_path),
               "--header", "Authorization: Bearer t0k"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out.split() == [str(tmp_path / f"gateway{s}") for s in (".json", ".junit.xml", ".html")]
    assert "[ 1/26] PASS  capability/gw-metadata" in captured.err
    assert captured.err.rstrip().endswith("— PASSED")
    doc = orjson.loads((tmp_path / "gateway.json").read_bytes())
    assert doc["summary"]["passed"] is True and b"t0k" not in (tmp_path / "gateway.json").read_bytes()


def test_run_exits_1_when_a_required_test_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with served(ReferenceServer(["no-outcome"]).app()) as url:  # --out: the default is ./conformance-report
        rc = main(["conformance", "run", "--suite", "genomics-server", "--target", url + "/fhir", "-q",
                   "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "PASS " not in err  # -q: only what did not pass
    assert "FAIL  reject/read-unknown" in err and "the 404 answer carries no OperationOutcome" in err
    assert "FAILED: 5 required test(s) did not pass" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--suite", "nonesuch", "--target", "http://x/fhir"], "no suite named 'nonesuch'"),
    (["--suite", "gateway", "--target", "http://x/fhir", "--header", "NoColon"], "must look like 'Name: value'"),
    (["--suite", "gateway", "--target", "ftp://x/fhir"], "must be an http:// or https:// URL"),
])
def test_usage_errors_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "run", *args]) == 2
    assert message in capsys.readouterr().err
