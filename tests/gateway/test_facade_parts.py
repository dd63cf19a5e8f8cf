"""The facade's pure parts: address rewriting (every spelling of an upstream base, nothing else), patches (JSON
Patch by RFC 6902's own examples, FHIRPath Patch by fhirpatch.html's operations), the Prefer header, subsetting."""

from __future__ import annotations

import logging

import orjson
import pytest

from gateway.facade.addresses import Addresses
from gateway.facade.common import learn_from
from gateway.facade.patch import PatchError, fhirpath_patch, json_patch
from gateway.facade.semantics import prefer_return, shape_searchset, subset

PUBLIC = "https://gw.example/fhir"


def test_every_spelling_of_an_upstream_base_is_rewritten_and_nothing_else() -> None:
    a = Addresses(["http://up.internal:80/fhir/R4"])
    body = orjson.dumps({"a": "http://up.internal/fhir/R4/Patient/1", "b": "http://up.internal:80/fhir/R4?x=1",
                         "c": "http://up.internal/fhir/R45/Patient/1", "d": "http://other/fhir/R4/Patient/1"})
    out = orjson.loads(a.rewrite(body, PUBLIC))
    assert out == {"a": f"{PUBLIC}/Patient/1", "b": f"{PUBLIC}?x=1", "c": "http://up.internal/fhir/R45/Patient/1",
                   "d": "http://other/fhir/R4/Patient/1"}
    escaped = b'{"url":"http:\\/\\/up.internal\\/fhir\\/R4\\/Patient\\/1"}'
    assert orjson.loads(a.rewrite(escaped, PUBLIC)) == {"url": f"{PUBLIC}/Patient/1"}
    assert a.leaks(a.rewrite(body, PUBLIC), PUBLIC) == ["http://up.internal"]  # …/fhir/R45 still names its host
    assert a.leaks(a.rewrite(orjson.dumps({"a": "http://up.internal/fhir/R4/x"}), PUBLIC), PUBLIC) == []


def test_bases_are_learned_from_what_the_upstream_calls_itself(caplog: pytest.LogCaptureFixture) -> None:
    a = Addresses(["http://127.0.0.1:9999/fhir/R4"])
    with caplog.at_level(logging.WARNING, "helixgate.facade"):
        a.learn_suffixed("https://ingress.example/fhir/R4/Patient/1/_history/2", "Patient/1/_history/2", "Location")
    assert "https://ingress.example/fhir/R4" in a.bases and "HELIXGATE_UPSTREAM_ALIASES" in caplog.text
    a.learn_suffixed("https://elsewhere.example/Patient/9", "Patient/1", "fullUrl")  # does not end in it: ignored
    assert len(a.bases) == 2
    learn_from(a, {"resourceType": "Bundle", "link": [{"relation": "next", "url": "http://lb.example/R4/Patient?x=1"}],
                   "entry": [{"fullUrl": "http://node2.example/R4/Observation/7",
                              "resource": {"resourceType": "Observation", "id": "7"}}]}, None, "Patient")
    assert {"http://lb.example/R4", "http://node2.example/R4"} <= set(a.bases)
    text = "upstream GET http://127.0.0.1:9999/fhir/R4/Patient failed; also https://ingress.example/other"
    assert a.scrub(text) == "upstream GET [upstream]/Patient failed; also [upstream]"


def test_json_patch_follows_rfc_6902() -> None:
    doc = {"resourceType": "Patient", "id": "p", "name": [{"given": ["A"]}], "active": True}
    out = json_patch(doc, [{"op": "add", "path": "/name/0/given/-", "value": "B"},
                           {"op": "copy", "from": "/name/0", "path": "/name/1"},
                           {"op": "move", "from": "/active", "path": "/deceasedBoolean"},
                           {"op": "test", "path": "/id", "value": "p"}])
    assert out["name"] == [{"given": ["A", "B"]}, {"given": ["A", "B"]}] and out["deceasedBoolean"] is True
    assert "active" not in out and doc["active"] is True  # the original is untouched
    for bad, status in (([{"op": "remove", "path": "/nope"}], 422), ({"op": "add"}, 400),
                        ([{"op": "test", "path": "/id", "value": "q"}], 422), ([{"op": "add", "path": "x"}], 400),
                        ([{"op": "move", "from": "/name", "path": "/name/0"}], 422)):
        with pytest.raises(PatchError) as e:
            json_patch(doc, bad)
        assert e.value.status == status, bad


def _op(kind: str, **parts: dict) -> dict:
    return {"name": "operation", "part": [{"name": "type", "valueCode": kind},
                                          *({"name": k, **v} for k, v in parts.items())]}


def test_fhirpath_patch_operations() -> None:
    doc = {"resourceType": "Patient", "id": "p", "identifier": [{"system": "a", "value": "1"},
                                                               {"system": "b", "value": "2"}], "gender": "male"}
    patch = {"resourceType": "Parameters", "parameter": [
        _op("replace", path={"valueString": "Patient.gender"}, value={"valueCode": "female"}),
        _op("delete", path={"valueString": "Patient.identifier.where(system = 'a')"}),
        _op("insert", path={"valueString": "Patient.identifier"}, index={"valueInteger": 0},
            value={"valueIdentifier": {"system": "z", "value": "9"}}),
        _op("add", path={"valueString": "Patient"}, name={"valueString": "deceased[x]"},
            value={"valueBoolean": False}),
        _op("move", path={"valueString": "Patient.identifier"}, source={"valueInteger": 0},
            destination={"valueInteger": 1})]}
    out = fhirpath_patch(doc, patch)
    assert out == {"resourceType": "Patient", "id": "p", "gender": "female", "deceasedBoolean": False,
                   "identifier": [{"system": "b", "value": "2"}, {"system": "z", "value": "9"}]}
    with pytest.raises(PatchError) as e:
        fhirpath_patch(doc, {"resourceType": "Parameters", "parameter": [
            _op("delete", path={"valueString": "Patient.descendants()"})]})
    assert e.value.status == 422 and "descendants" in str(e.value)
    with pytest.raises(PatchError):
        fhirpath_patch(doc, {"resourceType": "Parameters", "parameter": [
            _op("replace", path={"valueString": "Patient.identifier"}, value={"valueString": "x"})]})


def test_prefer_subset_and_paging_outcome() -> None:
    assert prefer_return('respond-async, return="minimal"') == "minimal"
    assert prefer_return("return=OperationOutcome; handling=strict") == "OperationOutcome"
    assert prefer_return("return=everything") is None
    res = {"resourceType": "Patient", "id": "p", "name": [{"family": "X"}], "gender": "male", "photo": [{}]}
    assert set(subset(res, None, ["gender"])) == {"resourceType", "id", "meta", "gender"}
    summary = subset(res, "true", None)
    assert "photo" not in summary and summary["name"] and summary["meta"]["tag"][0]["code"] == "SUBSETTED"
    page = shape_searchset({"resourceType": "Bundle", "type": "searchset", "total": 5,
                            "entry": [{"resource": res}] * 2}, f"{PUBLIC}/Patient", None, None, 2)
    assert page["link"] == [{"relation": "self", "url": f"{PUBLIC}/Patient"}]
    assert page["entry"][-1]["search"]["mode"] == "outcome"
    whole = shape_searchset({"resourceType": "Bundle", "type": "searchset", "total": 2,
                             "entry": [{"resource": res}] * 2}, f"{PUBLIC}/Patient", None, None, 2)
    assert len(whole["entry"]) == 2
