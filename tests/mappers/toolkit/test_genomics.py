"""The shared Genomics IG emitter (mappers.toolkit.genomics): what it writes validates against IG 3.0.0, and the
reader of genomic content (mappers.fhir.genomics) reads it back as the same facts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mappers.fhir import genomics as reader
from mappers.toolkit import genomics
from mappers.toolkit.bundle import bundle
from mappers.toolkit.genomics import Code, Component, Stated

SUBJECT = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"}
PATIENT = {"resourceType": "Patient", "id": "00000000-0000-4000-8000-000000000001"}
EGFR = genomics.Variant(
    genes=[Code("http://www.genenames.org", "HGNC:3236", "EGFR")], transcript="NM_005228.5",
    c_hgvs="NM_005228.5:c.2573T>G", p_hgvs="NP_005219.2:p.Leu858Arg", g_hgvs="NC_000007.14:g.55191822T>G",
    assembly="GRCh38", chromosome="7", genomic_ref_seq="NC_000007.14", coordinate_system="0-based-interval",
    exact=(55191821, 55191822), ref="T", alt="G", change_type=Code("http://www.sequenceontology.org", "SO:0001483",
                                                                   "SNV"),
    variation_codes=["rs121434568"], source_class="somatic", allelic_state="heterozygous", allele_fraction=0.31,
    read_depth=128, extra=[Component({"coding": [{"system": "urn:example:lab", "code": "QUAL"}]},
                                     {"valueString": "50"})])
DEL = genomics.Variant(chromosome="17", assembly="GRCh38", coordinate_system="0-based-interval",
                       outer=(43044290, 43125490), inner=(43044300, 43125480), change_type=Code(
                           "http://www.sequenceontology.org", "SO:0000159", "deletion"), copy_number=1,
                       source_class="germline")


def _ids(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _bundle() -> dict[str, Any]:
    v1 = genomics.variant(EGFR, _ids(2), subject=SUBJECT)
    v2 = genomics.variant(DEL, _ids(3), subject=SUBJECT)
    ref1, ref2 = {"reference": f"urn:uuid:{v1['id']}"}, {"reference": f"urn:uuid:{v2['id']}"}
    impl = genomics.implication(genomics.Implication(
        clinical_significance=Code("http://loinc.org", "LA6668-3", "Pathogenic"),
        phenotypes=[Code("http://purl.obolibrary.org/obo/mondo.owl", "MONDO:0005061", "lung adenocarcinoma")]),
        _ids(4), [ref1], subject=SUBJECT)
    ther = genomics.implication(genomics.Implication(
        kind="therapeutic-implication", medications=[Code("http://www.nlm.nih.gov/research/umls/rxnorm", "1430438",
                                                           "osimertinib")]), _ids(5), [ref1], subject=SUBJECT)
    phase = genomics.phase_relationship(_ids(6), "Trans", ref1, ref2, subject=SUBJECT)
    results = [{"reference": f"urn:uuid:{r['id']}"} for r in (v1, v2, impl, ther, phase)]
    report = genomics.report(genomics.Report(_ids(7), subject=SUBJECT, results=results,
                                             code={"coding": [{"system": "http://loinc.org", "code": "81247-9"}]}))
    return bundle([PATIENT, report, v1, v2, impl, ther, phase], "collection", ("toolkit-test",))


def test_what_the_emitter_writes_validates(validator) -> None:  # type: ignore[no-untyped-def]
    doc = _bundle()
    errors = [(i.expression, i.message) for i in validator.validate(doc) if i.severity in ("error", "fatal")]
    assert errors == []
    profiles = {e["resource"]["id"]: e["resource"].get("meta", {}).get("profile", [""])[0].rsplit("/", 1)[-1]
                for e in doc["entry"]}
    assert sorted(profiles.values()) == ["", "diagnostic-implication", "genomic-report",
                                         "sequence-phase-relationship", "therapeutic-implication", "variant", "variant"]


def test_the_reader_reads_back_the_same_facts() -> None:
    content = reader.read(_bundle())
    assert content.issues == []  # nothing read as a code of an earlier release, nothing recognised by structure
    kinds = [e.kind for e in content.entries]
    assert kinds == ["Patient", "DiagnosticReport", "variant", "variant", "diagnostic-implication",
                     "therapeutic-implication", "sequence-phase-relationship"]
    report = content.entries[1]
    assert content.is_genomic_report(report)
    assert reader.keys(report.resource["code"]) == ["http://loinc.org|51969-4", "http://loinc.org|81247-9"]
    variants = content.of("variant")
    assert [e.kind for e in content.derived[variants[0].index]] == ["diagnostic-implication",
                                                                     "therapeutic-implication"]
    phase = content.of("sequence-phase-relationship")[0]
    assert [content.resolve(r) for r in phase.resource["derivedFrom"]] == variants
    assert reader.keys(phase.resource["valueCodeableConcept"]) == [
        "http://terminology.hl7.org/CodeSystem/sequence-phase-relationship-cs|Trans"]
    for entry, facts in zip(variants, (EGFR, DEL), strict=True):
        back = genomics.variant_facts(entry.resource)
        # the facts read back write the same resource: nothing lost, nothing moved
        assert genomics.variant(back, entry.resource["id"], subject=SUBJECT) == entry.resource
        assert back.exact == facts.exact and back.outer == facts.outer and back.inner == facts.inner
        assert back.ref == facts.ref and back.alt == facts.alt
    egfr = genomics.variant_facts(variants[0].resource)
    assert reader.keys(egfr.c_hgvs) == ["http://varnomen.hgvs.org|NM_005228.5:c.2573T>G"]
    assert reader.keys(egfr.transcript) == ["http://www.ncbi.nlm.nih.gov/refseq|NM_005228.5"]
    assert reader.keys(egfr.chromosome[0]) == ["http://loinc.org|LA21260-7"]
    assert reader.keys(egfr.coordinate_system) == ["http://loinc.org|LA30100-4"]
    assert reader.keys(egfr.source_class) == ["http://loinc.org|LA6684-0"]
    assert reader.keys(egfr.allelic_state) == ["http://loinc.org|LA6706-1"]
    assert reader.keys(egfr.variation_codes[0]) == ["http://www.ncbi.nlm.nih.gov/projects/SNP|rs121434568"]
    assert egfr.allele_fraction["value"] == 0.31 and egfr.read_depth["value"] == 128
    assert [c.value for c in egfr.extra] == [{"valueString": "50"}]


def test_codes_written_are_the_readers_current_codes() -> None:
    """Every slice code and system the emitter writes is one the reader keeps as it is (no earlier-release code),
    and every component that makes the reader take an Observation for a variant is a slice the emitter writes."""
    written = {s.key.replace("TBD|", reader.tbd() + "|") for s in genomics.slots() + genomics.implication_slots()}
    renamed = {k.replace("TBD|", reader.tbd() + "|") for k in reader.table()["component_codes"] if k != "description"}
    assert not written & renamed
    assert set(reader.table()["variant_defining_components"]["codes"]) <= written
    for system in genomics.table()["systems"].values():
        assert reader.normal_system(system) == system
    for kind in ("variant", "sequence-phase-relationship", "diagnostic-implication", "therapeutic-implication"):
        obs = {"resourceType": "Observation", "code": genomics.kind_code(kind)}
        assert reader.classify(obs) == (kind, "code")


def test_origins_name_the_stated_source_and_positions_need_a_coordinate_system() -> None:
    origins: dict[str, str] = {}
    facts = genomics.Variant(genes=[Stated("EGFR", None, "OBX[1]-5")], ref="T",
                             c_hgvs=Stated("NM_005228.5:c.2573T>G", {"coding": [
                                 {"system": "http://loinc.org", "code": "48004-6", "display": "DNA change (c.HGVS)"}]},
                                 "OBX[2]-5"), assessment=Stated("present", None, "OBX[3]-5"))
    obs = genomics.variant(facts, "x", effective=Stated("2025-03-01", None, "OBX[1]-14"), origins=origins)
    assert origins == {"component[0]": "OBX[1]-5", "component[1]": "OBX[2]-5", "valueCodeableConcept": "OBX[3]-5",
                       "effectiveDateTime": "OBX[1]-14"}
    assert obs["component"][1]["code"]["coding"][0]["display"] == "DNA change (c.HGVS)"  # the source's own code
    with pytest.raises(ValueError, match="coordinate system"):
        genomics.variant(genomics.Variant(exact=(1, 2)), "y")
    with pytest.raises(ValueError, match="not one of"):
        genomics.variant(genomics.Variant(source_class="somatik"), "z")


def test_same_facts_same_bytes() -> None:
    assert orjson.dumps(_bundle()) == orjson.dumps(_bundle())


def test_hl7v2_allelic_phase_rows_become_a_sequence_phase_relationship(validator) -> None:  # type: ignore[no-untyped-def]
    """FHIR → v2 writes a relationship as an 82120-7 row in each variant's group; read back, the two rows are one
    sequence-phase-relationship again (README: LRI rows name no partner, so a phase stated by exactly two groups)."""
    from mappers.hl7v2 import from_fhir, to_fhir

    first = from_fhir(_bundle())
    back = to_fhir(first.data).bundle
    phases = [e["resource"] for e in back["entry"] if reader.classify(e["resource"])[0] ==
              "sequence-phase-relationship" and e["resource"]["resourceType"] == "Observation"]
    assert len(phases) == 1
    assert reader.keys(phases[0]["valueCodeableConcept"]) == [
        "http://terminology.hl7.org/CodeSystem/sequence-phase-relationship-cs|Trans"]
    ids = {e["fullUrl"]: e["resource"] for e in back["entry"]}
    related = [ids[r["reference"]] for r in phases[0]["derivedFrom"]]
    assert [reader.classify(r)[0] for r in related] == ["variant", "variant"]
    assert not any("82120-7" in reader.keys(c["code"])[0] for r in related for c in r.get("component", []))
    errors = [(i.expression, i.message) for i in validator.validate(back) if i.severity in ("error", "fatal")]
    assert errors == []
