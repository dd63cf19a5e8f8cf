"""FHIR → Phenopacket from Bundles other converters made: the HL7 v2 and VCF examples' genomic reports become
interpretations the official package reads, with the facts of the source messages (their values are read from the
examples, never from this converter); Bundles no phenopacket can hold are refused by name."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mappers.exceptions import EmitError, ParseError
from mappers.phenopacket import schema
from mappers.phenopacket.from_fhir import from_fhir
from mappers.toolkit.registry import ConvertOptions, get
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"


def via(source: str, name: str) -> tuple[dict[str, Any], list[Any]]:
    fmt = get(source)
    assert fmt.to_fhir is not None
    bundle = fmt.to_fhir((EXAMPLES / name).read_bytes(), ConvertOptions()).bundle
    data, issues = from_fhir(bundle)
    return schema.read(data, "Phenopacket").doc, issues


def variants(pp: dict[str, Any]) -> list[dict[str, Any]]:
    return [gi["variantInterpretation"] for i in pp["interpretations"]
            for gi in i["diagnosis"]["genomicInterpretations"]]


def test_an_hl7v2_genetic_result_becomes_an_interpretation() -> None:
    pp, issues = via("hl7v2", "oru-egfr-somatic.hl7")
    message = (EXAMPLES / "oru-egfr-somatic.hl7").read_text()
    assert pp["subject"]["id"] in message  # PID-3
    (vi,) = variants(pp)
    vd = vi["variationDescriptor"]
    assert vd["geneContext"] == {"valueId": "HGNC:3236", "symbol": "EGFR"}
    hgvs = [e["value"] for e in vd["expressions"]]
    assert hgvs and all(h in message for h in hgvs)  # the expressions verbatim
    assert vd["vcfRecord"]["chrom"] == "chr7" and vd["vcfRecord"]["pos"] in message
    assert vi["acmgPathogenicityClassification"] == "PATHOGENIC" and "LA6668-3" in message
    # the somatic source class and the read depth have no VariationDescriptor field: said so
    left = [i.message for i in issues if i.details == "phenopacket-variant-fact-not-carried"]
    assert any("source class" in m for m in left) and any("read depth" in m for m in left)


def test_a_vcf_conversion_becomes_an_interpretation_of_each_call() -> None:
    pp, issues = via("vcf", "germline-grch38.vcf")
    records = [line.split("\t") for line in (EXAMPLES / "germline-grch38.vcf").read_text().splitlines()
               if line and not line.startswith("#")]
    positions = {r[1] for r in records}
    calls = [c for c in variants(pp) if "vcfRecord" in c["variationDescriptor"]]
    assert calls and {c["variationDescriptor"]["vcfRecord"]["pos"] for c in calls} <= positions
    assert all(c["variationDescriptor"]["vcfRecord"]["genomeAssembly"] == "GRCh38" for c in calls)
    # a structural variant's outer/inner span has no VcfRecord place: it is kept without one, and said so
    left = [i.message for i in issues if i.details == "phenopacket-variant-fact-not-carried"]
    assert len(variants(pp)) - len(calls) == 1 and any("outer" in m for m in left)
    states = {c["variationDescriptor"].get("allelicState", {}).get("id") for c in calls}
    assert "GENO:0000135" in states  # a 0/1 call: heterozygous
    assert pp["metaData"]["phenopacketSchemaVersion"] == "2.0"


def test_several_patients_are_refused_by_name() -> None:
    patient = {"resourceType": "Patient", "id": "a"}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": patient}, {"resource": {**patient, "id": "b"}}]}
    with pytest.raises(EmitError, match="2 patients"):
        from_fhir(bundle)


def test_content_of_the_wrong_shape_is_a_parse_error() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": {"resourceType": "Observation", "code": "HP:0001250", "status": "final"}}]}
    with pytest.raises(ParseError):
        from_fhir(bundle)


def test_a_bundle_of_phenotypes_only() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": "2024-01-02T03:04:05Z", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "p", "gender": "female"}},
        {"resource": {"resourceType": "Observation", "status": "final", "subject": {"reference": "urn:uuid:1"},
                      "code": {"coding": [{"system": "http://human-phenotype-ontology.org", "code": "HP:0001250",
                                           "display": "Seizure"}]}}}]}
    pp = orjson.loads(from_fhir(bundle)[0])
    assert pp["subject"] == {"id": "p", "sex": "FEMALE"}
    assert pp["phenotypicFeatures"] == [{"type": {"id": "HP:0001250", "label": "Seizure"}}]
    assert pp["metaData"]["created"] == "2024-01-02T03:04:05Z"
    assert pp["metaData"]["resources"][0]["namespacePrefix"] == "HP"


PRECISIONS = {  # FHIR date/dateTime → the phenopacket Timestamp, or None: left out and reported
    "2015": None,  # year
    "2015-10": None,  # year-month
    "2015-10-10": None,  # date: a timestamp would invent a time of day and a zone
    "2015-10-10T09:15:00": None,  # a time without a zone (not valid FHIR either)
    "2015-10-10T09:15:00+01:00": "2015-10-10T08:15:00Z",  # the same instant, as protobuf writes it
    "2015-10-10T09:15:00.5Z": "2015-10-10T09:15:00.500Z",
}


def dated_bundle(when: str) -> dict[str, Any]:
    subject = {"reference": "urn:uuid:p"}
    hpo = {"coding": [{"system": "http://human-phenotype-ontology.org", "code": "HP:0001250"}]}
    return {"resourceType": "Bundle", "type": "collection", "timestamp": "2024-01-02T03:04:05Z", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p", "deceasedDateTime": when}},
        {"resource": {"resourceType": "Observation", "status": "final", "subject": subject, "effectiveDateTime": when,
                      "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                      "valueQuantity": {"value": 5.1, "system": "http://unitsofmeasure.org", "code": "mmol/L"}}},
        {"resource": {"resourceType": "Condition", "subject": subject, "code": hpo, "onsetDateTime": when,
                      "abatementPeriod": {"start": when, "end": "2016-01-01T00:00:00Z"}}},
        {"resource": {"resourceType": "Procedure", "status": "completed", "subject": subject, "code": hpo,
                      "performedPeriod": {"start": "2014-01-01T00:00:00Z", "end": when}}}]}


@pytest.mark.parametrize(("when", "stamp"), PRECISIONS.items())
def test_a_date_is_a_timestamp_only_at_full_precision_with_a_zone(when: str, stamp: str | None) -> None:
    data, issues = from_fhir(dated_bundle(when))
    pp = schema.read(data, "Phenopacket").doc  # what the writer's own check reads
    assert get("phenopacket").check_output(data) == []  # type: ignore[misc]
    (measurement,) = pp["measurements"]
    (disease,) = pp["diseases"]
    (action,) = pp["medicalActions"]
    assert pp["subject"]["vitalStatus"]["status"] == "DECEASED"  # the fact stays; only its time may not
    places = {"Bundle.entry[0].resource.deceasedDateTime": pp["subject"]["vitalStatus"].get("timeOfDeath"),
              "Bundle.entry[1].resource.effectiveDateTime": measurement.get("timeObserved"),
              "Bundle.entry[2].resource.onsetDateTime": disease.get("onset"),
              "Bundle.entry[2].resource.abatementPeriod": disease.get("resolution"),
              "Bundle.entry[3].resource.performedPeriod": action["procedure"].get("performed")}
    reported = {i.expression: i.message for i in issues if i.details == "phenopacket-time-not-carried"}
    if stamp is None:
        assert all(te is None for te in places.values()), places
        assert sorted(reported) == sorted(places)
        assert all(f"'{when}'" in message for message in reported.values())
    else:
        assert reported == {}
        assert places == {
            "Bundle.entry[0].resource.deceasedDateTime": {"timestamp": stamp},
            "Bundle.entry[1].resource.effectiveDateTime": {"timestamp": stamp},
            "Bundle.entry[2].resource.onsetDateTime": {"timestamp": stamp},
            "Bundle.entry[2].resource.abatementPeriod": {"interval": {"start": stamp, "end": "2016-01-01T00:00:00Z"}},
            "Bundle.entry[3].resource.performedPeriod": {"interval": {"start": "2014-01-01T00:00:00Z", "end": stamp}},
        }


def test_the_reason_names_the_precision() -> None:
    reasons = {when: next(i.message for i in from_fhir(dated_bundle(when))[1]
                          if i.details == "phenopacket-time-not-carried") for when, stamp in PRECISIONS.items()
               if stamp is None}
    assert "year precision" in reasons["2015"]
    assert "month precision" in reasons["2015-10"]
    assert "day precision" in reasons["2015-10-10"]
    assert "no time zone" in reasons["2015-10-10T09:15:00"]


def test_the_ips_example_converts_and_says_which_dates_it_left_out() -> None:
    from gateway.convert import run
    from gateway.formats import Request
    from profiles.packages import cache_dir

    path = cache_dir() / "hl7.fhir.uv.ips#2.0.0" / "package" / "example" / "Bundle-IPS-examples-Bundle-01.json"
    source = orjson.loads(path.read_bytes())
    done = run(path.read_bytes(), Request("fhir", "phenopacket"))  # from_fhir, then the writer's own check
    pp = schema.read(done.body, "Phenopacket").doc
    left_out = {i["expression"][0] for i in done.outcome["issue"]
                if i["details"]["coding"][0]["code"] == "phenopacket-time-not-carried"}
    partial = {f"Bundle.entry[{n}].resource.{key}" for n, e in enumerate(source["entry"])
               for key, value in e["resource"].items() if e["resource"]["resourceType"] in ("Condition", "Observation")
               and key.endswith("DateTime") and isinstance(value, str) and "T" not in value}
    assert partial and left_out == partial  # 2015, 2015-01, 2015-03, 2015-10-10 in the example
    stated = [e["resource"]["effectiveDateTime"] for e in source["entry"]
              if "T" in e["resource"].get("effectiveDateTime", "")]
    written = [m["timeObserved"]["timestamp"] for m in pp["measurements"] if "timeObserved" in m]
    assert len(written) == len(stated) == 6  # each full dateTime with its zone is carried


def test_dose_intervals_and_the_creation_time_follow_the_same_rule() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": "2024-01", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"resource": {"resourceType": "MedicationStatement", "status": "completed",
                      "subject": {"reference": "urn:uuid:p"}, "medicationCodeableConcept": {"text": "x"},
                      "dosage": [{"timing": {"repeat": {"boundsPeriod": {"start": "2020-03"}}}},
                                 {"timing": {"repeat": {"boundsPeriod": {"start": "2020-03-01T08:00:00Z",
                                                                         "end": "2020-03-08T08:00:00Z"}}}}]}}]}
    data, issues = from_fhir(bundle)
    pp = schema.read(data, "Phenopacket").doc
    assert pp["medicalActions"][0]["treatment"]["doseIntervals"] == [
        {"interval": {"start": "2020-03-01T08:00:00Z", "end": "2020-03-08T08:00:00Z"}}]
    assert "created" not in pp["metaData"]
    assert sorted(i.expression for i in issues if i.details == "phenopacket-time-not-carried") == [
        "Bundle.entry[1].resource.dosage[0].timing.repeat.boundsPeriod", "Bundle.timestamp"]
