"""FHIR → HL7 v2 on authored inputs (tests/mappers/fhir/inputs): every component of a variant as an LRI row in its
OBX-4 group, an STU1 implication in the variant's group, biomarkers as overall rows, the signed PDF as an ED row;
what the message cannot carry is reported; refusals name why; wrongly shaped content never crashes the writer."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.exceptions import EmitError, MappingError
from mappers.hl7v2 import EmitOptions, from_fhir
from tests.mappers.hl7v2.v2facts import groups, message, variant_groups

INPUTS = Path(__file__).parents[1] / "fhir" / "inputs"
STU1 = INPUTS / "stu1-report.json"


def stu1() -> dict[str, Any]:
    return orjson.loads(STU1.read_bytes())


def test_stu1_report_writes_every_component_and_reports_the_rest() -> None:
    out = from_fhir(STU1.read_bytes())
    msg = message(out.data)
    assert msg.msh.get(7) == "20190603101500+0200"  # Bundle.timestamp: the input's own time
    var = variant_groups(msg)
    assert list(var) == ["2a"]
    g = var["2a"]
    assert g["48018-6"] == ["HGNC:1100"] and g["48013-7"] == ["NC_000017.10"]
    assert g["81254-5"] == ["41245466"] and g["69547-8"] == ["G"] and g["69551-0"] == ["A"]
    assert g["53034-5"] == ["LA6706-1"] and g["81255-2"] == ["rs80357713"] and g["69548-6"] == ["LA9633-4"]
    # the STU1 pathogenicity Observation (value 53037-8) is the variant's implication, in its group
    assert g["53037-8"] == ["LA6668-3"] and g["81259-4"] == ["254843006"]
    rows = groups(msg)
    assert rows["1"] == {"": ["4"]}  # the TMB (a code of text only): an overall-study row
    tmb = next(o for o in msg.all("OBX") if o.get(4) == "1")
    assert (tmb.get(8), tmb.get(14)) == ("L", "")  # interpretation kept; the impossible date is not written
    pdf = next(o for o in msg.all("OBX") if o.get(2) == "ED")
    assert [pdf.get(5, c) for c in (2, 3, 4, 5)] == ["application", "pdf", "Base64", "JVBERi0xLjQK"]
    notes = [n.get(3) for n in msg.all("NTE")]
    assert notes == ["One pathogenic variant.", "confirmed by Sanger sequencing"]
    warned = {(i.details, i.expression) for i in out.issues if i.severity == "warning"}
    assert warned == {
        ("hl7v2-value-not-carried", "Bundle.entry[2].resource.component[7].valuePeriod"),
        ("fhir-bad-datetime", "Bundle.entry[4].resource.effectiveDateTime"),
        ("fhir-result-not-reported", "Bundle.entry[5].resource"),
        ("fhir-element-not-carried", "Bundle.entry[0].resource.maritalStatus"),
        ("fhir-element-not-carried", "Bundle.entry[1].resource.presentedForm[0].title"),
    }


def test_zero_based_coordinates_are_written_one_based() -> None:
    doc = stu1()
    var = doc["entry"][2]["resource"]
    var["component"].append({"code": {"coding": [{"system": "http://loinc.org", "code": "92822-6"}]},
                             "valueCodeableConcept": {"coding": [{"system": "http://loinc.org",
                                                                  "code": "LA30100-4"}]}})
    var["component"][2]["valueRange"] = {"low": {"value": 41245465}, "high": {"value": 41245466}}
    g = variant_groups(message(from_fhir(doc).data))["2a"]
    assert g["81254-5"] == ["41245466"] and g["92822-6"] == ["LA30102-0"]


def test_several_implications_keep_their_rows_paired() -> None:
    doc = stu1()
    for n, drug in enumerate(("1727455", "1921217")):
        doc["entry"].append({"fullUrl": f"urn:uuid:ti{n}", "resource": {
            "resourceType": "Observation", "id": f"ti{n}", "status": "final",
            "code": {"coding": [{"system": "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/tbd-codes-cs",
                                 "code": "therapeutic-implication"}]},
            "derivedFrom": [{"reference": "Observation/v1"}],
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "51963-7"}]},
                           "valueCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/"
                                                                "rxnorm", "code": drug}]}}]}})
    rows = groups(message(from_fhir(doc).data))
    assert rows["2a.1"] == {"53037-8": ["LA6668-3"], "81259-4": ["254843006"]}
    assert rows["2a.2"]["51963-7"] == ["1727455"] and rows["2a.3"]["51963-7"] == ["1921217"]


def test_message_time_comes_from_the_input_or_the_caller_never_the_clock() -> None:
    doc = stu1()
    del doc["timestamp"]
    assert message(from_fhir(doc).data).msh.get(7) == "20190601090000+0200"  # the report's issue time
    del doc["entry"][1]["resource"]["issued"]
    stated = from_fhir(doc, EmitOptions(timestamp="2020-02-02T02:02:02Z"))
    assert message(stated.data).msh.get(7) == "20200202020202+0000"
    guessed = from_fhir(doc)  # MSH-7 is required: the latest time a report or result states, said so
    assert message(guessed.data).msh.get(7) == "20190530"
    assert [(i.details, i.expression) for i in guessed.issues if i.details.startswith("hl7v2-message-time")] == [
        ("hl7v2-message-time-guessed", "Bundle.entry[1].resource.effectiveDateTime")]
    del doc["entry"][1]["resource"]["effectiveDateTime"]
    out = from_fhir(doc)  # the TMB's effective time is not a real date: nothing is left
    assert message(out.data).msh.get(7) == "" and "hl7v2-no-message-time" in [i.details for i in out.issues]
    assert from_fhir(doc).data == out.data


def test_results_without_a_report_get_one_synthesized_order() -> None:
    doc = stu1()
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] in ("Patient", "Observation")]
    out = from_fhir(doc)
    msg = message(out.data)
    assert [s.name for s in msg.segments if s.name in ("PID", "ORC", "OBR")] == ["PID", "OBR"]
    assert msg.first("OBR").get(4) == "81247-9"  # type: ignore[union-attr]
    assert list(variant_groups(msg)) == ["2a"]
    assert "hl7v2-order-synthesized" in [i.details for i in out.issues]


def test_refusals_say_why() -> None:
    with pytest.raises(EmitError, match="no DiagnosticReport and no Observation"):
        from_fhir({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p"}}]})
    two = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{p}"},
                      "code": {"coding": [{"system": "http://loinc.org", "code": "69548-6"}]}}} for p in "ab"]}
    with pytest.raises(EmitError, match="2 subjects"):
        from_fhir(two)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def test_wrongly_typed_content_never_crashes_the_writer() -> None:
    """Every element of the authored report replaced, one at a time, by a value of each other JSON type: the
    writer converts or refuses with a MappingError (ParseError/EmitError), never another exception."""
    doc = stu1()
    paths = [p for p in _paths(doc) if p]
    assert len(paths) > 150
    for path in paths:
        for bad in ("x", 7, [1], {"a": 1}, None, True):
            mutated = copy.deepcopy(doc)
            holder = mutated
            for step in path[:-1]:
                holder = holder[step]
            holder[path[-1]] = bad
            with contextlib.suppress(MappingError):  # a refusal is fine; any other exception fails the test
                from_fhir(mutated)


def test_genotypes_phases_and_molecular_consequences() -> None:
    """A genotype gets a group of its own (its value under its own code); a sequence-phase relationship is an
    allelic-phase row (82120-7) of each variant it relates; a molecular consequence is an implication sub-group."""
    tbd = "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/tbd-codes-cs"

    def o(oid: str, code: dict[str, Any], **more: Any) -> dict[str, Any]:
        return {"fullUrl": f"urn:uuid:{oid}", "resource": {"resourceType": "Observation", "id": oid,
                                                           "status": "final", "code": code, **more}}

    def loinc(code: str) -> dict[str, Any]:
        return {"coding": [{"system": "http://loinc.org", "code": code}]}

    def hgvs(text: str) -> list[dict[str, Any]]:
        return [{"code": loinc("48004-6"), "valueCodeableConcept": {"coding": [
            {"system": "http://varnomen.hgvs.org", "code": text}]}}]

    doc = {"resourceType": "Bundle", "type": "collection", "timestamp": "2024-01-02T03:04:05Z", "entry": [
        {"fullUrl": "urn:uuid:r", "resource": {"resourceType": "DiagnosticReport", "status": "final",
                                               "code": loinc("51969-4"), "result": [
                                                   {"reference": f"urn:uuid:{x}"} for x in ("g", "v1", "v2", "p")]}},
        o("g", loinc("84413-4"), valueCodeableConcept={"text": "CYP2C19 *1/*2"}),
        o("v1", loinc("69548-6"), component=hgvs("NM_000769.4:c.681G>A")),
        o("v2", loinc("69548-6"), component=hgvs("NM_000769.4:c.-806C>T")),
        o("p", loinc("82120-7"), valueCodeableConcept={"coding": [{"code": "Trans"}]},
          derivedFrom=[{"reference": "urn:uuid:v1"}, {"reference": "urn:uuid:v2"}]),
        o("mc", {"coding": [{"system": tbd, "code": "molecular-consequence"}]},
          derivedFrom=[{"reference": "urn:uuid:v1"}],
          component=[{"code": {"coding": [{"system": tbd, "code": "feature-consequence"}]},
                      "valueCodeableConcept": {"coding": [{"system": "http://www.sequenceontology.org",
                                                           "code": "SO:0001589"}]}}]),
    ]}
    out = from_fhir(doc)
    rows = groups(message(out.data))
    assert rows["2a"] == {"84413-4": [""]}  # a genotype stated as text: OBX-5 CWE text only
    assert rows["2b"] == {"48004-6": ["NM_000769.4:c.681G>A"], "82120-7": ["Trans"]}
    assert rows["2b.1"] == {"feature-consequence": ["SO:0001589"]}
    assert rows["2c"] == {"48004-6": ["NM_000769.4:c.-806C>T"], "82120-7": ["Trans"]}
    assert [i.details for i in out.issues if i.severity == "warning"] == []


def test_variants_from_a_vcf_keep_their_vcf_positions() -> None:
    """VCF → FHIR (0-based intervals) → v2: every record is a variant group whose LRI start is the VCF POS."""
    from mappers.toolkit.registry import ConvertOptions, get

    vcf = Path(__file__).parents[3] / "examples" / "germline-grch38.vcf"
    records = [line.split("\t") for line in vcf.read_text().splitlines() if not line.startswith("#")]
    bundle = get("vcf").to_fhir(vcf.read_bytes(), ConvertOptions()).bundle
    out = from_fhir(bundle)
    var = variant_groups(message(out.data))
    written = sorted((g["81254-5"][0], g["69547-8"][0], g["69551-0"][0]) for g in var.values() if "81254-5" in g)
    # simple alleles of called, passing records (symbolic ones are structural variants: outer/inner start-end)
    expected = sorted((r[1], r[3], alt) for r in records if r[6] == "PASS" and not r[9].startswith("./.")
                      for alt in r[4].split(",") if not alt.startswith("<"))
    assert written == expected and len(expected) == 9
    shifted = [i for i in out.issues if i.details == "hl7v2-coordinates-shifted"]
    assert len(shifted) == 1 and f"({len(var)} variants)" in shifted[0].message
