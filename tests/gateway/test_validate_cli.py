"""helixgate validate as a user runs it: table or OperationOutcome, exit 0/1/2, --profile, --ig."""

from __future__ import annotations

import os
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


# ---- --format json: the contract a CI parses ----
EXT_FILE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-file"
EXT_LINE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"
EXT_COL = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col"


def json_run(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    """Exit code and the one JSON document on stdout (the test fails when stdout holds anything else)."""
    r = subprocess.run([sys.executable, "-m", "gateway.cli.main", "validate", "--format", "json", *args],
                       capture_output=True, cwd=ROOT, timeout=120, env=env)
    assert b"Traceback" not in r.stderr, r.stderr.decode()
    return r.returncode, orjson.loads(r.stdout)


def errors(outcome: dict) -> list[str]:
    return [i["details"]["text"] for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


def extensions(element: dict) -> dict:
    return {e["url"]: e.get("valueInteger", e.get("valueString")) for e in element.get("extension", [])}


def test_unreadable_input_is_a_fatal_issue_with_line_and_column(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_bytes(b'{\n  "resourceType": "Patient",\n  gender: "male"\n}')
    code, outcome = json_run(str(bad_json))
    assert code == 1 and outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["severity"] == "fatal" and issue["code"] == "structure"
    assert extensions(issue) == {EXT_LINE: 3, EXT_COL: "3"}
    assert extensions(outcome) == {EXT_FILE: str(bad_json)}
    bad_xml = tmp_path / "bad.xml"
    bad_xml.write_bytes(b'<Patient xmlns="http://hl7.org/fhir">\n  <gender value="male">\n</Patient>')
    code, outcome = json_run(str(bad_xml))
    [issue] = outcome["issue"]
    assert code == 1 and issue["severity"] == "fatal" and extensions(issue)[EXT_LINE] == 3
    not_fhir = tmp_path / "list.json"
    not_fhir.write_bytes(b"[1, 2]")
    code, outcome = json_run(str(not_fhir))
    assert code == 1 and outcome["issue"][0]["severity"] == "fatal" and EXT_LINE not in extensions(outcome["issue"][0])
    code, outcome = json_run(str(tmp_path / "missing.json"))
    assert code == 1 and outcome["issue"][0]["code"] == "not-found"


def test_several_files_give_a_bundle_of_outcomes_that_itself_validates(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{nope")
    code, bundle = json_run(str(EXAMPLE), str(bad))
    assert code == 1 and bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    first, second = (e["resource"] for e in bundle["entry"])
    assert extensions(first) == {EXT_FILE: str(EXAMPLE)} and errors(first) == []
    assert extensions(second) == {EXT_FILE: str(bad)} and len(errors(second)) == 1
    # the output is FHIR R4 as the packages define it (the operationoutcome-* extensions included)
    out = tmp_path / "result.json"
    out.write_bytes(orjson.dumps(bundle))
    code, outcome = json_run(str(out))
    assert code == 0, errors(outcome)


def test_usage_errors_and_missing_packages_still_print_an_outcome(tmp_path: Path) -> None:
    code, outcome = json_run("--no-such-flag", str(EXAMPLE))
    assert code == 2 and "--no-such-flag" in outcome["issue"][0]["details"]["text"]
    code, outcome = json_run("-tx", "http://tx.example.org/fhir", str(EXAMPLE))
    assert code == 2 and outcome["issue"][0]["severity"] == "fatal"
    code, outcome = json_run("-version", "5.0.0", str(EXAMPLE))
    assert code == 2 and "R4" in outcome["issue"][0]["details"]["text"]
    code, outcome = json_run("-tx", "n/a", "--version", "4.0.1", str(EXAMPLE))
    assert code == 0 and errors(outcome) == []  # the values the HL7 validator's users pass are accepted
    empty = tmp_path / "no-packages"
    empty.mkdir()
    env = {**os.environ, "HELIXGATE_FHIR_PACKAGE_CACHE": str(empty), "HELIXGATE_CACHE_DIR": str(tmp_path / "c")}
    code, outcome = json_run(str(EXAMPLE), env=env)
    assert code == 3 and "helixgate packages install" in outcome["issue"][0]["details"]["text"]


# ---- the HL7 validator's options, by its names ----
def write(tmp_path: Path, name: str, resource: dict) -> str:
    path = tmp_path / name
    path.write_bytes(orjson.dumps(resource))
    return str(path)


def test_each_hl7_validator_flag_changes_the_verdict_it_names(tmp_path: Path) -> None:
    script = write(tmp_path, "script.json", {"resourceType": "Patient", "name": [{"text": "<script>x()</script>"}]})
    assert errors(json_run(script)[1]) == []  # the HL7 validator's default: no security checks
    assert any("script" in t.lower() or "html" in t.lower() for t in errors(json_run("-security-checks", script)[1]))

    dangling = write(tmp_path, "dangling.json", {"resourceType": "Observation", "status": "final",
                                                  "code": {"text": "x"}, "subject": {"reference": "Patient/nowhere"}})
    assert errors(json_run(dangling)[1]) == []
    assert any("Patient/nowhere" in t for t in errors(json_run("-check-references", dangling)[1]))

    wrong_type = write(tmp_path, "wrong-type.json", {"resourceType": "Observation", "status": "final",
                                                      "code": {"text": "x"}, "subject": {"reference": "Medication/1"}})
    assert errors(json_run(wrong_type)[1]) == []
    assert any("Medication" in t for t in errors(json_run("-assumeValidRestReferences", wrong_type)[1]))

    example = write(tmp_path, "example.json", {"resourceType": "Patient", "implicitRules": "http://example.org/rules"})
    assert errors(json_run(example)[1]) == []
    assert errors(json_run("-allow-example-urls", "false", example)[1]) != []
    assert errors(json_run("--allow-example-urls=true", example)[1]) == []
    assert errors(json_run("-allow-example-urls", example)[1]) == []  # no value: true, the file stays a file

    markdown = write(tmp_path, "markdown.json", {"resourceType": "Observation", "status": "final",
                                                 "code": {"text": "x"}, "note": [{"text": "see <b>this</b>"}]})
    warned = json_run(markdown)[1]
    assert errors(warned) == [] and any(i["severity"] == "warning" and "note" in str(i.get("expression"))
                                        for i in warned["issue"])
    assert errors(json_run("-html-in-markdown", "error", markdown)[1]) != []
    assert not any("note" in str(i.get("expression")) for i in json_run("-html-in-markdown", "ignore",
                                                                        markdown)[1]["issue"])

    marital = write(tmp_path, "marital.json", {"resourceType": "Patient", "maritalStatus": {"coding": [
        {"system": "http://hl7.org/fhir/administrative-gender", "code": "male"}]}})
    extensible = [i for i in json_run(marital)[1]["issue"] if "binding strength extensible" in i["details"]["text"]]
    assert [i["severity"] for i in extensible] == ["warning"]
    assert not any("binding strength extensible" in i["details"]["text"]
                   for i in json_run("-no-extensible-binding-warnings", marital)[1]["issue"])
    assert [i["severity"] for i in json_run("-level", "errors", marital)[1]["issue"]] == ["information"]  # "ok"


def test_bundle_rule_profile_and_ig_with_single_dashes(tmp_path: Path) -> None:
    sd = orjson.loads((IG / "StructureDefinition-variant.json").read_bytes())
    sd["url"] = "http://example.org/StructureDefinition/issued-variant"
    for e in sd["snapshot"]["element"]:
        if e["path"] == "Observation.issued":
            e["min"] = 1
    profile = write(tmp_path, "StructureDefinition-issued-variant.json", sd)
    observation = orjson.loads(EXAMPLE.read_bytes())
    observation.pop("issued", None)
    bundle = write(tmp_path, "bundle.json", {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:9d1d4a3e-95b1-4f8c-9e8a-0d7c0c1f3a11", "resource": observation}]})
    assert errors(json_run("-ig", profile, bundle)[1]) == []
    code, outcome = json_run("-ig", profile, "-bundle", "Observation:0", sd["url"], bundle)
    assert code == 1 and any("issued" in t for t in errors(outcome))
    single = write(tmp_path, "observation.json", observation)
    out = tmp_path / "out" / "result.json"
    out.parent.mkdir()
    code, outcome = json_run("-ig", profile, "-profile", sd["url"], "-output", str(out), single)
    assert code == 1 and orjson.loads(out.read_bytes()) == outcome
