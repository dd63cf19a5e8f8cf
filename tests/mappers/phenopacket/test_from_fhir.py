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
