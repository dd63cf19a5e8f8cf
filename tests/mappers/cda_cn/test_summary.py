"""EU → China: IPS documents → the WS/T 500 part 1 medical-record summary (病历概要, C0001), and their lab results
→ the C0007 lab record."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.convert import run
from gateway.formats import Request
from mappers.cda_cn import from_fhir
from mappers.cda_cn.safexml import parse_xml
from mappers.cda_cn.summary import is_ips, table
from mappers.exceptions import EmitError
from mappers.toolkit.registry import ConvertOptions, get
from profiles.packages import cache_dir
from tests.conftest import ROOT

V3 = {"v3": "urn:hl7-org:v3"}
IPS_EXAMPLES = sorted((cache_dir() / "hl7.fhir.uv.ips#2.0.0" / "package" / "example").glob("Bundle-*.json"))
EXAMPLES = ROOT / "examples"


def xpath(doc: etree._Element, path: str) -> list:
    return doc.xpath(path, namespaces=V3)


def ips_of(path: Path, validator) -> bytes:
    data = path.read_bytes()
    return run(data, Request(get("cda-cn").name if path.suffix == ".xml" else "hl7v2", "ips"), validator).body


@pytest.mark.parametrize("path", IPS_EXAMPLES, ids=lambda p: p.name)
def test_every_ips_example_document_gives_a_c0001_summary(path: Path) -> None:
    import orjson

    bundle = orjson.loads(path.read_bytes())
    assert is_ips(bundle)
    out = from_fhir(bundle)  # structurally checked CDA R2 inside (mappers.cda_cn.validate)
    doc = parse_xml(out.data)[0]
    assert xpath(doc, "/v3:ClinicalDocument/v3:templateId/@root") == ["2.16.156.10011.2.1.1.21"]
    assert xpath(doc, "/v3:ClinicalDocument/v3:code/@code") == ["C0001"]
    assert xpath(doc, "//v3:recordTarget/v3:patientRole/v3:patient/v3:name/text()")
    comp = bundle["entry"][0]["resource"]
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    by_url |= {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in bundle["entry"]}
    sections = {s["code"]["coding"][0]["code"]: [by_url.get(r["reference"]) for r in s.get("entry", [])]
                for s in comp["section"]}
    problems = [r for r in sections.get("11450-4", []) if r]
    if problems:  # the problems as 疾病史 text
        text = xpath(doc, "//v3:section[v3:code/@code='11348-0']/v3:entry/v3:observation"
                          "[v3:code/@code='DE02.10.026.00']/v3:value/text()")
        assert text and all((p["code"].get("text") or p["code"]["coding"][0].get("display", "")) in text[0]
                            for p in problems)
    allergies = [r for r in sections.get("48765-2", []) if r]
    assert bool(xpath(doc, "//v3:observation[v3:code/@code='DE02.10.022.00']")) == bool(allergies)
    reported = " ".join(i.message for i in out.issues)
    for code, items in sections.items():
        if items and code in table()["not_carried"] and code != "10160-0":
            assert f"IPS section {code} not carried" in reported, code


def test_the_all_sections_example_reports_its_unverified_mappings() -> None:
    import orjson

    path = next(p for p in IPS_EXAMPLES if "all-sections" in p.name)
    out = from_fhir(orjson.loads(path.read_bytes()))
    unverified = [i.message for i in out.issues if i.details == "cda-unverified-mapping"]
    assert any("29762-2" in m and "个人史" in m for m in unverified)  # social history → 个人史: a mapping choice


def test_a_chinese_lab_record_round_trips_through_ips_to_a_summary_and_a_lab_record(validator) -> None:
    ips = ips_of(EXAMPLES / "cn-lab-record.utf8.xml", validator)
    summary = run(ips, Request("fhir", "cda-cn"), validator)  # an IPS document: C0001 by default
    doc = parse_xml(summary.body)[0]
    assert xpath(doc, "/v3:ClinicalDocument/v3:code/@code") == ["C0001"]
    assert xpath(doc, "//v3:patient/v3:name/text()") == ["欧阳明"]  # the IDE form, not the pinyin
    assert xpath(doc, "//v3:patient/v3:id/@extension") == ["110105198503121234"]
    # the national diagnosis code the source carried, not its WHO category
    assert xpath(doc, "//v3:observation[v3:code/@code='DE05.01.024.00']/v3:value/@code") == ["K35.800x001"]
    assert "cda-unverified-mapping" not in summary.body.decode() and "not carried" in str(summary.outcome)
    record = run(ips, Request("fhir", "cda-cn", ConvertOptions(params=(("document", "report"),))), validator)
    lab = parse_xml(record.body)[0]
    source = parse_xml((EXAMPLES / "cn-lab-record.utf8.xml").read_bytes())[0]
    assert xpath(lab, "/v3:ClinicalDocument/v3:code/@code") == ["C0007"]
    values = "//v3:observation[v3:code/@code='DE04.30.015.00']/v3:value/@value"
    assert sorted(xpath(lab, values)) == sorted(xpath(source, values)) != []


def test_a_summary_is_only_written_from_an_ips_document() -> None:
    conv = get("cda-cn").to_fhir((EXAMPLES / "cn-lab-record.utf8.xml").read_bytes(), ConvertOptions())  # type: ignore[misc]
    with pytest.raises(EmitError) as e:
        from_fhir(conv.bundle, document="summary")
    assert e.value.issues[0].details == "cda-not-ips"
    assert b"C0007" in from_fhir(conv.bundle).data  # a plain Bundle keeps the lab record


def test_the_mapping_table_marks_each_mapping() -> None:
    spec = table()
    rows = [*spec["sections"], spec["events"]["diagnosis"], spec["events"]["medication"]]
    assert all(r["verified"] in ("template", "unverified") and r["note"] for r in rows)
    assert any(r["verified"] == "unverified" for r in rows)
