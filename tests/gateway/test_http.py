"""The gateway over real HTTP on loopback (uvicorn + httpx), with the session's real Redis as its cache."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ROOT

MESSAGES = sorted((ROOT / "tests" / "mappers" / "hl7v2" / "messages").glob("*.hl7"))
V2 = {"Content-Type": "x-application/hl7-v2+er7"}


def _post(url: str, body: bytes, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
    return httpx.post(f"{url}/fhir/$convert", content=body, headers=headers or V2, params=params, timeout=10)


def _clinical(bundle: dict) -> list[dict]:
    skip = {"Provenance"}
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] not in skip]


def _assert_outcome(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome"
    assert text in doc["issue"][0]["details"]["text"]


def test_http_returns_the_same_resources_as_the_cli(gateway, tmp_path: Path) -> None:
    path = MESSAGES[0]
    r = _post(gateway.url, path.read_bytes())
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/fhir+json; charset=utf-8"
    http_bundle = r.json()
    out = tmp_path / "cli.json"
    cli = subprocess.run([sys.executable, "-m", "gateway.cli.main", "convert", str(path), "-o", str(out)],
                         capture_output=True, cwd=ROOT)
    assert cli.returncode == 0, cli.stderr
    cli_bundle = orjson.loads(out.read_bytes())
    assert _clinical(http_bundle) == _clinical(cli_bundle)
    variants = [res for res in _clinical(http_bundle) if "variant" in str(res.get("meta"))]
    assert variants and variants[0]["code"]["coding"][0]["code"] == "69548-6"


def test_every_authored_message_converts_over_http_and_back(gateway) -> None:
    for path in MESSAGES:
        r = _post(gateway.url, path.read_bytes(), bundleType="transaction")
        assert r.status_code == 200, (path.name, r.text)
        bundle = r.json()
        assert bundle["type"] == "transaction"
        back = _post(gateway.url, r.content, {"Content-Type": "application/fhir+json"}, target="hl7v2")
        assert back.status_code == 200
        assert back.headers["content-type"].startswith("x-application/hl7-v2+er7")
        assert back.content.startswith(b"MSH|^~\\&|")


def test_parameters_invocation_returns_bundle_and_conversion_report(gateway) -> None:
    data = next(p for p in MESSAGES if p.name.startswith("11-")).read_bytes()
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "input", "valueBase64Binary": base64.b64encode(data).decode()},
        {"name": "source", "valueCode": "hl7v2"}]}
    r = httpx.post(f"{gateway.url}/fhir/$convert", json=body, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200
    params = {p["name"]: p for p in r.json()["parameter"]}
    assert params["output"]["resource"]["resourceType"] == "Bundle"
    issues = params["outcome"]["resource"]["issue"]
    assert any(i["expression"] == ["ZGN[1]"] and i["severity"] == "warning" for i in issues)
    assert "warnings=" in r.headers["x-conversion-report"]


def test_source_by_query_parameter_and_detection(gateway) -> None:
    data = MESSAGES[0].read_bytes()
    assert _post(gateway.url, data, {"Content-Type": "text/plain"}, source="hl7v2").status_code == 200
    assert _post(gateway.url, data, {"Content-Type": "application/octet-stream"}).status_code == 200


@pytest.mark.parametrize(("body", "headers", "params", "status", "text"), [
    (b"MSH|^~\\&|A|B|C|D|2025||ORU^R01|1|P|2.5.1\r" + b"\xff\xfeJUNK|\r", V2, {}, 400, "not an HL7 segment"),
    (b"", V2, {}, 400, "empty"),
    (b"MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1\r", V2, {}, 422, "unsupported message type ADT^A01"),
    (b"MSH|^~\\&|A|B|C|D|2025||ORU^R01|1|P|2.5\r", {"Content-Type": "image/png"}, {}, 415, "image/png"),
    (b"hello", {"Content-Type": "text/plain"}, {}, 415, "cannot tell the input format"),
    (b"MSH|^~\\&|A", V2, {"target": "pdf"}, 415, "unknown format 'pdf'"),
    (b'{"resourceType": "Patient"}', {"Content-Type": "application/fhir+json"}, {}, 415, "name the target format"),
    (b'[1, 2]', {"Content-Type": "application/fhir+json"}, {"target": "hl7v2"}, 400, "expected a FHIR resource"),
    (b"{not json", {"Content-Type": "application/fhir+json"}, {}, 400, "not valid JSON"),
    (b'{"resourceType":"Bundle","type":"collection"}', {"Content-Type": "application/fhir+json"},
     {"target": "hl7v2"}, 422,
     "no DiagnosticReport"),
    (MESSAGES[0].read_bytes(), V2, {"bundleType": "batch"}, 400, "bundleType"),
])
def test_bad_input_gets_an_operation_outcome(gateway, body, headers, params, status, text) -> None:
    _assert_outcome(_post(gateway.url, body, headers, **params), status, text)


def test_request_over_the_limit_is_refused_with_413(gateway) -> None:
    big = MESSAGES[0].read_bytes() + b"NTE|1||" + b"x" * (600 * 1024) + b"\r"
    _assert_outcome(_post(gateway.url, big), 413, "exceeds the limit")

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(40):
            yield b"y" * 32 * 1024

    r = httpx.post(f"{gateway.url}/fhir/$convert", content=chunks(), headers=V2)
    _assert_outcome(r, 413, "exceeds the limit")


def test_metadata_health_and_unknown_routes(gateway) -> None:
    cap = httpx.get(f"{gateway.url}/fhir/metadata").json()
    assert cap["resourceType"] == "CapabilityStatement" and cap["fhirVersion"] == "4.0.1"
    assert cap["rest"][0]["operation"][0]["name"] == "convert"
    health = httpx.get(f"{gateway.url}/healthz").json()
    assert health == {"status": "ok", "version": health["version"], "cache": "redis", "cacheStatus": "up"}
    _assert_outcome(httpx.get(f"{gateway.url}/fhir/Nope"), 404, "set HELIXGATE_UPSTREAM_URL")  # what would serve it
    _assert_outcome(httpx.get(f"{gateway.url}/fhir/$convert"), 405, "Method Not Allowed")


def test_embedded_default_runs_without_redis(embedded_gateway) -> None:
    assert httpx.get(f"{embedded_gateway.url}/healthz").json()["cache"] == "memory"
    first = _post(embedded_gateway.url, MESSAGES[1].read_bytes())
    second = _post(embedded_gateway.url, MESSAGES[1].read_bytes())
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.json() == second.json()
