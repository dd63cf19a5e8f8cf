"""ConceptMap $translate over real HTTP (uvicorn on loopback, the session's real Redis), the China conversions over
$convert, and `helixgate translate` / `helixgate convert` as subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from tests.conftest import ROOT

CN_SAMPLES = ROOT / "tests" / "mappers" / "cda_cn" / "samples"
WS445_SAMPLES = ROOT / "tests" / "mappers" / "ws445" / "samples"
ICD_CN = "urn:oid:2.16.156.10011.2.3.3.11"
ICD_WHO = "http://hl7.org/fhir/sid/icd-10"
FHIR = {"Content-Type": "application/fhir+json"}


def _tx(base: str, **params: str) -> httpx.Response:
    return httpx.get(f"{base}/fhir/ConceptMap/$translate", params=params, timeout=10)


def _params(doc: dict) -> tuple[bool, str | None, list[dict]]:
    assert doc["resourceType"] == "Parameters"
    result = next(p["valueBoolean"] for p in doc["parameter"] if p["name"] == "result")
    message = next((p["valueString"] for p in doc["parameter"] if p["name"] == "message"), None)
    matches = [{x["name"]: x for x in p["part"]} for p in doc["parameter"] if p["name"] == "match"]
    return result, message, matches


def _outcome(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome" and text in doc["issue"][0]["details"]["text"]


def test_get_translate_national_icd10_to_who(gateway) -> None:
    r = _tx(gateway.url, system=ICD_CN, code="K35.800x001")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    result, message, matches = _params(r.json())
    assert result is True and message is None
    assert len(matches) == 1
    m = matches[0]
    assert m["equivalence"]["valueCode"] == "wider"
    assert m["concept"]["valueCoding"] == {"system": ICD_WHO, "code": "K35.8"}
    assert m["source"]["valueUri"] == "urn:helixgate:conceptmap:icd-10-cn-to-icd-10"


def test_unlisted_codes_translate_by_rule(gateway) -> None:
    _, _, matches = _params(_tx(gateway.url, system=ICD_CN, code="J45.900x002").json())
    assert [(m["concept"]["valueCoding"]["code"], m["equivalence"]["valueCode"]) for m in matches] == [
        ("J45.9", "wider")]
    _, _, pair = _params(_tx(gateway.url, system=ICD_CN, code="E11.502+I79.2*").json())
    assert [m["concept"]["valueCoding"]["code"] for m in pair] == ["E11.5", "I79.2"]


def test_lookups_are_cached_in_redis_under_their_own_prefix(gateway, redis_server) -> None:
    params = {"system": "urn:oid:2.16.156.10011.2.3.3.4", "code": "2"}
    client = redis.Redis.from_url(redis_server.url)
    before = set(client.keys("helixgate:tx:*"))
    first = _tx(gateway.url, **params)
    second = _tx(gateway.url, **params)
    assert first.json() == second.json()
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    added = set(client.keys("helixgate:tx:*")) - before
    assert len(added) == 1
    assert orjson.loads(client.get(added.pop())) == first.json()
    assert not any(k.startswith(b"helixgate:tx:") for k in client.keys("helixgate:conv:*"))


def test_post_parameters_body_with_coding_and_target_system(gateway) -> None:
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": "urn:oid:2.16.156.10011.2.3.3.1", "code": "156"}},
        {"name": "targetsystem", "valueUri": "urn:iso:std:iso:3166"}]}
    r = httpx.post(f"{gateway.url}/fhir/ConceptMap/$translate", json=body, headers=FHIR, timeout=10)
    assert r.status_code == 200, r.text
    result, _, matches = _params(r.json())
    assert result and matches[0]["concept"]["valueCoding"]["code"] == "CN"
    assert matches[0]["equivalence"]["valueCode"] == "equivalent"


def test_post_form_reverse_and_instance_level(gateway) -> None:
    r = httpx.post(f"{gateway.url}/fhir/ConceptMap/icd-10-cn-to-icd-10/$translate",
                   content=b"code=K35.8&system=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Ficd-10&reverse=true",
                   headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 200, r.text
    result, _, matches = _params(r.json())
    assert result
    assert {(m["concept"]["valueCoding"]["code"], m["equivalence"]["valueCode"]) for m in matches} == {
        ("K35.800x001", "narrower"), ("K35.800", "narrower")}
    # Reversed, FHIR gender 'male' finds GB/T 2261.1 code 1 (and v2 table 0001 M and the phenopacket Sex MALE, other
    # maps to the same system).
    _, _, by_system = _params(_tx(gateway.url, system="http://hl7.org/fhir/administrative-gender", code="male",
                                  reverse="true").json())
    assert {m["concept"]["valueCoding"]["code"] for m in by_system} == {"1", "M", "MALE"}


def test_no_translation_is_result_false_with_a_message(gateway) -> None:
    result, message, matches = _params(_tx(gateway.url, system="urn:oid:2.16.156.10011.2.3.1.1", code="07").json())
    assert result is False and "no translation for urn:oid:2.16.156.10011.2.3.1.1|07" in message
    assert matches[0]["equivalence"]["valueCode"] == "unmatched"  # the group.unmapped fallback, stated as such
    result, message, matches = _params(_tx(gateway.url, system="http://example.org/none", code="x").json())
    assert (result, matches) == (False, []) and "no ConceptMap translates from http://example.org/none" in message


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"system": ICD_CN}, 400, "needs a code"),
    ({"code": "K35.8"}, 400, "name the source code system"),
    ({"system": ICD_CN, "code": "K35.8", "reverse": "maybe"}, 400, "must be true or false"),
    ({"url": "urn:helixgate:conceptmap:nope", "code": "x"}, 404, "no ConceptMap with url or id"),
])
def test_bad_requests_get_an_operation_outcome(gateway, params, status: int, text: str) -> None:
    _outcome(_tx(gateway.url, **params), status, text)


def test_bad_post_bodies(gateway) -> None:
    url = f"{gateway.url}/fhir/ConceptMap/$translate"
    _outcome(httpx.post(url, content=b"{nope", headers=FHIR), 400, "not valid JSON")
    _outcome(httpx.post(url, json={"resourceType": "Bundle"}, headers=FHIR), 400, "Parameters resource")
    _outcome(httpx.post(url, content=b"<x/>", headers={"Content-Type": "application/xml"}), 400, "POST a Parameters")
    _outcome(httpx.get(f"{gateway.url}/fhir/ConceptMap/nope/$translate", params={"code": "x"}), 404, "'nope'")


def test_convert_cda_and_ws445_over_http(gateway) -> None:
    data = (CN_SAMPLES / "lab-genetic.gb18030.xml").read_bytes()
    r = httpx.post(f"{gateway.url}/fhir/$convert", content=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["entry"][0]["resource"]["resourceType"] == "Composition"
    back = httpx.post(f"{gateway.url}/fhir/$convert", content=r.content, headers=FHIR, params={"target": "cda-cn"})
    assert back.status_code == 200 and back.headers["content-type"].startswith("application/cda+xml")
    again = httpx.post(f"{gateway.url}/fhir/$convert", content=back.content,
                       headers={"Content-Type": "application/cda+xml"})
    assert again.status_code == 200
    ws = httpx.post(f"{gateway.url}/fhir/$convert", content=(WS445_SAMPLES / "exam-ecg.json").read_bytes(),
                    headers={"Content-Type": "application/x-ws445+json"})
    assert ws.status_code == 200 and ws.json()["resourceType"] == "Bundle"
    to_ws = httpx.post(f"{gateway.url}/fhir/$convert", content=ws.content, headers=FHIR, params={"target": "ws445"})
    assert to_ws.status_code == 200
    assert to_ws.json() == orjson.loads((WS445_SAMPLES / "exam-ecg.json").read_bytes())


def test_hostile_xml_over_http_is_a_400(gateway) -> None:
    evil = (b'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            b'<ClinicalDocument xmlns="urn:hl7-org:v3"><realmCode code="CN"/>&x;</ClinicalDocument>')
    r = httpx.post(f"{gateway.url}/fhir/$convert", content=evil, headers={"Content-Type": "application/xml"})
    _outcome(r, 400, "DOCTYPE declarations are not allowed")
    assert r.json()["issue"][0]["expression"] == ["line 2"]


def _clinical(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] != "Provenance"]


def helixgate(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=60)


@pytest.mark.parametrize(("args", "code", "out", "err"), [
    (("translate", "--system", ICD_CN, "--code", "K35.800x001"), 0, b"wider\thttp://hl7.org/fhir/sid/icd-10|K35.8",
     b""),
    (("translate", "--url", "icd-10-cn-to-icd-10", "--code", "K35.8", "--reverse"), 0, b"narrower", b""),
    (("translate", "--system", "urn:oid:2.16.156.10011.2.3.3.4", "--code", "7"), 1, b"unmatched",
     b"no translation for"),
    (("translate", "--url", "nope", "--code", "7"), 1, b"", b"no ConceptMap with url or id 'nope'"),
    (("translate", "--code", "7"), 2, b"", b"name the source code system"),
    (("translate",), 2, b"", b"--code is required"),
    (("translate", "--list"), 0, b"icd-10-cn-to-icd-10\turn:helixgate:conceptmap:icd-10-cn-to-icd-10", b""),
    (("translate", "--bogus"), 2, b"", b"unrecognized arguments"),
])
def test_cli_translate(args: tuple[str, ...], code: int, out: bytes, err: bytes) -> None:
    r = helixgate(*args)
    assert r.returncode == code, r.stderr
    assert out in r.stdout and err in r.stderr
    assert b"Traceback" not in r.stderr


def test_cli_translate_json_is_the_http_parameters(gateway) -> None:
    r = helixgate("translate", "--system", ICD_CN, "--code", "F29.x00", "--json")
    assert r.returncode == 0
    assert orjson.loads(r.stdout) == _tx(gateway.url, system=ICD_CN, code="F29.x00").json()


def test_cli_convert_china_formats(tmp_path: Path) -> None:
    doc = CN_SAMPLES / "exam-ct.utf8.xml"
    r = helixgate("convert", str(doc), "--from", "cda-cn", "--to", "fhir")
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "b.json"
    bundle.write_bytes(r.stdout)
    assert orjson.loads(r.stdout)["entry"][0]["resource"]["type"]["coding"][0]["code"] == "C0006"
    detected = helixgate("convert", str(doc))  # --from detected, --to defaults to fhir
    assert detected.returncode == 0
    assert _clinical(orjson.loads(detected.stdout)) == _clinical(orjson.loads(r.stdout))
    cda = helixgate("convert", str(bundle), "--from", "fhir", "--to", "cda-cn")
    assert cda.returncode == 0 and cda.stdout.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "司马青".encode() in cda.stdout
    ws = helixgate("convert", str(bundle), "--to", "ws445")
    assert ws.returncode == 0 and orjson.loads(ws.stdout)["DE04.50.132.00"].startswith("右肺下叶炎症")
    dataset = helixgate("convert", "-", stdin=ws.stdout)  # detected as ws445 from its DE keys
    assert dataset.returncode == 0 and orjson.loads(dataset.stdout)["resourceType"] == "Bundle"


@pytest.mark.parametrize(("args", "stdin", "code", "message"), [
    (("convert", "-", "--from", "cda-cn"), b'<!DOCTYPE x><ClinicalDocument realmCode code="CN"/>', 1,
     b"error at line 1: DOCTYPE declarations are not allowed"),
    (("convert", "-"), b'<ClinicalDocument xmlns="urn:hl7-org:v3"><realmCode code="CN"/><code code="C0032" '
     b'codeSystem="2.16.156.10011.2.4"/></ClinicalDocument>', 1, b"part 32"),
    (("convert", "-", "--from", "ws445"), b'{"DE02.01.039.00": "x", "DE02.01.040.00": "5", "items": [{}]}', 1,
     b"at DE02.01.040.00"),
    (("convert", "-", "--from", "cda-cn"), "<a>检验</a>".encode("gb18030"), 1, b"not <ClinicalDocument>"),
    (("convert", "-", "--to", "cda-cn"), b'{"resourceType": "Bundle", "type": "collection"}', 1,
     b"no DiagnosticReport"),
    (("convert", "-", "--from", "cda"), b"", 2, b"invalid choice"),
])
def test_cli_convert_rejections(args: tuple[str, ...], stdin: bytes, code: int, message: bytes) -> None:
    r = helixgate(*args, stdin=stdin)
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert b"Traceback" not in r.stderr
