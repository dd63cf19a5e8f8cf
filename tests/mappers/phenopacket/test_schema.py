"""Reading with the official schema: protobuf's JSON mapping through the `phenopackets` package; what it refuses is
refused with the JSON path of the value, and the kinds of document are told apart by their fields."""

from __future__ import annotations

import orjson
import pytest

from mappers.exceptions import ParseError, UnsupportedMessage
from mappers.phenopacket import schema


def refused(doc: object) -> ParseError:
    with pytest.raises(ParseError) as e:
        schema.read(orjson.dumps(doc))
    return e.value


@pytest.mark.parametrize(("doc", "path"), [
    ({"id": "x", "subjekt": {}}, "Phenopacket.subjekt"),
    ({"id": "x", "subject": {"id": "p", "sex": "BOTH"}}, "Phenopacket.subject.sex"),
    ({"id": "x", "phenotypicFeatures": [{"type": {"id": "HP:1"}}, {"type": {"id": 7}}]},
     "Phenopacket.phenotypicFeatures[1].type.id"),
    ({"id": "x", "phenotypicFeatures": [{"onset": {"age": {"iso8601duration": 5}}}]},
     "Phenopacket.phenotypicFeatures[0].onset.age.iso8601duration"),
    ({"id": "x", "metaData": {"created": "2020-13-01T00:00:00Z"}}, "Phenopacket.metaData.created"),
    ({"id": "x", "interpretations": [{"diagnosis": {"genomicInterpretations": [
        {"variantInterpretation": {"variationDescriptor": {"vcfRecord": {"pos": "ten"}}}}]}}]},
     "Phenopacket.interpretations[0].diagnosis.genomicInterpretations[0].variantInterpretation."
     "variationDescriptor.vcfRecord.pos"),
    ({"id": "x", "diseases": {"term": {}}}, "Phenopacket.diseases"),
])
def test_unknown_fields_and_wrong_types_are_refused_with_their_path(doc: dict, path: str) -> None:
    err = refused(doc)
    assert err.issues[0].expression == path
    assert err.issues[0].message.startswith(path + ": ")
    assert err.issues[0].details == "phenopacket-schema"


def test_snake_case_and_explicit_defaults_read_as_the_canonical_json() -> None:
    doc = schema.read(orjson.dumps({"id": "x", "subject": {"id": "p", "sex": "UNKNOWN_SEX"},
                                    "phenotypic_features": [{"type": {"id": "HP:0001250"}, "excluded": False}],
                                    "meta_data": {"created": "2020-01-01T00:00:00.000Z"}}))
    assert doc.kind == "Phenopacket"
    assert doc.doc == {"id": "x", "subject": {"id": "p"}, "phenotypicFeatures": [{"type": {"id": "HP:0001250"}}],
                       "metaData": {"created": "2020-01-01T00:00:00Z"}}


def test_families_and_cohorts_are_told_by_their_fields() -> None:
    assert schema.read(b'{"id": "f", "proband": {"id": "p"}}').kind == "Family"
    assert schema.read(b'{"id": "c", "members": [{"id": "p"}]}').kind == "Cohort"
    err = refused({"id": "c", "members": [{"id": "p", "subject": {"id": "s", "sex": "NOPE"}}]})
    assert err.issues[0].expression == "Cohort.members[0].subject.sex"


def test_other_json_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedMessage, match="FHIR Bundle"):
        schema.read(b'{"resourceType": "Bundle"}')
    with pytest.raises(UnsupportedMessage, match="JSON object"):
        schema.read(b"[1, 2]")
    with pytest.raises(ParseError, match="not JSON"):
        schema.read(b'{"id": ')
