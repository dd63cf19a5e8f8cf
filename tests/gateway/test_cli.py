"""The helixgate command as a user runs it: a subprocess, exit codes, stdout/stderr, no tracebacks."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT

MESSAGES = sorted((ROOT / "tests" / "mappers" / "hl7v2" / "messages").glob("*.hl7"))
VCF_HEAD = (b"##fileformat=VCFv4.2\n##contig=<ID=chr1,assembly=GRCh38>\n"
            b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n")


def helixgate(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
              ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], input=stdin, capture_output=True,
                          cwd=ROOT, env=env, timeout=60)


def test_convert_stdin_to_stdout_and_back(tmp_path: Path) -> None:
    r = helixgate("convert", "-", "--from", "hl7v2", "--to", "fhir", stdin=MESSAGES[0].read_bytes())
    assert r.returncode == 0, r.stderr
    bundle = orjson.loads(r.stdout)
    assert bundle["resourceType"] == "Bundle"
    assert b"converted:" in r.stderr
    assert helixgate("convert", "-", stdin=r.stdout).returncode == 1  # FHIR input: the target must be named
    back = helixgate("convert", "-", "--to", "hl7v2", stdin=r.stdout)  # --from detected
    assert back.returncode == 0, back.stderr
    assert back.stdout.startswith(b"MSH|^~\\&|HELIXGATE|")


def test_output_file_report_and_transaction(tmp_path: Path) -> None:
    out, report = tmp_path / "b.json", tmp_path / "report.json"
    path = next(p for p in MESSAGES if p.name.startswith("11-"))
    r = helixgate("convert", str(path), "-o", str(out), "--report", str(report), "--bundle-type", "transaction")
    assert r.returncode == 0 and r.stdout == b""
    assert orjson.loads(out.read_bytes())["type"] == "transaction"
    outcome = orjson.loads(report.read_bytes())
    assert any(i["expression"] == ["ZGN[1]"] for i in outcome["issue"])
    assert b"ZGN[1]" in r.stderr  # warnings are listed on stderr


def test_timezone_option_keeps_times() -> None:
    msg = (b"MSH|^~\\&|A|B|C|D|20250101||ORU^R01|X2|P|2.5.1\rPID|1||P1^^^H^MR\r"
           b"OBR|1||F1|81247-9^panel^LN|||20250228093000\rOBX|1|ST|69547-8^Ref^LN|2a|T||||||F\r")
    r = helixgate("convert", "-", "--timezone", "+01:00", stdin=msg)
    report = next(e["resource"] for e in orjson.loads(r.stdout)["entry"]
                  if e["resource"]["resourceType"] == "DiagnosticReport")
    assert report["effectiveDateTime"] == "2025-02-28T09:30:00+01:00"


@pytest.mark.parametrize(("args", "stdin", "code", "message"), [
    (("convert", "-"), b"MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1\r", 1, b"unsupported message type ADT^A01"),
    (("convert", "-"), b"MSH|^~\\&|A|B|C|D|2025||ORU^R01|1|P|2.5\rbad line\r", 1, b"line 2"),
    (("convert", "-"), b"", 1, b"is empty"),
    (("convert", "-"), b"\x00\x01\x02binary", 1, b"cannot tell the input format"),
    (("convert", "/no/such/file.hl7"), None, 1, b"cannot read /no/such/file.hl7"),
    (("convert", "-", "--from", "fhir", "--to", "hl7v2"), b"[1, 2]", 1, b"expected a FHIR resource"),
    (("convert", "-", "--timezone", "CET"), b"MSH", 2, b"must look like +08:00"),
    (("convert", "-", "--from", "pdf"), b"", 2, b"invalid choice"),
    (("convert",), None, 2, b"required: input"),
    ((), None, 2, b"usage:"),
    # issue 12's hostile inputs through the CLI: a clear error naming the limit or the field, never a traceback
    (("convert", "-"), gzip.compress(VCF_HEAD + b"chr1\t1\t.\tA\tA\t.\tPASS\t.\tGT\t0/0\n" * 400_000), 1,
     b"limit max_compression_ratio"),
    (("convert", "-"), VCF_HEAD + b"chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:AD:DP\t0/1:3,4:1e309\n", 1,
     b"FORMAT DP '1e309' is not a count"),
    (("convert", "-"), VCF_HEAD + b"chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:AD\t0/1:3,18446744073709551616\n", 1,
     b"is not a count"),
    (("convert", "-"), MESSAGES[0].read_bytes() + b"OBX|1\r" * 20_000, 1, b"limit max_segments"),
], ids=["adt", "bad-line", "empty", "binary", "no-file", "fhir-not-resource", "bad-timezone", "bad-format",
        "no-input", "no-command", "gzip-bomb", "dp-1e309", "ad-2^64", "v2-over-segment-cap"])
def test_bad_input_and_usage_give_a_message_and_exit_code(args, stdin, code, message) -> None:
    r = helixgate(*args, stdin=stdin)
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert b"Traceback" not in r.stderr


@pytest.mark.parametrize("args", [("validate", "{patient}"), ("translate", "--list"), ("conformance", "list")],
                         ids=["validate", "translate-list", "conformance-list"])
def test_a_closed_output_pipe_ends_quietly_with_128_plus_sigpipe(args: tuple[str, ...], tmp_path: Path) -> None:
    """Issue 12: piping these into `head` ended in a BrokenPipeError traceback."""
    patient = tmp_path / "patient.json"
    patient.write_bytes(b'{"resourceType": "Patient", "active": true}')
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", *(a.format(patient=patient) for a in args)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write, as when `| head` has had enough
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
