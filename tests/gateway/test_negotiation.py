"""gateway/negotiation.py: _format overrides Accept; JSON passes in every spelling; XML asked for in any of its
spellings gets every FHIR JSON response under /fhir written as FHIR XML (conversion output, $validate, $translate,
/metadata, errors); formats the gateway does not render (Turtle, HTML) get 406 with an OperationOutcome; other media
types are left to the routes, and responses that are not a FHIR resource stay as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from gateway.negotiation import NegotiationMiddleware, choose, refusal
from gateway.settings import Settings
from profiles.xml import xml_to_json
from tests.conftest import ROOT
from tests.gateway.auth.served import AuthServed, Client

XML_TYPE = "application/fhir+xml"
ORU = (ROOT / "examples" / "oru-egfr-somatic.hl7").read_bytes()


def read_xml(r: httpx.Response) -> dict[str, Any]:
    """The response as FHIR XML: its media type, the FHIR namespace on the root, and the resource it holds."""
    assert r.headers["content-type"].startswith(XML_TYPE), (r.status_code, r.headers["content-type"], r.text[:300])
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?><')
    assert b' xmlns="http://hl7.org/fhir"' in r.content[:200]
    return xml_to_json(r.content, None)


@pytest.mark.parametrize("fmt", ["json", "JSON", "application/json", "application/fhir+json", "application/fhir json",
                                 "application/json+fhir", "application/fhir+ndjson"])
def test_json_and_non_fhir_media_types_pass(fmt: str) -> None:
    assert choose(fmt, "application/fhir+xml") == (False, None)  # _format wins over Accept


@pytest.mark.parametrize("fmt", ["xml", "XML", "text/xml", "application/xml", "application/fhir+xml",
                                 "application/fhir xml", "application/xml+fhir", "application/fhir+xml; charset=utf-8"])
def test_xml_in_every_spelling_is_rendered(fmt: str) -> None:
    assert choose(fmt, "application/fhir+json") == (True, None)  # _format wins over Accept


@pytest.mark.parametrize(("fmt", "words"), [("ttl", "not Turtle"), ("html", "not HTML"), ("text/turtle", "not Turtle"),
                                            ("yaml", "not a format helixgate knows")])
def test_unrendered_formats_are_refused_with_a_reason(fmt: str, words: str) -> None:
    why = refusal(fmt, None)
    assert why is not None and words in why and "json, xml, application/fhir+json or application/fhir+xml" in why


@pytest.mark.parametrize(("accept", "xml", "refused"), [
    (None, False, False), ("", False, False), ("application/fhir+json", False, False),
    ("application/json", False, False), ("*/*", False, False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False, False),  # a browser: JSON as before
    ("x-application/hl7-v2+er7", False, False), ("application/fhir+ndjson", False, False),
    ("application/fhir+xml", True, False), ("application/xml, text/xml", True, False), ("text/xml", True, False),
    ("application/fhir+xml, application/json;q=0.5", True, False),
    ("application/json;q=0.5, application/fhir+xml", True, False),  # quality, not order, decides
    ("application/fhir+json, application/fhir+xml", False, False),  # equal quality: the first listed
    ("application/json;q=0, application/fhir+xml", True, False), ("application/fhir+xml;q=0", False, False),
    ("text/html, application/fhir+xml;q=0.1", True, False),  # HTML is not rendered: the next acceptable one
    ("text/turtle", False, True), ("text/turtle, text/html", False, True),
])
def test_accept_picks_the_most_preferred_rendered_format(accept: str | None, xml: bool, refused: bool) -> None:
    wanted, why = choose(None, accept)
    assert wanted is xml and (why is not None) is refused


# ---- over HTTP ----
def test_metadata_in_xml_is_the_json_capability_statement(embedded_gateway) -> None:
    base = f"{embedded_gateway.url}/fhir"
    as_json = httpx.get(f"{base}/metadata", timeout=30).json()
    assert {"application/fhir+xml", "xml"} <= set(as_json["format"])
    for kwargs in ({"params": {"_format": "xml"}}, {"headers": {"Accept": XML_TYPE}},
                   {"params": {"_format": "application/fhir+xml"}, "headers": {"Accept": "application/json"}}):
        r = httpx.get(f"{base}/metadata", timeout=30, **kwargs)
        assert r.status_code == 200 and read_xml(r) == as_json
        assert r.headers["content-length"] == str(len(r.content))
    json_wins = httpx.get(f"{base}/metadata", params={"_format": "json"}, headers={"Accept": XML_TYPE}, timeout=30)
    assert json_wins.headers["content-type"].startswith("application/fhir+json")


def test_conversion_output_in_xml_keeps_the_report(embedded_gateway) -> None:
    url = f"{embedded_gateway.url}/fhir/$convert"
    headers = {"Content-Type": "x-application/hl7-v2+er7"}
    as_json = httpx.post(url, content=ORU, headers=headers, timeout=60)
    assert as_json.status_code == 200, as_json.text
    r = httpx.post(url, content=ORU, headers={**headers, "Accept": XML_TYPE}, timeout=60)
    assert r.status_code == 200 and read_xml(r) == as_json.json()
    assert r.headers["x-conversion-report"] == as_json.headers["x-conversion-report"]
    target = httpx.post(url, params={"target": "fhir-xml"}, content=ORU, headers=headers, timeout=60)
    assert target.status_code == 200 and read_xml(target) == as_json.json()


def test_validate_outcome_in_xml(embedded_gateway) -> None:
    bad = b'{"resourceType": "Patient", "gender": "sometimes", "birthDate": "1970-13-45"}'
    url = f"{embedded_gateway.url}/fhir/$validate"
    as_json = httpx.post(url, content=bad, headers={"Content-Type": "application/fhir+json"}, timeout=60)
    r = httpx.post(url, content=bad, headers={"Content-Type": "application/fhir+json", "Accept": XML_TYPE},
                   timeout=60)
    assert r.status_code == as_json.status_code == 200
    outcome = read_xml(r)
    assert outcome == as_json.json() and outcome["resourceType"] == "OperationOutcome"
    assert any(i["severity"] == "error" for i in outcome["issue"])


def test_translate_parameters_in_xml(embedded_gateway) -> None:
    url = f"{embedded_gateway.url}/fhir/ConceptMap/$translate"
    params = {"system": "http://terminology.hl7.org/CodeSystem/v2-0078", "code": "H"}
    as_json = httpx.get(url, params=params, timeout=30)
    r = httpx.get(url, params={**params, "_format": "xml"}, timeout=30)
    assert r.status_code == as_json.status_code
    doc = read_xml(r)
    assert doc == as_json.json() and doc["resourceType"] == "Parameters"


def test_errors_are_in_xml_when_xml_was_asked_for(embedded_gateway) -> None:
    base = f"{embedded_gateway.url}/fhir"
    r = httpx.post(f"{base}/$convert", params={"_format": "xml"}, content=b"MSH|garbage",
                   headers={"Content-Type": "x-application/hl7-v2+er7"}, timeout=30)
    assert 400 <= r.status_code < 500
    outcome = read_xml(r)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    missing = httpx.get(f"{base}/NoSuchThing/x/y/z", headers={"Accept": XML_TYPE}, timeout=30)
    assert missing.status_code == 404 and read_xml(missing)["issue"][0]["code"] == "not-found"


def test_turtle_and_html_still_get_406(embedded_gateway) -> None:
    base = f"{embedded_gateway.url}/fhir"
    r = httpx.get(f"{base}/metadata", params={"_format": "ttl"}, timeout=30)
    assert r.status_code == 406 and r.headers["content-type"].startswith("application/fhir+json")
    issue = r.json()["issue"][0]
    assert (issue["code"], issue["details"]["coding"][0]["code"]) == ("not-supported", "format-not-supported")
    html = httpx.post(f"{base}/$validate", content=b"{}", headers={"Accept": "text/html"}, timeout=30)
    assert html.status_code == 406
    assert httpx.get(f"{embedded_gateway.url}/healthz", params={"_format": "ttl"}, timeout=30).status_code == 200


def test_what_is_not_a_fhir_resource_stays_as_it_is(embedded_gateway) -> None:
    r = httpx.get(f"{embedded_gateway.url}/fhir/.well-known/smart-configuration", params={"_format": "xml"},
                  timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "resourceType" not in r.json()
    v2 = httpx.post(f"{embedded_gateway.url}/fhir/$convert", params={"target": "hl7v2", "_format": "xml"},
                    content=(ROOT / "examples" / "cn-ws445-lab.json").read_bytes(),
                    headers={"Content-Type": "application/x-ws445+json"}, timeout=60)
    assert v2.status_code == 200 and v2.content.startswith(b"MSH|")  # an HL7 v2 message: no FHIR XML form
    assert v2.headers["content-type"].split(";")[0] == "x-application/hl7-v2+er7"


# ---- the middleware around a plain ASGI app: what it rewrites, what it leaves ----
def served(body_parts: list[bytes], media: str) -> NegotiationMiddleware:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", media.encode()), (b"x-kept", b"yes")]})
        for n, part in enumerate(body_parts):
            await send({"type": "http.response.body", "body": part, "more_body": n < len(body_parts) - 1})

    return NegotiationMiddleware(app)


def call(app: NegotiationMiddleware, query: str = "_format=xml") -> tuple[int, dict[str, str], bytes, int]:
    """(status, headers, body, body messages) of a GET /fhir/x through the middleware."""
    import asyncio

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/fhir/x", "query_string": query.encode(), "headers": []}
    asyncio.run(app(scope, receive, send))
    start, bodies = sent[0], [m for m in sent[1:] if m["type"] == "http.response.body"]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m["body"] for m in bodies), len(bodies)


def test_a_json_body_in_pieces_is_gathered_and_written_as_xml() -> None:
    status, headers, body, _ = call(served([b'{"resourceType": "Patient", "birth', b'Date": "1970", "active": true}'],
                                           "application/fhir+json; charset=utf-8"))
    assert status == 201 and headers["x-kept"] == "yes" and headers["content-type"] == XML_TYPE + "; charset=utf-8"
    assert headers["content-length"] == str(len(body)) and headers["vary"] == "Accept"
    assert xml_to_json(body, None) == {"resourceType": "Patient", "birthDate": "1970", "active": True}


def test_decimals_are_written_as_the_json_wrote_them() -> None:
    _, _, body, _ = call(served([b'{"resourceType": "Observation", "status": "final", "code": {"text": "t"}, '
                                 b'"valueQuantity": {"value": 1.50}}'], "application/fhir+json"))
    assert b'<valueQuantity><value value="1.50"/></valueQuantity>' in body


def test_a_resource_xml_cannot_carry_gets_406_naming_why_in_xml() -> None:
    status, headers, body, _ = call(served([b'{"resourceType": "Patient", "nickname": "Bob"}'],
                                           "application/fhir+json"))
    assert status == 406 and headers["content-type"].startswith(XML_TYPE)
    issue = xml_to_json(body, None)["issue"][0]
    assert issue["code"] == "not-supported" and "Patient.nickname" in issue["details"]["text"]


def test_other_bodies_pass_untouched_and_stay_streamed() -> None:
    parts = [b"MSH|^~\\&|A\r", b"PID|1\r", b"OBX|1\r"]
    status, headers, body, messages = call(served(parts, "x-application/hl7-v2+er7"))
    assert (status, body, messages) == (201, b"".join(parts), 3) and headers["content-type"].startswith("x-app")
    status, headers, body, _ = call(served([b'{"issuer": "https://as"}'], "application/json"))
    assert (status, body, headers["content-type"]) == (201, b'{"issuer": "https://as"}', "application/json")
    _, headers, body, messages = call(served(parts[:2], "application/fhir+json"), query="_format=json")
    assert (body, messages) == (b"".join(parts[:2]), 2)  # JSON asked for: nothing held back


def test_an_empty_json_answer_passes_as_it_is() -> None:
    status, headers, body, _ = call(served([b""], "application/fhir+json"))
    assert (status, body, headers["content-type"]) == (201, b"", "application/fhir+json")


def test_access_control_refusals_are_in_xml_when_xml_was_asked_for(tmp_path: Path) -> None:
    with AuthServed(Settings(), tmp_path, {"translator": Client(["system/$translate"])}) as app:
        r = httpx.post(f"{app.url}/fhir/$validate", content=b"{}", headers={"Accept": XML_TYPE}, timeout=30)
        assert r.status_code == 401 and read_xml(r)["issue"][0]["code"] == "login"
        denied = httpx.post(f"{app.url}/fhir/$validate", content=b"{}", timeout=30,
                            headers={**app.auth("translator"), "Accept": XML_TYPE})
        assert denied.status_code == 403 and read_xml(denied)["resourceType"] == "OperationOutcome"
        public = httpx.get(f"{app.url}/fhir/metadata", params={"_format": "xml"}, timeout=30)
        assert public.status_code == 200 and read_xml(public)["resourceType"] == "CapabilityStatement"
