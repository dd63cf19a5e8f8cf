"""Bad input either way gives a MappingError (an OperationOutcome at the edge), never another exception, and is
refused before it costs much: oversize inputs, documents that would make huge Bundles, deep nesting, FHIR content
of the wrong shape in every element the writer reads."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from mappers.exceptions import MappingError, ParseError, UnsupportedMessage
from mappers.phenopacket import schema
from mappers.phenopacket.from_fhir import from_fhir
from mappers.phenopacket.to_fhir import MAX_RESOURCES, to_fhir
from mappers.toolkit.registry import ConvertOptions, get
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "phenopacket-case.json"


def test_a_document_past_the_size_limit_is_refused_unread() -> None:
    with pytest.raises(ParseError, match="at most"):
        to_fhir(b" " * (schema.MAX_BYTES + 1))


def test_a_bundle_too_large_is_refused_before_the_schema_parse() -> None:
    feature = b'{"type": {"id": "HP:0001250"}}'
    data = b'{"id": "x", "phenotypic_features": [' + b",".join([feature] * (MAX_RESOURCES + 1)) + b"]}"
    with pytest.raises(UnsupportedMessage, match="bulk job"):
        get("phenopacket").to_fhir(data, ConvertOptions())  # type: ignore[misc]


def test_deep_nesting_is_refused_with_a_path() -> None:
    data = b'{"id": "x", "subject": ' + b'{"taxonomy": ' * 500 + b"{}" + b"}" * 501
    with pytest.raises(ParseError) as e:
        to_fhir(data)
    assert e.value.issues[0].expression == "Phenopacket.subject.taxonomy.taxonomy"


WRONG = (7, "x", [], {}, None, [{"a": 1}], True)


def places(value: Any, path: tuple[Any, ...] = (), depth: int = 4) -> list[tuple[Any, ...]]:
    """Paths to every element of a resource down to `depth` (dict keys and list indices)."""
    out: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if key != "resourceType":
            out.append((*path, key))
            if depth > 1:
                out += places(item, (*path, key), depth - 1)
    return out


def test_every_element_of_the_wrong_shape_is_a_mapping_error() -> None:
    bundle = to_fhir(EXAMPLE.read_bytes()).bundle
    tried = 0
    for i, entry in enumerate(bundle["entry"]):
        for path in places(entry["resource"]):
            broken = copy.deepcopy(bundle)
            holder = broken["entry"][i]["resource"]
            for key in path[:-1]:
                holder = holder[key]
            holder[path[-1]] = WRONG[tried % len(WRONG)]
            tried += 1
            try:
                data, _ = from_fhir(broken)
            except MappingError:
                continue
            schema.read(data, "Phenopacket")  # whatever was written passes the official schema
    assert tried > 300


@pytest.mark.parametrize("value", WRONG)
def test_components_of_the_wrong_shape(value: Any) -> None:
    bundle = orjson.loads(orjson.dumps(to_fhir(EXAMPLE.read_bytes()).bundle))
    for entry in bundle["entry"]:
        for comp in entry["resource"].get("component", []):
            comp["valueCodeableConcept"] = value
    try:
        data, _ = from_fhir(bundle)
    except MappingError:
        return
    schema.read(data, "Phenopacket")


@pytest.mark.parametrize(("change", "path"), [
    (lambda pp: pp["diseases"][0].update(onset={}), "diseases[0].onset"),
    (lambda pp: pp["phenotypicFeatures"][0].update(resolution={}), "phenotypicFeatures[0].resolution"),
    (lambda pp: pp["subject"].update(timeAtLastEncounter={}), "subject.timeAtLastEncounter"),
    (lambda pp: pp["subject"].update(vitalStatus={"status": "DECEASED", "timeOfDeath": {}}),
     "subject.vitalStatus.timeOfDeath"),
    (lambda pp: pp.update(measurements=[{"assay": {"id": "LOINC:2345-7"}, "timeObserved": {}}]),
     "measurements[0].timeObserved"),
])
def test_an_empty_time_element_is_refused_with_its_path(change: Any, path: str) -> None:
    pp = orjson.loads(EXAMPLE.read_bytes())
    change(pp)
    with pytest.raises(ParseError) as e:
        to_fhir(orjson.dumps(pp))
    issue = e.value.issues[0]
    assert (issue.details, issue.expression) == ("phenopacket-empty-time", f"Phenopacket.{path}")
    assert issue.message.startswith(f"Phenopacket.{path}: ")
    member = copy.deepcopy(pp)  # the same inside a cohort: the member's path
    cohort = {"id": "c", "members": [orjson.loads(EXAMPLE.read_bytes()), member]}
    with pytest.raises(ParseError) as e:
        to_fhir(orjson.dumps(cohort))
    assert e.value.issues[0].expression == f"Cohort.members[1].{path}"
