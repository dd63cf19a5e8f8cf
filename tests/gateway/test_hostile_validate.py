"""Hostile and malformed bodies for $validate and $translate, sent to the real gateway (issue 12): each is answered
with an OperationOutcome, 200 when validation ran and 400 when the body cannot be used, never a 500 or a stall."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson

from profiles.packages import cache_dir
from tests.profiles.worst_cases import WORST

EXAMPLES = cache_dir() / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package" / "example"
FHIR = {"Content-Type": "application/fhir+json"}


def _post(gateway: Any, path: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(f"{gateway.url}{path}", content=content, headers=FHIR, timeout=120)


def _outcome(r: httpx.Response, status: int) -> list[dict[str, Any]]:
    assert r.status_code == status, r.text[:500]
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome", doc
    return doc["issue"]


def _texts(issues: list[dict[str, Any]]) -> list[str]:
    return [i["details"]["text"] for i in issues]


def test_redos_base64_binary_is_answered(gateway) -> None:
    # the issue's 170-byte body (~28 s of backtracking before), and 10 KB (which would never finish)
    for data in ("AAAA  " * 25 + "AAA!", WORST["base64Binary"][0]):
        body = {"resourceType": "Binary", "contentType": "text/plain", "data": data}
        issues = _outcome(_post(gateway, "/fhir/$validate", body), 200)
        assert any("not a valid base64Binary" in t for t in _texts(issues))
    assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200


def test_parameters_with_bad_base64_resource_or_integer_profile_are_400(gateway) -> None:
    bad_base64 = {"resourceType": "Parameters",
                  "parameter": [{"name": "resource", "valueBase64Binary": "@@not base64"}]}
    issues = _outcome(_post(gateway, "/fhir/$validate", bad_base64), 400)
    assert issues[0]["expression"] == ["Parameters.parameter[0].valueBase64Binary"]
    patient = {"resourceType": "Patient", "active": True}
    int_profile = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient},
                                                              {"name": "profile", "valueUri": 5}]}
    issues = _outcome(_post(gateway, "/fhir/$validate", int_profile), 400)
    assert issues[0]["expression"] == ["Parameters.parameter[1].valueUri"]
    not_a_resource = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": "Patient"}]}
    _outcome(_post(gateway, "/fhir/$validate", not_a_resource), 400)
    # base64 with a line break (white space is allowed in a base64Binary) still reads
    wrapped = base64.b64encode(orjson.dumps(patient)).decode()
    wrapped = wrapped[:8] + "\n" + wrapped[8:]
    ok = {"resourceType": "Parameters", "parameter": [{"name": "resource", "valueBase64Binary": wrapped}]}
    _outcome(_post(gateway, "/fhir/$validate", ok), 200)


def test_coding_object_where_a_string_belongs_is_reported(gateway) -> None:
    obs = orjson.loads((EXAMPLES / "Observation-SNVexample.json").read_bytes())
    obs["category"][0]["coding"][0]["system"] = {"system": "http://x", "code": "a"}  # unhashable as a slice key
    issues = _outcome(_post(gateway, "/fhir/$validate", obs), 200)
    assert any("a uri must be a JSON string" in t for t in _texts(issues))


def test_meta_that_is_not_an_object_is_reported(gateway) -> None:
    bundle = orjson.loads((EXAMPLES / "Bundle-bundle-cgexample.json").read_bytes())
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            entry["resource"]["meta"] = "x"  # reached again when the report's result slices check conformance
    issues = _outcome(_post(gateway, "/fhir/$validate", bundle), 200)
    assert any("Meta must be a JSON object, found str" in t for t in _texts(issues))


def test_extension_nested_300_deep_is_reported(gateway) -> None:
    # written by hand: 600 JSON levels, more than orjson writes (255) though fewer than it reads (1024)
    opening = '{"url": "http://example.org/x", "extension": [' * 300
    ext = opening + '{"url": "http://example.org/x", "valueString": "v"}' + "]}" * 300
    body = ('{"resourceType": "Patient", "extension": [' + ext + "]}").encode()
    issues = _outcome(_post(gateway, "/fhir/$validate", body), 200)
    assert [i["code"] for i in issues if "nested more than" in i["details"]["text"]] == ["too-costly"]


def test_translate_with_malformed_codings_is_400(gateway) -> None:
    url = "/fhir/ConceptMap/$translate"
    bodies = [
        [{"name": "codeableConcept", "valueCodeableConcept": {"coding": "K35.800x001"}}],
        [{"name": "codeableConcept", "valueCodeableConcept": {"coding": ["K35.800x001"]}}],
        [{"name": "coding", "valueCoding": {"system": "urn:oid:2.16.156.10011.2.3.3.11", "code": {"a": 1}}}],
        [{"name": "code", "valueCode": "2"}, {"name": "system", "valueCoding": {"code": "x"}}],
        [{"name": "code", "valueCode": "2"}, {"name": "system", "valueUri": "urn:oid:2.16.156.10011.2.3.3.4"},
         {"name": "reverse", "valueInteger": 3}],
    ]
    for params in bodies:
        r = _post(gateway, url, {"resourceType": "Parameters", "parameter": params})
        _outcome(r, 400)


def test_a_response_orjson_cannot_write_is_an_operation_outcome() -> None:
    """The safety net under every FHIRResponse: content nested past orjson's 255 levels or integers past 64 bits
    (both reachable from client input) give a 422 OperationOutcome, anything else unwritable a 500 one."""
    from gateway.responses import FHIRResponse

    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    for content, status in (({"resourceType": "Parameters", "parameter": deep}, 422), ({"n": 2**70}, 422),
                            ({"s": {1, 2}}, 500)):
        r = FHIRResponse(content)
        assert r.status_code == status
        assert orjson.loads(r.body)["resourceType"] == "OperationOutcome"
        assert r.headers["content-length"] == str(len(r.body))
