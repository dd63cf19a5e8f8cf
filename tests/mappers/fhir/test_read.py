"""Reading FHIR input (mappers.fhir.read): a Bundle as it is; a single resource or a Parameters wrapped in a collection
Bundle with valid fullUrls, origins and a report of what a Bundle cannot hold; FHIR XML sniffed and read; the same
input gives the same bytes; what is not a FHIR resource is refused clearly."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mappers.exceptions import ParseError
from mappers.fhir.format import FORMAT, sniff
from mappers.fhir.read import as_bundle, is_xml
from mappers.toolkit.registry import by_media_type, detect

OBS = {"resourceType": "Observation", "id": "o1", "status": "final",
       "code": {"coding": [{"system": "http://loinc.org", "code": "69548-6"}]}}
PARAMS = {"resourceType": "Parameters", "parameter": [
    {"name": "variants", "part": [{"name": "presence", "valueBoolean": True},
                                  {"name": "variant", "resource": OBS},
                                  {"name": "note", "valueString": "NC_000005.9:g.112102032A>T"}]}]}
XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root -->
<Observation xmlns="http://hl7.org/fhir">
  <id value="x1"/>
  <status value="final"/>
  <code><coding><system value="http://loinc.org"/><code value="69548-6"/></coding></code>
  <component>
    <code><coding><system value="http://loinc.org"/><code value="81258-6"/></coding></code>
    <valueQuantity><value value="0.25"/></valueQuantity>
  </component>
</Observation>"""


def test_a_bundle_is_read_as_it_is() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1", "resource": OBS}]}
    conv = as_bundle(orjson.dumps(bundle))
    assert conv.bundle == bundle and conv.issues == ()


def test_a_single_resource_is_wrapped_with_a_valid_full_url(validator: Any) -> None:
    conv = as_bundle(orjson.dumps(OBS))
    assert conv.bundle["type"] == "collection" and [e["resource"] for e in conv.bundle["entry"]] == [OBS]
    assert conv.bundle["entry"][0]["fullUrl"].startswith("urn:uuid:")
    assert conv.origins == {"o1": "Observation"}
    assert [i.details for i in conv.issues] == ["fhir-wrapped"]
    errors = [i for i in validator.validate(conv.bundle) if i.severity in ("error", "fatal")]
    assert errors == []


def test_parameters_resources_are_wrapped_and_their_values_reported() -> None:
    conv = as_bundle(orjson.dumps(PARAMS))
    assert [e["resource"]["id"] for e in conv.bundle["entry"]] == ["o1"]
    assert conv.origins == {"o1": "Parameters.parameter[0].part[1].resource"}
    dropped = [(i.severity, i.expression) for i in conv.issues if i.details == "fhir-parameter-not-carried"]
    assert dropped == [("warning", "Parameters.parameter[0].part[0].valueBoolean"),
                       ("warning", "Parameters.parameter[0].part[2].valueString")]


def test_same_input_gives_the_same_bytes() -> None:
    for doc in (OBS, PARAMS):
        data = orjson.dumps(doc)
        assert orjson.dumps(as_bundle(data).bundle) == orjson.dumps(as_bundle(data).bundle)


def test_fhir_xml_is_sniffed_and_read(validator: Any) -> None:
    assert is_xml(XML) and sniff(XML) and detect(XML) is FORMAT
    assert by_media_type("application/fhir+xml; charset=utf-8") is FORMAT
    assert not is_xml(b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>")
    conv = as_bundle(XML)
    obs = conv.bundle["entry"][0]["resource"]
    assert obs["id"] == "x1" and obs["component"][0]["valueQuantity"]["value"] == 0.25  # a list, a JSON number
    assert orjson.dumps(as_bundle(XML).bundle) == orjson.dumps(conv.bundle)


@pytest.mark.parametrize(("data", "details"), [
    (b"{oops", "fhir-bad-json"),
    (b"[1, 2]", "fhir-not-a-resource"),
    (b'{"resourceType": 7}', "fhir-not-a-resource"),
    (b'<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/>', "fhir-bad-xml"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><Bundle xmlns="http://hl7.org/fhir"/>', "fhir-bad-xml"),
    (b'{"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y"}]}', "fhir-parameters-empty"),
    (b'{"resourceType": "Parameters", "parameter": {"name": "x"}}', "fhir-wrong-type"),
    (b'{"resourceType": "Parameters", "parameter": [{"name": "x", "resource": "Observation/1"}]}',
     "fhir-not-a-resource"),
])
def test_what_is_not_fhir_is_refused_by_name(data: bytes, details: str) -> None:
    with pytest.raises(ParseError) as e:
        as_bundle(data)
    assert e.value.issues[0].details == details
