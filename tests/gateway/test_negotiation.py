"""gateway/negotiation.py: _format overrides Accept; JSON passes in every spelling; formats the gateway does not
render get 406 with an OperationOutcome; other media types are left to the routes."""

from __future__ import annotations

import httpx
import pytest

from gateway.negotiation import refusal


@pytest.mark.parametrize("fmt", ["json", "JSON", "application/json", "application/fhir+json", "application/fhir json",
                                 "application/json+fhir", "application/fhir+ndjson"])
def test_json_and_non_fhir_media_types_pass(fmt: str) -> None:
    assert refusal(fmt, "application/fhir+xml") is None  # _format wins over Accept


@pytest.mark.parametrize(("fmt", "words"), [("xml", "not FHIR XML"), ("application/fhir+xml", "not FHIR XML"),
                                            ("ttl", "not Turtle"), ("html", "not HTML"),
                                            ("yaml", "not a format helixgate knows")])
def test_unrendered_formats_are_refused_with_a_reason(fmt: str, words: str) -> None:
    why = refusal(fmt, None)
    assert why is not None and words in why and "use json, application/json or application/fhir+json" in why


@pytest.mark.parametrize(("accept", "refused"), [
    (None, False), ("", False), ("application/fhir+json", False), ("application/json", False), ("*/*", False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),  # a browser
    ("x-application/hl7-v2+er7", False), ("application/fhir+ndjson", False),
    ("application/fhir+xml", True), ("application/xml, text/xml", True), ("text/turtle", True),
    ("application/fhir+xml, application/json;q=0.5", False), ("application/json;q=0, application/fhir+xml", True),
])
def test_accept_is_refused_only_when_every_acceptable_type_is_unrendered(accept: str | None, refused: bool) -> None:
    assert (refusal(None, accept) is not None) is refused


def test_over_http_406_with_an_operation_outcome(embedded_gateway) -> None:
    base = f"{embedded_gateway.url}/fhir"
    r = httpx.get(f"{base}/metadata", params={"_format": "xml"})
    assert r.status_code == 406 and r.headers["content-type"].startswith("application/fhir+json")
    issue = r.json()["issue"][0]
    assert (issue["code"], issue["details"]["coding"][0]["code"]) == ("not-supported", "format-not-supported")
    r = httpx.post(f"{base}/$validate", content=b"{}", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 406
    assert httpx.get(f"{base}/metadata", params={"_format": "application/fhir+json"}).status_code == 200
    assert httpx.get(f"{base}/metadata", headers={"Accept": "application/json"}).status_code == 200
    assert httpx.get(f"{embedded_gateway.url}/healthz", params={"_format": "xml"}).status_code == 200  # not /fhir
