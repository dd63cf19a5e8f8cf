"""The shared reader of genomic content (mappers.fhir.genomics): findings recognised by code, then by claimed
profile, then by structure; codes of earlier releases read as the STU3 ones (tables/genomics.json); implications
linked to their findings; wrongly shaped content refused by name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.exceptions import ParseError
from mappers.fhir.genomics import classify, read, upgrade
from mappers.fhir.shape import check_resource

STU1 = Path(__file__).parent / "inputs" / "stu1-report.json"
LOINC = "http://loinc.org"
TBD = "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/tbd-codes-cs"


def obs(code: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Observation", "status": "final"}
    if code is not None:
        out["code"] = code
    return {**out, **more}


def loinc(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code}]}


def test_findings_are_recognised_by_code_then_profile_then_structure() -> None:
    assert classify(obs(loinc("69548-6"))) == ("variant", "code")
    assert classify(obs(loinc("94076-7"))) == ("biomarker", "code")
    assert classify(obs({"coding": [{"system": TBD, "code": "therapeutic-implication"}]})) == (
        "therapeutic-implication", "code")
    # an STU1 system spelling of the TBD code system is the same code system
    stu1 = {"coding": [{"system": "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/TbdCodes",
                        "code": "diagnostic-implication"}]}
    assert classify(obs(stu1)) == ("diagnostic-implication", "code")
    profiled = obs({"text": "variant"}, meta={"profile": ["http://hl7.org/fhir/us/mcode/StructureDefinition/"
                                                          "mcode-genomic-variant|2.0.0"]})
    assert classify(profiled) == ("variant", "profile")
    local = obs({"coding": [{"system": "urn:lab", "code": "VAR"}]},
                component=[{"code": loinc("48004-6"), "valueCodeableConcept": {"text": "NM_000059.3:c.1A>G"}}])
    assert classify(local) == ("variant", "structure")
    assert classify(obs(loinc("2345-7"))) == ("observation", "code")


def test_codes_of_earlier_releases_are_read_as_stu3() -> None:
    doc = orjson.loads(STU1.read_bytes())
    before = copy.deepcopy(doc)
    content = read(doc)
    assert doc == before  # the input is not modified
    var = next(e for e in content.entries if e.resource.get("id") == "v1")
    codes = [c["code"]["coding"][0] for c in var.resource["component"]]
    assert {"system": LOINC, "code": "81254-5", "display": "Variant exact start-end"} in codes  # STU1 TBD code
    assert codes[6]["code"] == "81252-9"  # the dbSNP variable read as a variation code
    systems = [c["valueCodeableConcept"]["coding"][0]["system"] for c in var.resource["component"][:2]]
    assert systems == ["http://www.genenames.org", "http://www.ncbi.nlm.nih.gov/refseq"]
    path = next(e for e in content.entries if e.resource.get("id") == "path1")
    assert path.kind == "diagnostic-implication" and "valueCodeableConcept" not in path.resource
    assert path.resource["component"][0] == {
        "code": {"coding": [{"system": LOINC, "code": "53037-8",
                             "display": "Genetic variation clinical significance"}]},
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA6668-3", "display": "Pathogenic"}]}}
    assert [e.resource["id"] for e in content.derived[var.index]] == ["path1"]
    said = [i.message for i in content.issues if i.details == "fhir-code-of-earlier-release"]
    assert any("TBD|exact-start-end read as http://loinc.org|81254-5" in m for m in said)
    assert [i.details for i in content.issues if i.details.startswith("fhir-recognised")] == [
        "fhir-recognised-by-profile"]  # the TMB with a text-only code


def test_stu2_therapeutic_component_is_renamed() -> None:
    impl = obs({"coding": [{"system": TBD, "code": "therapeutic-implication"}]}, component=[
        {"code": {"coding": [{"system": TBD, "code": "predicted-therapeutic-implication"}]},
         "valueCodeableConcept": loinc("LA9661-5")}])
    out = upgrade(impl)
    assert out["component"][0]["code"]["coding"] == [{"system": TBD, "code": "therapeutic-implication",
                                                      "display": "Therapeutic Implication"}]


def test_upgrade_leaves_what_it_cannot_read() -> None:
    junk: Any = [obs(loinc("69548-6"), component="not a list"), obs(loinc("69548-6"), component=[7, {"code": 3}]),
                 {"resourceType": "Patient"}, "text", None]
    for item in junk:
        assert upgrade(item) == item


def test_reports_are_genomic_by_code_category_profile_or_results() -> None:
    def report(**more: Any) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:r", "resource": {"resourceType": "DiagnosticReport", "status": "final",
                                                   "code": loinc("11502-2"), **more}},
            {"fullUrl": "urn:uuid:v", "resource": obs(loinc("69548-6"))}]}

    for more, genomic in (({}, False), ({"code": loinc("81247-9")}, True),
                          ({"category": [{"coding": [{"code": "GE"}]}]}, True),
                          ({"meta": {"profile": ["http://hl7.org/fhir/us/mcode/StructureDefinition/"
                                                 "mcode-genomics-report"]}}, True),
                          ({"result": [{"reference": "urn:uuid:v"}]}, True)):
        content = read(report(**more))
        assert content.is_genomic_report(content.entries[0]) is genomic, more


@pytest.mark.parametrize(("path", "bad"), [
    (("entry",), {"resource": {}}),
    (("entry", 0), "Observation/1"),
    (("entry", 0, "resource", "component"), {"code": loinc("48004-6")}),
    (("entry", 0, "resource", "code", "coding", 0), "http://loinc.org|69548-6"),
    (("entry", 0, "resource", "code", "coding"), {"code": "69548-6"}),
    (("entry", 0, "resource", "component", 0, "valueQuantity", "value"), "0.5"),
    (("entry", 0, "resource", "component", 0, "valueQuantity", "value"), True),
    (("entry", 0, "resource", "subject"), "Patient/p1"),
    (("entry", 0, "resource", "note"), "a note"),
    (("entry", 0, "resource", "id"), 12),
    (("entry", 0, "resource", "resourceType"), ["Observation"]),
])
def test_wrongly_typed_content_is_refused_by_name(path: tuple[Any, ...], bad: Any) -> None:
    doc: dict[str, Any] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": obs(
        loinc("69548-6"), component=[{"code": loinc("81258-6"), "valueQuantity": {"value": 0.5}}])}]}
    holder: Any = doc
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = bad
    with pytest.raises(ParseError) as e:
        read(doc)
    issue = e.value.issues[0]
    assert issue.details in ("fhir-wrong-type", "fhir-not-a-resource") and issue.expression
    assert issue.expression.startswith("Bundle")


def test_content_nested_without_end_is_refused() -> None:
    deep: dict[str, Any] = {"reference": "Patient/p"}
    cur = deep
    for _ in range(3000):  # Reference.identifier.assigner.identifier…
        cur["identifier"] = {"value": "v", "assigner": {}}
        cur = cur["identifier"]["assigner"]
    with pytest.raises(ParseError, match="nested too deeply"):
        check_resource(obs(subject=deep), "Observation")
    with pytest.raises(ParseError):  # read() meets it first as JSON no writer takes
        read({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": obs(subject=deep)}]})
    ext: dict[str, Any] = {"url": "urn:x"}
    cur = ext
    for _ in range(400):  # deeper than JSON writers go, in an element no writer reads
        cur["extension"] = [{"url": "urn:x"}]
        cur = cur["extension"][0]
    with pytest.raises(ParseError, match="cannot be written as JSON"):
        read({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": obs(extension=[ext])}]})
