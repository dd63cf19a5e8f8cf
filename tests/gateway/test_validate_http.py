"""POST /fhir/$validate over real HTTP: 200 + OperationOutcome whenever validation ran, cached in Redis."""

from __future__ import annotations

import httpx
import orjson

from profiles.packages import cache_dir
from tests.conftest import ROOT

EXAMPLE = cache_dir() / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package" / "example" / \
    "Observation-SNVexample.json"
MESSAGE = sorted((ROOT / "tests" / "mappers" / "hl7v2" / "messages").glob("*.hl7"))[0]
FHIR = {"Content-Type": "application/fhir+json"}


def _issues(r: httpx.Response) -> list[dict]:
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome"
    return doc["issue"]


def _errors(r: httpx.Response) -> list[dict]:
    return [i for i in _issues(r) if i["severity"] in ("error", "fatal")]


def test_valid_and_invalid_resources_both_get_200(gateway) -> None:
    good = EXAMPLE.read_bytes()
    r = httpx.post(f"{gateway.url}/fhir/$validate", content=good, headers=FHIR, timeout=60)
    assert r.status_code == 200 and _errors(r) == []
    bad = orjson.loads(good)
    bad["status"] = "finished"
    r = httpx.post(f"{gateway.url}/fhir/Observation/$validate", json=bad, headers=FHIR, timeout=60)
    assert r.status_code == 200
    assert any(i["code"] == "code-invalid" and i["expression"] == ["Observation.status"] for i in _errors(r))


def test_parameters_with_profile_and_type_mismatch(gateway) -> None:
    res = orjson.loads(EXAMPLE.read_bytes())
    res.pop("meta")
    res["code"]["coding"][0]["code"] = "00000-0"
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": res},
        {"name": "profile", "valueUri": "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"}]}
    r = httpx.post(f"{gateway.url}/fhir/$validate", json=params, headers=FHIR, timeout=60)
    assert r.status_code == 200
    assert any("pattern" in i["details"]["text"] for i in _errors(r))
    r = httpx.post(f"{gateway.url}/fhir/Patient/$validate", content=EXAMPLE.read_bytes(), headers=FHIR)
    assert r.status_code == 200
    assert any("posted to Patient/$validate" in i["details"]["text"] for i in _errors(r))


def test_converted_bundle_validates_and_second_call_is_cached(gateway) -> None:
    conv = httpx.post(f"{gateway.url}/fhir/$convert", content=MESSAGE.read_bytes(),
                      headers={"Content-Type": "x-application/hl7-v2+er7"}, timeout=60)
    first = httpx.post(f"{gateway.url}/fhir/$validate", content=conv.content, headers=FHIR, timeout=60)
    second = httpx.post(f"{gateway.url}/fhir/$validate", content=conv.content, headers=FHIR, timeout=60)
    assert first.status_code == second.status_code == 200
    assert _errors(first) == []
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.json() == second.json()


def test_unreadable_input_is_a_4xx(gateway) -> None:
    for body, text in ((b"{oops", "JSON cannot be read"), (b"", "empty"), (b"[1]", "expected a FHIR resource")):
        r = httpx.post(f"{gateway.url}/fhir/$validate", content=body, headers=FHIR)
        assert r.status_code == 400, body
        assert text in _issues(r)[0]["details"]["text"]


def test_malformed_parameters_bodies_are_400_not_500(gateway) -> None:
    bodies = ({"resourceType": "Parameters", "parameter": "x"}, {"resourceType": "Parameters", "parameter": [1]},
              {"resourceType": "Parameters", "parameter": [{"name": "resource", "valueString": 5}]})
    for url in ("/fhir/$validate", "/fhir/$convert", "/fhir/ConceptMap/$translate"):
        for body in bodies:
            r = httpx.post(f"{gateway.url}{url}", json=body, headers=FHIR, timeout=60)
            assert r.status_code == 400, (url, body, r.text)
            assert "Parameters.parameter" in _issues(r)[0]["details"]["text"]
