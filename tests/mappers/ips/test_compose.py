"""China and genomic sources → IPS 2.0.0 documents, validated with the installed IPS and Genomics IG packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.convert import run
from gateway.formats import Request
from mappers.exceptions import EmitError, MappingError
from mappers.ips.compose import compose
from mappers.ips.sections import IPS, LAB
from mappers.toolkit.hanzi_names import REPRESENTATION
from mappers.toolkit.registry import ConvertOptions, detect, get
from tests import corpora
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
V2 = ROOT / "tests" / "mappers" / "hl7v2" / "messages"
CN = ROOT / "tests" / "mappers" / "cda_cn" / "samples"
GENOMICS = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
RECORDED = "2024-03-15T10:30:00+08:00"


def to_ips(path: Path, validator: Any, source: str | None = None, recorded: str | None = None) -> tuple[dict, dict]:
    """The IPS document of `path` and its conversion report, through the same run() as CLI and HTTP (which
    validates the output and refuses it on any error)."""
    data = path.read_bytes()
    src = source or detect(data).name  # type: ignore[union-attr]
    out = run(data, Request(src, "ips", ConvertOptions(recorded=recorded)), validator)
    return orjson.loads(out.body), out.outcome


def resources(doc: dict, rtype: str) -> list[dict]:
    return [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == rtype]


def section(doc: dict, code: str) -> dict:
    comp = doc["entry"][0]["resource"]
    return next(s for s in comp["section"] if s["code"]["coding"][0]["code"] == code)


def errors(validator: Any, doc: dict) -> list[str]:
    outcome = validator.outcome(doc, ())
    return [str(i.get("diagnostics") or i.get("details")) for i in outcome["issue"]
            if i["severity"] in ("error", "fatal")]


def check_document(doc: dict, validator: Any) -> None:
    """What every IPS document must hold, beside the validator's verdict (0 errors)."""
    assert errors(validator, doc) == []
    assert doc["type"] == "document" and doc["meta"]["profile"] == [IPS + "Bundle-uv-ips"]
    assert doc["identifier"]["value"] and "T" in doc["timestamp"]
    comp = doc["entry"][0]["resource"]
    assert comp["resourceType"] == "Composition" and comp["type"]["coding"][0]["code"] == "60591-5"
    codes = [s["code"]["coding"][0]["code"] for s in comp["section"]]
    assert codes[:3] == ["11450-4", "48765-2", "10160-0"]  # the required sections, always there
    for s in comp["section"]:
        assert s["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        assert bool(s.get("entry")) != bool(s.get("emptyReason"))
    for e in doc["entry"][1:]:  # every resource in its IPS profile, where IPS has one for its type
        res = e["resource"]
        claims = res.get("meta", {}).get("profile", [])
        if res["resourceType"] in ("Patient", "DiagnosticReport", "Specimen", "Condition", "Organization",
                                   "Practitioner"):
            assert any(c.startswith(IPS) for c in claims), res["resourceType"]


def test_a_chinese_lab_document_becomes_a_valid_ips_document(validator) -> None:
    doc, outcome = to_ips(EXAMPLES / "cn-lab-record.utf8.xml", validator)
    check_document(doc, validator)
    results = section(doc, "30954-2")
    refs = [r["reference"] for r in results["entry"]]
    by_url = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    report = by_url[refs[0]]
    assert report["resourceType"] == "DiagnosticReport" and IPS + "DiagnosticReport-uv-ips" in report["meta"]["profile"]
    assert refs[1:] == [r["reference"] for r in report["result"]]  # the report, then its results, in order
    for ref in refs[1:]:
        obs = by_url[ref]
        assert LAB in obs["meta"]["profile"] and obs["performer"] == report["performer"]
    problems = section(doc, "11450-4")
    assert [by_url[r["reference"]]["resourceType"] for r in problems["entry"]] == ["Condition"]
    assert section(doc, "48765-2")["emptyReason"]["coding"][0]["code"] == "unavailable"
    # the source document is named, and its date is the IPS date
    comp = doc["entry"][0]["resource"]
    assert comp["relatesTo"] == [{"code": "transforms", "targetIdentifier": {
        "system": "urn:oid:2.16.156.10011.1.1", "value": "DOC-LAB-20240315-0001"}}]
    assert comp["date"] == "2024-03-15T10:30:00+08:00" == doc["timestamp"]
    assert not resources(doc, "Composition")[1:]  # the source Composition is replaced, not kept beside
    texts = [i["details"]["text"] for i in outcome["issue"]]
    assert any("replaced by the IPS Composition" in t for t in texts)
    assert any("report's performers are taken" in t for t in texts)


def test_the_chinese_patient_has_both_name_forms_and_keeps_the_resident_id(validator) -> None:
    doc, _ = to_ips(EXAMPLES / "cn-lab-record.utf8.xml", validator)
    patient = resources(doc, "Patient")[0]
    assert IPS + "Patient-uv-ips" in patient["meta"]["profile"]
    abc, ide = patient["name"]
    assert {"url": REPRESENTATION, "valueCode": "ABC"} in abc["extension"]
    assert {"url": REPRESENTATION, "valueCode": "IDE"} in ide["extension"]
    assert (abc["family"], abc["given"], abc["text"]) == ("OUYANG", ["MING"], "OUYANG MING")
    assert (ide["family"], ide["given"], ide["text"]) == ("欧阳", ["明"], "欧阳明")
    ni = next(i for i in patient["identifier"] if i["system"] == "urn:oid:2.16.156.10011.1.3")
    assert ni["type"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI",
                                       "display": "National unique individual identifier"}
    assert patient["birthDate"] == "1985-03-12" and patient["gender"] == "male"


@pytest.mark.parametrize("name", sorted(p.name for p in CN.glob("*.xml")))
def test_every_china_cda_sample_gives_a_valid_ips_document(name: str, validator) -> None:
    doc, _ = to_ips(CN / name, validator)
    check_document(doc, validator)
    assert section(doc, "30954-2")["entry"]


def test_a_ws445_dataset_needs_a_stated_time_and_then_converts(validator) -> None:
    with pytest.raises(EmitError) as e:
        to_ips(EXAMPLES / "cn-ws445-lab.json", validator)
    assert e.value.issues[0].details == "ips-no-time" and e.value.issues[0].expression == "Bundle.timestamp"
    doc, _ = to_ips(EXAMPLES / "cn-ws445-lab.json", validator, recorded=RECORDED)
    check_document(doc, validator)
    assert doc["timestamp"] == RECORDED  # the reader's Provenance.recorded, from the same stated instant
    assert [n["extension"][-1]["valueCode"] for n in resources(doc, "Patient")[0]["name"]] == ["ABC", "IDE"]


def test_a_genetic_oru_gives_an_ips_document_whose_results_are_the_genomic_report_and_variants(validator) -> None:
    doc, _ = to_ips(EXAMPLES / "oru-egfr-somatic.hl7", validator)
    check_document(doc, validator)
    by_url = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    entries = [by_url[r["reference"]] for r in section(doc, "30954-2")["entry"]]
    report = entries[0]
    assert report["meta"]["profile"] == [GENOMICS + "genomic-report", IPS + "DiagnosticReport-uv-ips"]
    variants = [o for o in entries[1:] if GENOMICS + "variant" in o["meta"]["profile"]]
    assert variants and all(LAB in v["meta"]["profile"] for v in variants)
    assert {r["reference"] for r in report["result"]} <= {r["reference"] for r in section(doc, "30954-2")["entry"]}


@pytest.mark.parametrize("name", ["02-brca1-deletion-germline.hl7", "04-crc-three-variants.hl7",
                                  "08-gb18030-chinese-patient.hl7", "10-mixed-genomic-and-lab-rows.hl7",
                                  "14-mtdna-homoplasmic.hl7"])
def test_genetic_orus_give_valid_ips_documents(name: str, validator) -> None:
    doc, _ = to_ips(V2 / name, validator)
    check_document(doc, validator)
    assert any(GENOMICS + "variant" in r.get("meta", {}).get("profile", []) for r in resources(doc, "Observation"))


def test_a_chinese_name_in_an_oru_gets_its_pinyin_form(validator) -> None:
    doc, _ = to_ips(V2 / "08-gb18030-chinese-patient.hl7", validator)
    names = resources(doc, "Patient")[0]["name"]
    assert [n["extension"][-1]["valueCode"] for n in names] == ["ABC", "IDE"]
    assert names[0]["family"].isascii() and names[0]["family"].isupper()
    assert not names[1]["family"].isascii()


def test_a_vcf_gives_an_ips_document_valid_against_ips_and_genomics(validator) -> None:
    doc, outcome = to_ips(EXAMPLES / "germline-grch38.vcf", validator, recorded=RECORDED)
    check_document(doc, validator)
    patient = resources(doc, "Patient")[0]
    assert patient["name"] == [{"_text": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/"
                                                                "data-absent-reason", "valueCode": "unknown"}]}}]
    assert any("has no name" in i["details"]["text"] for i in outcome["issue"])
    report = resources(doc, "DiagnosticReport")[0]
    assert GENOMICS + "genomic-report" in report["meta"]["profile"]


def test_same_input_same_bytes(validator) -> None:
    data = (EXAMPLES / "cn-lab-record.utf8.xml").read_bytes()
    req = Request("cda-cn", "ips", ConvertOptions())
    assert run(data, req, validator).body == run(data, req, validator).body


def test_the_callers_bundle_is_not_edited_and_a_patient_is_required() -> None:
    conv = get("cda-cn").to_fhir((EXAMPLES / "cn-lab-record.utf8.xml").read_bytes(), ConvertOptions())  # type: ignore[misc]
    bundle = conv.bundle
    before = orjson.dumps(bundle)
    compose(bundle, ConvertOptions())
    assert orjson.dumps(bundle) == before
    no_patient = {**bundle, "entry": [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]}
    with pytest.raises(EmitError) as e:
        compose(no_patient, ConvertOptions())
    assert e.value.issues[0].details == "ips-patient" and "no Patient" in str(e.value)
    two = {**bundle, "entry": [*bundle["entry"], {"fullUrl": "urn:uuid:0", "resource": {
        "resourceType": "Patient", "id": "other"}}]}
    with pytest.raises(EmitError, match="2 Patients"):
        compose(two, ConvertOptions())


def test_ips_is_a_writer_validated_at_the_edge() -> None:
    fmt = get("ips")
    assert fmt.to_fhir is None and fmt.from_fhir is not None and fmt.fhir_of is not None
    assert not fmt.sniff(b'{"resourceType": "Bundle"}')


def test_without_any_source_instant_the_callers_recorded_is_the_timestamp() -> None:
    conv = get("ws445").to_fhir((EXAMPLES / "cn-ws445-lab.json").read_bytes(), ConvertOptions())  # type: ignore[misc]
    assert not [e for e in conv.bundle["entry"] if e["resource"]["resourceType"] == "Provenance"]
    doc, issues = compose(conv.bundle, ConvertOptions(recorded=RECORDED))
    assert doc["timestamp"] == RECORDED
    assert "ips-time-recorded" in [i.details for i in issues]


def test_http_target_ips(embedded_gateway) -> None:
    import httpx

    body = (EXAMPLES / "cn-lab-record.utf8.xml").read_bytes()
    r = httpx.post(f"{embedded_gateway.url}/fhir/$convert", content=body, params={"target": "ips"},
                   headers={"Content-Type": "application/cda+xml"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    doc = r.json()
    assert doc["type"] == "document" and doc["entry"][0]["resource"]["type"]["coding"][0]["code"] == "60591-5"
    r = httpx.post(f"{embedded_gateway.url}/fhir/$convert", content=(EXAMPLES / "cn-ws445-lab.json").read_bytes(),
                   params={"target": "ips"}, headers={"Content-Type": "application/x-ws445+json"}, timeout=60)
    assert r.status_code == 422 and "Bundle.timestamp" in r.text and r.json()["resourceType"] == "OperationOutcome"


def _corpus_orus(folder: Path) -> list[Path]:
    from mappers.hl7v2 import parse_message

    files = [*sorted(folder.glob("microsoft-fhir-converter/*.hl7")), *sorted(folder.glob("google-hdh/*.hl7"))]
    return [p for p in files if parse_message(p.read_bytes()).message_type.startswith("ORU")]


@pytest.mark.parametrize("path", corpora.params("hl7v2", _corpus_orus), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_public_oru_sample_that_converts_gives_a_valid_ips_document(path: Path, validator) -> None:
    try:
        conv = get("hl7v2").to_fhir(path.read_bytes(), ConvertOptions())  # type: ignore[misc]
    except MappingError as e:  # refused by the reader (tests/mappers/hl7v2 says why): nothing to compose
        assert e.issues[0].details.startswith("hl7v2-")
        return
    try:
        doc, _ = compose(conv.bundle, ConvertOptions(recorded=RECORDED))
    except EmitError as e:  # an ORU about several patients, or none
        assert e.issues[0].details == "ips-patient"
        return
    check_document(doc, validator)


def test_an_entry_nothing_links_is_left_out_and_reported(validator) -> None:
    conv = get("cda-cn").to_fhir((EXAMPLES / "cn-lab-record.utf8.xml").read_bytes(), ConvertOptions())  # type: ignore[misc]
    loose = {"fullUrl": "urn:uuid:4a7c1f7e-0000-5000-8000-000000000001",
             "resource": {"resourceType": "Organization", "id": "4a7c1f7e-0000-5000-8000-000000000001", "name": "x"}}
    doc, issues = compose({**conv.bundle, "entry": [*conv.bundle["entry"], loose]}, ConvertOptions())
    assert loose["fullUrl"] not in {e["fullUrl"] for e in doc["entry"]}
    assert [i.message for i in issues if i.details == "document-unlinked"] == [
        "Organization/4a7c1f7e-0000-5000-8000-000000000001 is left out of the document: nothing in it links to or "
        "from the Composition"]
    check_document(doc, validator)


@pytest.mark.parametrize("name", ["Bundle-IPS-examples-Bundle-01.json", "Bundle-bundle-minimal.json"])
def test_an_ips_document_is_kept_as_it_is(name: str, validator) -> None:
    from profiles.packages import cache_dir

    path = cache_dir() / "hl7.fhir.uv.ips#2.0.0" / "package" / "example" / name
    out = run(path.read_bytes(), Request("fhir", "ips"), validator)
    assert orjson.loads(out.body) == orjson.loads(path.read_bytes())
    assert any(i["details"]["coding"][0]["code"] == "ips-already" for i in out.outcome["issue"])
