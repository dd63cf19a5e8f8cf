"""Phenopacket → FHIR, element by element, on an authored phenopacket that fills most of the schema
(data/wide.json) and the README's example: what each field becomes, that the output validates with 0 errors, that
what has no place is reported by path, and that the way back gives the input again on every mapped field. Expected
codes come from the standards (LOINC answer lists, the Phenomics Exchange IG, the GENO/HPO ids of the input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.phenopacket import schema
from mappers.phenopacket.from_fhir import from_fhir
from mappers.phenopacket.to_fhir import to_fhir
from mappers.phenopacket.unmapped import leaves
from tests.conftest import ROOT

DATA = Path(__file__).parent / "data"
EXAMPLE = ROOT / "examples" / "phenopacket-case.json"
GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
HPO = "http://human-phenotype-ontology.org"
# Fields of data/wide.json with no place in FHIR (the conversion report names each, and the way back lacks them).
NOT_CARRIED = {"biosamples[0].tumorGrade", "interpretations[0].diagnosis.genomicInterpretations[2]"}


@pytest.fixture(scope="module")
def wide() -> tuple[dict[str, Any], Any]:
    data = (DATA / "wide.json").read_bytes()
    return schema.read(data).doc, to_fhir(data)


def of(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def comp(obs: dict[str, Any], system: str, code: str) -> list[dict[str, Any]]:
    return [c for c in obs.get("component", []) if any(x["system"] == system and x["code"] == code
                                                       for x in c["code"]["coding"])]


def codes(cc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in cc["coding"]]


def test_outputs_validate_with_no_errors(validator: Any, wide: tuple[dict[str, Any], Any]) -> None:
    for bundle in (wide[1].bundle, to_fhir(EXAMPLE.read_bytes()).bundle):
        assert [(i.expression, i.message) for i in validator.validate(bundle) if i.severity in ("error", "fatal")] == []


def test_the_subject(wide: tuple[dict[str, Any], Any]) -> None:
    (patient,) = of(wide[1].bundle, "Patient")
    assert patient["gender"] == "male"
    assert patient["birthDate"] == "2001-02-03"
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "2001-02-03T04:05:06Z"
    assert patient["deceasedBoolean"] is True  # the time of death is an age, kept in an extension
    assert [i["value"] for i in patient["identifier"]] == ["P1", "local:123", "trial:A-7"]
    ext = {e["url"].rsplit(":", 1)[-1]: e for e in patient["extension"]}
    assert ext["karyotypic-sex"]["valueCode"] == "XY"
    assert ext["time-of-death"]["valueString"] == "P22Y3M"  # two units: no single FHIR Age
    assert ext["time-at-last-encounter"]["valueRange"]["low"] == {"value": 20, "unit": "years",
                                                                  "system": "http://unitsofmeasure.org", "code": "a"}
    assert ext["survival-time-in-days"]["valueUnsignedInt"] == 40


def test_phenotypic_features_as_the_phenomics_exchange_phenotype(wide: tuple[dict[str, Any], Any]) -> None:
    exams = [o for o in of(wide[1].bundle, "Observation") if o["category"][0]["coding"][0]["code"] == "exam"]
    seizure, microcephaly, delay = exams
    assert codes(seizure["code"]) == [(HPO, "HP:0001250")]
    assert codes(seizure["valueCodeableConcept"]) == [("http://loinc.org", "LA9633-4")]  # present
    assert codes(microcephaly["valueCodeableConcept"]) == [("http://loinc.org", "LA9634-2")]  # excluded: absent
    assert codes(comp(seizure, HPO, "HP:0012824")[0]["valueCodeableConcept"]) == [(HPO, "HP:0012828")]
    assert len(comp(seizure, HPO, "HP:0012823")) == 2  # two modifiers
    pe = "http://hl7.org/fhir/uv/phenomics-exchange/CodeSystem/temporary-phenotype-component"
    assert comp(seizure, pe, "AGE_ONSET_GESTATIONAL")[0]["valueQuantity"]["value"] == 30 * 7 + 2
    assert comp(microcephaly, pe, "AGE_ONSET") == []  # P1Y6M is no single-unit age
    assert seizure["note"] == [{"text": "first noted at school"}]
    assert "valuePeriod" in delay["component"][0]


def test_diseases_as_conditions(wide: tuple[dict[str, Any], Any]) -> None:
    dravet, excluded = of(wide[1].bundle, "Condition")
    assert codes(dravet["code"]) == [("http://purl.obolibrary.org/obo/mondo.owl", "MONDO:0011051")]
    assert dravet["abatementDateTime"] == "2020-01-01T00:00:00Z"
    assert dravet["clinicalStatus"]["coding"][0]["code"] == "resolved"  # R4 con-4
    assert [s.get("type") is not None for s in dravet["stage"]] == [False, True]
    assert codes(excluded["code"]) == [("http://www.orpha.net", "33069")]
    assert excluded["verificationStatus"]["coding"][0]["code"] == "refuted"


def test_interpretations_as_genomic_reports(wide: tuple[dict[str, Any], Any]) -> None:
    bundle = wide[1].bundle
    (report,) = of(bundle, "DiagnosticReport")
    assert report["meta"]["profile"] == [GR + "genomic-report"] and report["status"] == "partial"  # IN_PROGRESS
    observations = {o["id"]: o for o in of(bundle, "Observation")}
    results = [observations[r["reference"].removeprefix("urn:uuid:")] for r in report["result"]]
    kinds = [o["meta"]["profile"][0].rsplit("/", 1)[-1] for o in results]
    assert kinds == ["variant", "diagnostic-implication", "variant", "diagnostic-implication"]
    variant, implication = results[0], results[1]
    assert implication["derivedFrom"] == [{"reference": f"urn:uuid:{variant['id']}"}]
    hgvs = comp(variant, "http://loinc.org", "48004-6")[0]["valueCodeableConcept"]["coding"][0]
    assert hgvs == {"system": "http://varnomen.hgvs.org", "code": "NM_001165963.4:c.5536A>G"}  # verbatim
    state = comp(variant, "http://loinc.org", "53034-5")[0]["valueCodeableConcept"]
    assert codes(state) == [("http://loinc.org", "LA6706-1"), ("http://purl.obolibrary.org/obo/geno.owl",
                                                                "GENO:0000135")]
    assert comp(variant, "http://loinc.org", "81258-6")[0]["valueQuantity"]["value"] == 0.48
    assert comp(variant, "http://loinc.org", "81254-5")[0]["valueRange"] == {"low": {"value": 165989569},
                                                                             "high": {"value": 165989569}}
    refseq = comp(variant, "http://loinc.org", "48013-7")[0]["valueCodeableConcept"]["coding"][0]["code"]
    assert refseq == "NC_000002.12"  # GRCh38 chr2
    assert variant["specimen"]["reference"].startswith("urn:uuid:")  # the call is on biosample B2
    significance = comp(implication, "http://loinc.org", "53037-8")[0]["valueCodeableConcept"]
    assert codes(significance) == [("http://loinc.org", "LA26332-9")]  # likely pathogenic
    phenotype = comp(implication, "http://loinc.org", "81259-4")[0]["valueCodeableConcept"]
    assert codes(phenotype)[0][1] == "MONDO:0011051"
    status = {e["url"].rsplit(":", 1)[-1]: e["valueCode"] for e in implication["extension"]}
    assert status == {"interpretation-status": "CANDIDATE", "therapeutic-actionability": "ACTIONABLE"}


def test_radiation_therapy_as_a_procedure(wide: tuple[dict[str, Any], Any]) -> None:
    radiation = of(wide[1].bundle, "Procedure")[1]
    assert codes(radiation["code"]) == [("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl", "C157438")]
    dose = {e["url"].rsplit(":", 1)[-1]: e for e in radiation["extension"]}
    assert dose["radiation-dosage"]["valueQuantity"]["code"] == "Gy"
    assert dose["radiation-fractions"]["valueInteger"] == 5


def test_files_as_document_references(wide: tuple[dict[str, Any], Any]) -> None:
    (doc,) = of(wide[1].bundle, "DocumentReference")
    assert doc["content"] == [{"attachment": {"url": "file:///data/genome.vcf.gz"}}]
    entries = [(e["url"].rsplit(":", 1)[-1], [p["valueString"] for p in e["extension"]]) for e in doc["extension"]]
    assert entries == [("individual-to-file-identifier", ["P1", "SAMPLE1"]), ("file-attribute", ["genomeAssembly",
                                                                                                 "GRCh38"])]


def test_metadata_updates_as_provenances_of_updates(wide: tuple[dict[str, Any], Any]) -> None:
    created, update = of(wide[1].bundle, "Provenance")
    assert created["activity"]["coding"][0]["code"] == "CREATE" and update["activity"]["coding"][0]["code"] == "UPDATE"
    assert update["recorded"] == "2021-07-01T00:00:00Z" and update["reason"] == [{"text": "fixed onset"}]
    assert update["agent"][0]["who"] == {"display": "someone"} and update["target"] == created["target"]


def test_metadata_as_provenance(wide: tuple[dict[str, Any], Any]) -> None:
    prov = of(wide[1].bundle, "Provenance")[0]
    assert prov["recorded"] == "2021-06-01T12:00:00Z"  # metaData.created: no clock
    assert [a["who"].get("display") for a in prov["agent"]] == [None, "ORCID:0000-0001-2345-6789", "site curator"]
    hp = next(e for e in prov["entity"] if e["what"].get("type") == "CodeSystem")
    assert {x["url"].rsplit(":", 1)[-1]: next(v for k, v in x.items() if k.startswith("value"))
            for x in hp["extension"]}["resource-version"] == "2021-04-13"
    assert len(prov["target"]) == len(wide[1].bundle["entry"]) - 3  # all but the Provenances and the converter Device


def test_what_has_no_place_is_reported_by_path(wide: tuple[dict[str, Any], Any]) -> None:
    reported = {i.expression for i in wide[1].issues if i.details == "phenopacket-field-not-mapped"}
    roots = {e.removeprefix("Phenopacket.") for e in reported}
    assert {r for r in roots if not any(r.startswith(n) for n in NOT_CARRIED)} == set()
    assert {n for n in NOT_CARRIED if not any(r.startswith(n) for r in roots)} == set()


def test_the_way_back_gives_every_mapped_field(wide: tuple[dict[str, Any], Any]) -> None:
    original, conv = wide
    data, _ = from_fhir(conv.bundle)
    back = orjson.loads(data)
    mapped = {(p, orjson.dumps(v)) for p, v in leaves(original) if not any(p.startswith(n) for n in NOT_CARRIED)}
    assert mapped - {(p, orjson.dumps(v)) for p, v in leaves(back)} == set()
    assert schema.read(data).doc == back  # what was written passes the official schema as it is


def test_the_readme_example_round_trips_exactly() -> None:
    data = EXAMPLE.read_bytes()
    conv = to_fhir(data)
    assert conv.issues == ()
    assert orjson.loads(from_fhir(conv.bundle)[0]) == schema.read(data).doc


def test_a_family_and_a_cohort_convert_their_phenopackets() -> None:
    case = orjson.loads(EXAMPLE.read_bytes())
    sibling = {**case, "id": "example-case-2", "subject": {**case["subject"], "id": "sibling-1"}}
    family = to_fhir(orjson.dumps({"id": "f", "proband": case, "relatives": [sibling], "consanguinousParents": True}))
    cohort = to_fhir(orjson.dumps({"id": "c", "members": [case, sibling], "description": "two"}))
    for conv in (family, cohort):
        patients = of(conv.bundle, "Patient")
        assert sorted(p["identifier"][0]["value"] for p in patients) == ["proband-1", "sibling-1"]
        assert len(of(conv.bundle, "DiagnosticReport")) == 2
    assert [i.expression for i in family.issues] == ["Family.consanguinousParents"]
    assert [i.expression for i in cohort.issues] == ["Cohort.description"]


@pytest.mark.parametrize("time_observed", [{"age": {"iso8601duration": "P3Y"}}, {"timestamp": "2020-01-01T00:00:00Z"},
                                           None])
def test_a_vital_sign_measurement_meets_the_r4_vital_signs_profile(validator: Any, time_observed: Any) -> None:
    measurement = {"assay": {"id": "LOINC:9843-4", "label": "Head Occipital-frontal circumference"},
                   "value": {"quantity": {"unit": {"id": "UCUM:cm", "label": "centimeter"}, "value": 48.5}}}
    if time_observed:
        measurement["timeObserved"] = time_observed
    data = orjson.dumps({"id": "m", "subject": {"id": "s"}, "measurements": [measurement]})
    conv = to_fhir(data)
    (obs,) = of(conv.bundle, "Observation")
    assert [c["coding"][0]["code"] for c in obs["category"]] == ["laboratory", "vital-signs"]
    assert [(i.expression, i.message) for i in validator.validate(conv.bundle) if i.severity == "error"] == []
    back = orjson.loads(from_fhir(conv.bundle)[0])
    assert back["measurements"] == schema.read(data).doc["measurements"]
