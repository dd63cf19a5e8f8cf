"""FHIR XML from the command line: `helixgate validate --format xml` (and --output FILE.xml), `helixgate convert
--to fhir-xml`, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from profiles.xml import xml_to_json
from tests.conftest import ROOT

ORU = ROOT / "examples" / "oru-egfr-somatic.hl7"
BAD = {"resourceType": "Patient", "gender": "sometimes", "birthDate": "1970-13-45"}


def helixgate(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "HELIXGATE_REDIS_URL": ""}  # the embedded cache: nothing shared between runs
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], capture_output=True, cwd=ROOT,
                          timeout=180, env=env)


def is_fhir_xml(data: bytes, root: str) -> bool:
    return data.startswith(f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="http://hl7.org/fhir">'.encode())


def test_validate_format_xml_is_the_json_outcome_in_xml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(BAD))
    as_json = helixgate("validate", "--format", "json", str(bad))
    as_xml = helixgate("validate", "--format", "xml", "--output", str(tmp_path / "out.xml"), str(bad))
    assert as_xml.returncode == as_json.returncode == 1, as_xml.stderr
    assert is_fhir_xml(as_xml.stdout, "OperationOutcome")
    outcome = xml_to_json(as_xml.stdout, None)
    assert outcome == orjson.loads(as_json.stdout)
    assert any(i["severity"] == "error" and "gender" in i["expression"][0] for i in outcome["issue"])
    assert (tmp_path / "out.xml").read_bytes() == as_xml.stdout  # --output FILE.xml: XML too
    two = helixgate("validate", "--format", "xml", str(bad), str(ROOT / "examples" / "cn-ws445-lab.json"))
    assert is_fhir_xml(two.stdout, "Bundle") and len(xml_to_json(two.stdout, None)["entry"]) == 2


def test_validate_format_xml_reports_unreadable_input_and_usage_errors_in_xml(tmp_path: Path) -> None:
    junk = tmp_path / "junk.xml"
    junk.write_bytes(b'<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>')
    r = helixgate("validate", "--format", "xml", str(junk))
    assert r.returncode == 1 and is_fhir_xml(r.stdout, "OperationOutcome")
    issue = xml_to_json(r.stdout, None)["issue"][0]
    assert issue["severity"] == "fatal" and "line 1" in issue["details"]["text"] + str(issue.get("extension"))
    usage = helixgate("validate", "--format", "xml", "--no-such-option", str(junk))
    assert usage.returncode == 2 and is_fhir_xml(usage.stdout, "OperationOutcome")
    assert "unrecognized arguments" in xml_to_json(usage.stdout, None)["issue"][0]["details"]["text"]


def test_convert_to_fhir_xml_is_the_fhir_output_in_xml(tmp_path: Path) -> None:
    as_json = helixgate("convert", str(ORU), "-o", str(tmp_path / "out.json"))
    assert as_json.returncode == 0, as_json.stderr
    r = helixgate("convert", str(ORU), "--to", "fhir-xml", "-o", str(tmp_path / "out.xml"))
    assert r.returncode == 0, r.stderr
    xml = (tmp_path / "out.xml").read_bytes()
    assert is_fhir_xml(xml, "Bundle")
    assert xml_to_json(xml, None) == orjson.loads((tmp_path / "out.json").read_bytes())
    assert b"converted: " in r.stderr and b"error" not in r.stderr.split(b"converted: ")[1][:12]  # validated
    again = helixgate("convert", str(ORU), "--to", "fhir-xml")
    assert again.stdout == xml  # same input, same bytes
    back = helixgate("convert", str(tmp_path / "out.xml"), "--to", "fhir-xml", "-o", str(tmp_path / "back.xml"))
    assert back.returncode == 0, back.stderr  # FHIR XML read (as the hub) and written again
    assert xml_to_json((tmp_path / "back.xml").read_bytes(), None) == xml_to_json(xml, None)


def test_translate_xml_is_the_parameters_in_xml() -> None:
    args = ("translate", "--system", "urn:oid:2.16.156.10011.2.3.3.4", "--code", "2")
    as_json = helixgate(*args, "--json")
    as_xml = helixgate(*args, "--xml")
    assert as_xml.returncode == as_json.returncode == 0, as_xml.stderr
    assert is_fhir_xml(as_xml.stdout, "Parameters")
    params = xml_to_json(as_xml.stdout, None)
    assert params == orjson.loads(as_json.stdout)
    assert {"name": "result", "valueBoolean": True} in params["parameter"]
