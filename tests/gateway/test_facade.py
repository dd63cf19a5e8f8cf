"""The validating facade over HTTP in front of Medplum's FHIR router: proxied reads with ETag revalidation,
validated writes (422, nothing forwarded), national formats converted and delivered, URLs rewritten, and the
merged CapabilityStatement."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.settings import Settings
from tests.conftest import RedisServer, ServedApp, free_port
from tests.upstream.engine import OWN, unique_message
from tests.upstream.fixtures import UpstreamControl

FHIR = {"Content-Type": "application/fhir+json"}
PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:test:mrn", "value": "F-1"}],
           "name": [{"family": "Facadetest", "given": ["Ada"]}], "gender": "female", "birthDate": "1970-01-01"}


@pytest.fixture(scope="module")
def facade(medplum_upstream: str, redis_server: RedisServer) -> Iterator[ServedApp]:
    settings = Settings(redis_url=redis_server.url, upstream_url=medplum_upstream, upstream_transaction_max_entries=8,
                        upstream_retries=1)
    with ServedApp(settings) as app:
        yield app


def test_a_valid_write_is_forwarded_and_reads_are_revalidated_with_the_etag(
        facade: ServedApp, upstream_control: UpstreamControl) -> None:
    created = httpx.post(f"{facade.url}/fhir/Patient", json=PATIENT, headers=FHIR, timeout=30)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.startswith(f"{facade.url}/fhir/Patient/")
    assert upstream_control.base not in created.text
    path = location.split(f"{facade.url}/fhir/")[1].split("/_history")[0]
    first = httpx.get(f"{facade.url}/fhir/{path}", timeout=10)
    assert first.status_code == 200 and first.headers["x-cache"] == "miss"
    etag = first.headers["etag"]
    second = httpx.get(f"{facade.url}/fhir/{path}", timeout=10)
    assert second.status_code == 200 and second.headers["x-cache"] == "revalidated"
    assert second.json() == first.json()
    assert httpx.get(f"{facade.url}/fhir/{path}", headers={"If-None-Match": etag}, timeout=10).status_code == 304
    updated = httpx.put(f"{facade.url}/fhir/{path}", json={**first.json(), "gender": "other"}, headers=FHIR,
                        timeout=30)
    assert updated.status_code == 200, updated.text
    third = httpx.get(f"{facade.url}/fhir/{path}", timeout=10)
    assert third.headers["x-cache"] == "miss" and third.json()["gender"] == "other" and third.headers["etag"] != etag


def test_an_invalid_write_gets_422_with_the_outcome_and_nothing_is_forwarded(
        facade: ServedApp, upstream_control: UpstreamControl) -> None:
    bad = {**PATIENT, "gender": "sometimes", "birthDate": "1970-13-45"}
    r = httpx.post(f"{facade.url}/fhir/Patient", json=bad, headers=FHIR, timeout=30)
    assert r.status_code == 422
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(i["severity"] == "error" for i in outcome["issue"])
    assert upstream_control.stats()["requests"] == 0
    wrong = httpx.post(f"{facade.url}/fhir/Observation", json=PATIENT, headers=FHIR, timeout=30)
    assert wrong.status_code == 400 and upstream_control.stats()["requests"] == 0


def test_searches_come_back_with_the_gateways_urls(facade: ServedApp, upstream_control: UpstreamControl) -> None:
    for n in range(2):
        httpx.post(f"{facade.url}/fhir/Patient", json={**PATIENT, "identifier": [{"system": "urn:test:mrn",
                                                                                  "value": f"S-{n}"}]},
                   headers=FHIR, timeout=30).raise_for_status()
    r = httpx.get(f"{facade.url}/fhir/Patient", params={"family": "Facadetest"}, timeout=10)
    assert r.status_code == 200 and r.headers["x-cache"] == "bypass"
    bundle = r.json()
    assert len(bundle["entry"]) == 2
    assert all(e["fullUrl"].startswith(f"{facade.url}/fhir/Patient/") for e in bundle["entry"])
    assert upstream_control.base not in r.text


def test_an_hl7v2_message_posted_to_the_base_is_converted_validated_and_delivered_once(
        facade: ServedApp, upstream_control: UpstreamControl) -> None:
    message = unique_message(1, "F")
    v2 = {"Content-Type": "x-application/hl7-v2+er7"}
    first = httpx.post(f"{facade.url}/fhir", content=message, headers=v2, timeout=60)
    assert first.status_code == 200, first.text
    reply = first.json()
    assert reply["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in reply["entry"]]
    assert statuses.count("201 Created") == len(statuses) - 2  # the two Provenances are PUT: 200
    assert all(e["response"]["location"].startswith(f"{facade.url}/fhir/") for e in reply["entry"])
    again = httpx.post(f"{facade.url}/fhir", content=message, headers=v2, timeout=60)
    assert all(e["response"]["status"] == "200 OK" for e in again.json()["entry"])
    for rtype, n in OWN.items():
        assert upstream_control.count(rtype) == n, rtype


def test_metadata_announces_the_upstreams_resources_beside_the_gateways_operations(facade: ServedApp) -> None:
    r = httpx.get(f"{facade.url}/fhir/metadata", timeout=10)
    assert r.status_code == 200
    cap = r.json()
    rest = cap["rest"][0]
    assert {"Patient", "Observation", "DiagnosticReport"} <= {res["type"] for res in rest["resource"]}
    assert "convert" in {o["name"] for o in rest["operation"]}
    assert {"transaction"} <= {i["code"] for i in rest["interaction"]}
    assert cap["implementation"]["url"] == f"{facade.url}/fhir"
    assert "/fhir/R4" not in r.text


def test_an_unreachable_upstream_is_a_503_with_retry_after(redis_server: RedisServer) -> None:
    settings = Settings(redis_url=redis_server.url, upstream_url=f"http://127.0.0.1:{free_port()}/fhir",
                        upstream_retries=0)
    with ServedApp(settings) as app:
        r = httpx.get(f"{app.url}/fhir/Patient/x", timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["issue"][0]["code"] == "transient"
        assert httpx.get(f"{app.url}/fhir/metadata", timeout=10).status_code == 200  # still its own
