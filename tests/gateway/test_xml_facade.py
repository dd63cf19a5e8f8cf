"""FHIR XML through the validating facade (in front of Medplum's FHIR router): reads, searches, writes and the
facade's own refusals come as FHIR XML when `_format=xml` or `Accept: application/fhir+xml` asks, the same resources
as the JSON answers; `_format` stays with the gateway (the upstream is asked for JSON)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.settings import Settings
from profiles.xml import xml_to_json
from tests.conftest import RedisServer, ServedApp
from tests.upstream.fixtures import UpstreamControl

FHIR = {"Content-Type": "application/fhir+json"}
XML = {"Accept": "application/fhir+xml"}
PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:test:mrn", "value": "X-1"}],
           "name": [{"family": "Xmltest", "given": ["Ada"]}], "gender": "female", "birthDate": "1970-01-01"}


@pytest.fixture(scope="module")
def facade(medplum_upstream: str, redis_server: RedisServer) -> Iterator[ServedApp]:
    with ServedApp(Settings(redis_url=redis_server.url, upstream_url=medplum_upstream, upstream_retries=1)) as app:
        yield app


def as_xml(r: httpx.Response) -> dict:
    assert r.headers["content-type"].startswith("application/fhir+xml"), (r.status_code, r.text[:300])
    return xml_to_json(r.content, None)


def test_facade_reads_searches_and_writes_in_xml(facade: ServedApp, upstream_control: UpstreamControl) -> None:
    created = httpx.post(f"{facade.url}/fhir/Patient", json=PATIENT, headers={**FHIR, **XML}, timeout=30)
    assert created.status_code == 201
    patient = as_xml(created)
    assert patient["name"] == PATIENT["name"] and patient["id"]
    url = f"{facade.url}/fhir/Patient/{patient['id']}"
    as_json = httpx.get(url, timeout=10).json()
    assert as_xml(httpx.get(url, params={"_format": "xml"}, timeout=10)) == as_json
    found = httpx.get(f"{facade.url}/fhir/Patient", params={"family": "Xmltest", "_format": "xml"}, timeout=10)
    bundle = as_xml(found)
    assert bundle["type"] == "searchset" and any(e["resource"]["id"] == patient["id"] for e in bundle["entry"])
    links = [link["url"] for link in bundle.get("link", [])]
    assert links and all("_format" not in u and u.startswith(f"{facade.url}/fhir/") for u in links)  # not forwarded


def test_facade_refusals_in_xml(facade: ServedApp, upstream_control: UpstreamControl) -> None:
    bad = {**PATIENT, "gender": "sometimes"}
    r = httpx.post(f"{facade.url}/fhir/Patient", json=bad, headers={**FHIR, **XML}, timeout=30)
    assert r.status_code == 422
    outcome = as_xml(r)
    assert outcome["resourceType"] == "OperationOutcome" and any(i["severity"] == "error" for i in outcome["issue"])
    missing = httpx.get(f"{facade.url}/fhir/Patient/no-such-patient-xml", params={"_format": "xml"}, timeout=10)
    assert missing.status_code == 404 and as_xml(missing)["resourceType"] == "OperationOutcome"
