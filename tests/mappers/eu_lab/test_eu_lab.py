"""Lab results → HL7 Europe Laboratory Report 2.0.0 documents: the must-have table checked as code, validation
against the package when it is installed (a stand-in package proves the validator picks it up), a report line
saying how to install it when it is not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.convert import InvalidOutput, run
from gateway.formats import Request
from mappers.eu_lab import must_have
from mappers.eu_lab.compose import COMPOSITION_REPORT, PACKAGE, PROFILES, REPORT_COMPOSITION, compose
from mappers.exceptions import EmitError
from mappers.toolkit.hanzi_names import REPRESENTATION
from mappers.toolkit.registry import ConvertOptions, detect, get
from profiles.context import usable_optional
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
V2 = ROOT / "tests" / "mappers" / "hl7v2" / "messages"
RECORDED = "2024-03-15T10:30:00+08:00"


def to_eu_lab(path: Path, validator: Any, recorded: str | None = None) -> tuple[dict, list[dict]]:
    data = path.read_bytes()
    out = run(data, Request(detect(data).name, "eu-lab", ConvertOptions(recorded=recorded)), validator)  # type: ignore[union-attr]
    return orjson.loads(out.body), out.outcome["issue"]


def hub(path: Path, recorded: str | None = None) -> dict:
    data = path.read_bytes()
    return detect(data).to_fhir(data, ConvertOptions(recorded=recorded)).bundle  # type: ignore[union-attr,misc]


def entries(doc: dict, rtype: str) -> list[tuple[str, dict]]:
    return [(e["fullUrl"], e["resource"]) for e in doc["entry"] if e["resource"]["resourceType"] == rtype]


@pytest.mark.parametrize(("name", "recorded"), [("cn-lab-record.utf8.xml", None), ("cn-ws445-lab.json", RECORDED),
                                                ("oru-egfr-somatic.hl7", None)])
def test_lab_sources_give_eu_lab_documents_with_every_must_have(name: str, recorded: str | None, validator) -> None:
    doc, issues = to_eu_lab(EXAMPLES / name, validator, recorded)
    assert must_have.check(doc) == []
    assert doc["meta"]["profile"] == [PROFILES["Bundle"]] and doc["type"] == "document" and doc["timestamp"]
    (comp_url, comp), = entries(doc, "Composition")
    (report_url, report), = entries(doc, "DiagnosticReport")
    assert doc["entry"][0]["resource"] is comp or doc["entry"][0]["fullUrl"] == comp_url
    assert comp["extension"] == [{"url": COMPOSITION_REPORT, "valueReference": {"reference": report_url}}]
    assert {"url": REPORT_COMPOSITION, "valueReference": {"reference": comp_url}} in report["extension"]
    assert comp["identifier"] in report["identifier"]  # dr-comp-identifier
    assert (comp["type"], comp.get("category"), comp["subject"], comp.get("encounter")) == (
        report["code"], report.get("category"), report["subject"], report.get("encounter"))
    results = {r["reference"] for r in report["result"]}
    assert results <= {e["reference"] for e in comp["section"][0]["entry"]}
    for full, obs in entries(doc, "Observation"):
        if full in results:
            assert PROFILES["Observation"] in obs["meta"]["profile"] and obs["performer"]
    (_, patient), = entries(doc, "Patient")
    assert PROFILES["Patient"] in patient["meta"]["profile"] and patient.get("birthDate")
    texts = [i["details"]["text"] for i in issues]
    installed = PACKAGE in usable_optional()
    assert any("not validated against HL7 Europe Laboratory Report" in t for t in texts) is not installed
    if not installed:
        assert any("--registry URL" in t and "packages install FILE.tgz" in t for t in texts)


def test_the_chinese_patient_has_both_name_forms(validator) -> None:
    doc, _ = to_eu_lab(EXAMPLES / "cn-lab-record.utf8.xml", validator)
    (_, patient), = entries(doc, "Patient")
    assert [(n["family"], n["extension"][-1]) for n in patient["name"]] == [
        ("OUYANG", {"url": REPRESENTATION, "valueCode": "ABC"}), ("欧阳", {"url": REPRESENTATION, "valueCode": "IDE"})]


def with_msh19(path: Path, value: str) -> bytes:
    segments = path.read_bytes().split(b"\r")
    fields = segments[0].split(b"|")
    assert len(fields) <= 18  # fields[n] is MSH-(n+1) (MSH-1 is the first '|'): the example has no MSH-19
    segments[0] = b"|".join([*fields, *[b""] * (18 - len(fields)), value.encode()])
    return b"\r".join(segments)


def test_the_document_carries_the_message_language_as_the_ips_composer_does(validator) -> None:
    data = with_msh19(EXAMPLES / "oru-egfr-somatic.hl7", "de-AT")
    out = run(data, Request("hl7v2", "eu-lab", ConvertOptions()), validator)  # validated at the edge
    doc = orjson.loads(out.body)
    (_, comp), = entries(doc, "Composition")
    assert doc["language"] == comp["language"] == "de-AT"
    assert must_have.check(doc) == []
    ips = orjson.loads(run(data, Request("hl7v2", "ips", ConvertOptions()), validator).body)
    assert (ips["language"], ips["entry"][0]["resource"]["language"]) == (doc["language"], comp["language"])
    undeclared, _ = compose(hub(EXAMPLES / "oru-egfr-somatic.hl7"), ConvertOptions())
    assert "language" not in undeclared and "language" not in undeclared["entry"][0]["resource"]


def test_several_reports_or_none_are_refused_by_name() -> None:
    with pytest.raises(EmitError) as e:
        compose(hub(V2 / "16-separate-lab-order-group.hl7"), ConvertOptions())
    assert e.value.issues[0].details == "eu-lab-report" and "one-dr" in str(e.value)
    bundle = hub(EXAMPLES / "cn-lab-record.utf8.xml")
    none = {**bundle, "entry": [e for e in bundle["entry"] if e["resource"]["resourceType"] != "DiagnosticReport"]}
    with pytest.raises(EmitError, match="has 0"):
        compose(none, ConvertOptions())


def _broken(mutate: Any) -> list[str]:
    doc, _ = compose(hub(EXAMPLES / "cn-lab-record.utf8.xml"), ConvertOptions())
    mutate(doc)
    return [i.message for i in must_have.check(doc)]


def _res(doc: dict, rtype: str) -> dict:
    return next(e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == rtype)


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: _res(d, "Composition").pop("extension"), "composition-diagnosticReportReference"),
    (lambda d: _res(d, "DiagnosticReport").pop("extension"), "DiagnosticReport.composition (R5)"),
    (lambda d: _res(d, "Composition").update(identifier={"value": "other"}), "dr-comp-identifier"),
    (lambda d: _res(d, "Composition").update(type={"text": "x"}), "dr-comp-type"),
    (lambda d: _res(d, "Composition").pop("encounter"), "dr-comp-enc"),
    (lambda d: _res(d, "Composition").update(section=[{"title": "t", "code": {"text": "c"}}]), "section[0].text"),
    (lambda d: _res(d, "Observation").pop("performer"), "performer: required"),
    (lambda d: _res(d, "Observation").pop("effectiveDateTime"), "effective[x]: required"),
    (lambda d: _res(d, "Observation").pop("valueQuantity"), "eu-lab-1"),
    (lambda d: _res(d, "Observation").update(category=[]), "laboratory category"),
    (lambda d: _res(d, "Specimen").pop("type"), "Specimen-eu-lab"),
    (lambda d: [_res(d, "Patient").pop(k) for k in ("birthDate", "_birthDate")], "birthDate: required"),
    (lambda d: _res(d, "Patient").update(name=[{"use": "official"}]), "eu-pat-1"),
    (lambda d: d.pop("identifier"), "Bundle.identifier"),
    (lambda d: d["entry"][1].update(request={"method": "POST", "url": "Patient"}), "not allowed"),
    (lambda d: d["entry"].append(dict(d["entry"][4])), "one-dr"),
])
def test_each_must_have_is_checked(mutate: Any, expected: str) -> None:
    assert _broken(lambda d: None) == []
    problems = _broken(mutate)
    assert any(expected in p for p in problems), problems


def test_a_must_have_missing_refuses_the_conversion_at_the_edge(validator, monkeypatch) -> None:
    import mappers.eu_lab.compose as eu

    monkeypatch.setattr(eu, "STUDY", {})  # a section without a code: the writer's own bug, caught by the check
    data = (EXAMPLES / "cn-lab-record.utf8.xml").read_bytes()
    with pytest.raises(InvalidOutput) as e:
        run(data, Request("cda-cn", "eu-lab", ConvertOptions()), validator)
    assert any("section[0].code" in i.message for i in e.value.issues)


def test_eu_lab_is_a_writer_validated_at_the_edge() -> None:
    fmt = get("eu-lab")
    assert fmt.to_fhir is None and fmt.check_output and fmt.fhir_of


def test_an_installed_eu_lab_package_is_validated_against(tmp_path: Path) -> None:
    """A package cache holding the installed packages plus a stand-in hl7.fhir.eu.laboratory#2.0.0 whose result
    profile requires Observation.bodySite: the conversion must fail on it (so the package is used), and the report
    no longer says the package is missing."""
    from profiles.packages import cache_dir

    for p in cache_dir().iterdir():
        (tmp_path / p.name).symlink_to(p)
    pkg = tmp_path / f"{PACKAGE}" / "package"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "hl7.fhir.eu.laboratory", "version": "2.0.0",
                                                  "fhirVersions": ["4.0.1"],
                                                  "dependencies": {"hl7.fhir.r4.core": "4.0.1"}}))
    (pkg / "StructureDefinition-Observation-resultslab-eu-lab.json").write_text(json.dumps({
        "resourceType": "StructureDefinition", "id": "Observation-resultslab-eu-lab", "url": PROFILES["Observation"],
        "version": "2.0.0", "name": "StandIn", "status": "draft", "fhirVersion": "4.0.1", "kind": "resource",
        "abstract": False, "type": "Observation", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "differential": {"element": [{"id": "Observation", "path": "Observation"},
                                     {"id": "Observation.bodySite", "path": "Observation.bodySite", "min": 1}]}}))
    env = {**os.environ, "HELIXGATE_FHIR_PACKAGE_CACHE": str(tmp_path), "HELIXGATE_CACHE_DIR": str(tmp_path / "c")}
    cli = subprocess.run([sys.executable, "-m", "gateway.cli.main", "convert", str(EXAMPLES / "cn-lab-record.utf8.xml"),
                          "--to", "eu-lab", "-o", str(tmp_path / "out.json")], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert cli.returncode == 1, cli.stderr
    assert "Observation.bodySite: minimum required = 1" in cli.stderr and PROFILES["Observation"] in cli.stderr
    ok = subprocess.run([sys.executable, "-m", "gateway.cli.main", "convert", str(EXAMPLES / "cn-lab-record.utf8.xml"),
                         "--to", "eu-lab", "--allow-invalid", "--report", str(tmp_path / "r.json"), "-o",
                         str(tmp_path / "out.json")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    report = (tmp_path / "r.json").read_text()
    assert ok.returncode == 0, ok.stderr
    assert "not validated against HL7 Europe Laboratory Report" not in report and "bodySite" in report


def test_http_target_eu_lab(embedded_gateway) -> None:
    import httpx

    body = (V2 / "08-gb18030-chinese-patient.hl7").read_bytes()
    r = httpx.post(f"{embedded_gateway.url}/fhir/$convert", content=body, params={"target": "eu-lab"},
                   headers={"Content-Type": "x-application/hl7-v2+er7"}, timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["meta"]["profile"] == [PROFILES["Bundle"]] and must_have.check(doc) == []
    several = (V2 / "16-separate-lab-order-group.hl7").read_bytes()
    r = httpx.post(f"{embedded_gateway.url}/fhir/$convert", content=several, params={"target": "eu-lab"},
                   headers={"Content-Type": "x-application/hl7-v2+er7"}, timeout=60)
    assert r.status_code == 422 and "one-dr" in r.text and r.json()["resourceType"] == "OperationOutcome"
