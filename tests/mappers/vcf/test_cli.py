"""`helixgate convert` on VCF as a user runs it: a subprocess, exit codes 0/1/2, stdout/stderr, no tracebacks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from mappers.vcf import Converter, iter_lines, ndjson, to_fhir
from tests.conftest import ROOT
from tests.mappers.vcf.facts import (
    DATA,
    bed,
    called_alleles,
    overlaps,
    records,
    simple_convertible,
    value,
    vcf_file,
)


def helixgate(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    r = subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], input=stdin, capture_output=True,
                       cwd=ROOT, timeout=120)
    assert b"Traceback" not in r.stderr, r.stderr.decode()
    return r


def test_vcf_to_bundle_detected_with_summary_on_stderr() -> None:
    path = vcf_file("vcf_example4.vcf")
    r = helixgate("convert", str(path), "--source", "germline", "--assembly", "GRCh37", "--patient", "HG00628",
                  "-v")  # the summary is an information issue of the report: -v lists it
    assert r.returncode == 0, r.stderr
    bundle = orjson.loads(r.stdout)
    assert bundle["resourceType"] == "Bundle" and bundle["entry"][-1]["resource"]["resourceType"] == "DiagnosticReport"
    n = len(records(path))
    assert f"read {n} records: converted 9 (9 variants, 3 phase relationships); skipped 3".encode() in r.stderr


def test_ndjson_progress_and_report(tmp_path: Path) -> None:
    out, report = tmp_path / "out.ndjson", tmp_path / "report.json"
    path = vcf_file("vcf_example2.vcf")
    r = helixgate("convert", str(path), "--ndjson", "--progress", "-o", str(out), "--report", str(report))
    assert r.returncode == 0 and r.stdout == b""
    lines = out.read_bytes().splitlines()
    assert orjson.loads(lines[-1])["resourceType"] == "DiagnosticReport"
    assert b"records, " in r.stderr and b"\r" in r.stderr  # the progress line
    outcome = orjson.loads(report.read_bytes())
    summary = next(i for i in outcome["issue"] if i["details"]["coding"][0]["code"] == "vcf-summary")
    assert summary["details"]["text"].startswith(f"read {len(records(path))} records")


@pytest.mark.parametrize("index", ["tbi", "csi"])
def test_index_reads_only_the_conversion_region(tmp_path: Path, index: str) -> None:
    vcf = tmp_path / "HG00403A.vcf.gz"
    shutil.copy(vcf_file("HG00403A.vcf.gz"), vcf)
    shutil.copy(vcf_file("HG00403A.vcf.gz.tbi") if index == "tbi" else DATA / "HG00403A.vcf.gz.csi",
                f"{vcf}.{index}")
    bed_path = vcf_file("HG00404_b37_convert.bed")
    r = helixgate("convert", str(vcf), "--bed-convert", str(bed_path), "--ndjson")
    assert r.returncode == 0, r.stderr
    got = sorted((str(value(o, "48013-7")), value(o, "81254-5")[0] + 1)  # type: ignore[index]
                 for o in map(orjson.loads, r.stdout.splitlines()) if o.get("code", {}).get("coding", [{}])[0].get(
                     "code") == "69548-6")
    keep = bed(bed_path)
    want = sorted((f"NC_{int(x.norm):06d}", x.pos) for x in records(vcf_file("HG00403A.vcf.gz"))
                  if simple_convertible(x) and overlaps(keep, x.chrom, x.pos - 1, x.pos - 1 + len(x.ref))
                  for _ in called_alleles(x))
    assert [(acc.split(".")[0], pos) for acc, pos in got] == want and want
    read = int(r.stderr.split(b"read ")[1].split()[0])
    assert read < len(records(vcf_file("HG00403A.vcf.gz"))) // 10  # the index skipped most of the file


def test_fhir_back_to_vcf_from_bundle_and_ndjson(tmp_path: Path) -> None:
    path = vcf_file("NB6TK328_filtered.vcf")
    bundle = tmp_path / "b.json"
    bundle.write_bytes(orjson.dumps(to_fhir(path.read_bytes()).bundle))
    nd = b"".join(ndjson(Converter(iter_lines([path.read_bytes()]), relative_refs=True)))
    for args, stdin in (((str(bundle), "--to", "vcf"), None), (("-", "--from", "fhir", "--to", "vcf"), nd)):
        r = helixgate("convert", *args, stdin=stdin)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(b"##fileformat=VCFv4.2\n")
        got = [(x.chrom, x.pos, x.ref, x.alts) for x in records(r.stdout.decode())]
        assert sorted(got) == sorted((x.chrom, x.pos, x.ref, x.alts) for x in records(path))


def test_stdin_is_detected_as_vcf() -> None:
    r = helixgate("convert", "-", "--ndjson", stdin=vcf_file("vcf_example4.vcf.gz").read_bytes())
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2 + 9 + 3 + 2 + 1  # Patient, Specimen, results, study pair, report


@pytest.mark.parametrize(("args", "code", "message"), [  # the input: a file of the vcf corpus
    (("vcf_example1.vcf",), 1, b"error at line 4: REF '.' is not a sequence of bases"),
    (("vcf_example1.vcf", "--sample", "NOPE"), 1, b"sample 'NOPE' is not in the VCF"),
    (("vcf_example4.vcf", "--bed-convert", "/no/such.bed"), 1, b"cannot read /no/such.bed"),
    (("vcf_example4.vcf", "--source", "mixed"), 2, b"invalid choice: 'mixed'"),
])
def test_bad_input_and_usage(args: tuple[str, ...], code: int, message: bytes) -> None:
    r = helixgate("convert", str(vcf_file(args[0])), *args[1:])
    assert r.returncode == code, r.stderr
    assert message in r.stderr


def test_lenient_skips_and_counts() -> None:
    r = helixgate("convert", str(vcf_file("vcf_example1.vcf")), "--lenient", "-v")
    assert r.returncode == 0, r.stderr
    assert b"invalid-record 3" in r.stderr and b"warning line 4: record skipped: REF '.'" in r.stderr
