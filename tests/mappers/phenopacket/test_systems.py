"""Ontology CURIEs ⇄ FHIR Codings by the prefix table (tables/ontologies.json), and TimeElements ⇄ FHIR values:
each way and back gives the input."""

from __future__ import annotations

from typing import Any

import pytest

from mappers.phenopacket import systems, times


@pytest.mark.parametrize(("curie", "system", "code"), [
    ("HP:0001250", "http://human-phenotype-ontology.org", "HP:0001250"),  # as the Genomics Reporting IG writes HPO
    ("MONDO:0011051", "http://purl.obolibrary.org/obo/mondo.owl", "MONDO:0011051"),
    ("OMIM:601718", "https://omim.org", "601718"),
    ("ORPHA:33069", "http://www.orpha.net", "33069"),
    ("NCIT:C113237", "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl", "C113237"),
    ("LOINC:2345-7", "http://loinc.org", "2345-7"),
    ("UCUM:mg/dL", "http://unitsofmeasure.org", "mg/dL"),
    ("GENO:0000135", "http://purl.obolibrary.org/obo/geno.owl", "GENO:0000135"),
    ("HGNC:3236", "http://www.genenames.org", "HGNC:3236"),
    ("SO:1000029", "http://www.sequenceontology.org", "SO:1000029"),
    ("FOO:12", "urn:helixgate:phenopacket:prefix:FOO", "FOO:12"),  # a prefix the table does not know
])
def test_curies_and_codings(curie: str, system: str, code: str) -> None:
    coding = systems.coding({"id": curie, "label": "a label"})
    assert coding == {"system": system, "code": code, "display": "a label"}
    assert systems.term(coding) == {"id": curie, "label": "a label"}


@pytest.mark.parametrize(("te", "kind"), [
    ({"age": {"iso8601duration": "P34Y"}}, "Age"),
    ({"age": {"iso8601duration": "P3M"}}, "Age"),
    ({"age": {"iso8601duration": "P2Y3M"}}, "String"),
    ({"age": {"iso8601duration": "P0D"}}, "String"),  # R4 age-1: an Age is positive
    ({"ageRange": {"start": {"iso8601duration": "P1Y"}, "end": {"iso8601duration": "P5Y"}}}, "Range"),
    ({"ageRange": {"start": {"iso8601duration": "P5Y"}, "end": {"iso8601duration": "P1Y"}}}, "String"),  # rng-2
    ({"gestationalAge": {"weeks": 20}}, "Quantity"),
    ({"gestationalAge": {"weeks": 20, "days": 3}}, "Quantity"),
    ({"ontologyClass": {"id": "HP:0003593", "label": "Infantile onset"}}, "CodeableConcept"),
    ({"timestamp": "2020-03-17T00:00:00Z"}, "DateTime"),
    ({"interval": {"start": "2020-03-17T00:00:00Z", "end": "2020-03-20T00:00:00Z"}}, "Period"),
])
def test_time_elements_there_and_back(te: dict[str, Any], kind: str) -> None:
    got_kind, value = times.value(te, "Phenopacket.diseases[0].onset")
    assert got_kind == kind
    assert times.time_element(got_kind, value) == te
