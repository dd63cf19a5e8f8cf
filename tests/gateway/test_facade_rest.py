"""The facade as a complete FHIR REST endpoint, over HTTP, in front of the test upstream in its "named by another
public URL" mode (what HAPI's server_address or Medplum's baseUrl do behind an ingress): every interaction of the
route table, the REST semantics the gateway guarantees whatever the upstream does, paging to the last page, and no
address of the upstream in any body or header a client gets."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.facade import TABLE
from gateway.settings import Settings
from tests.conftest import RedisServer, ServedApp
from tests.upstream.fixtures import UpstreamProcess

FHIR = {"Content-Type": "application/fhir+json"}
ALIAS = "http://fhir.internal.example:8443/fhir/R4"  # what the upstream calls itself; nobody configured it


def patient(family: str, n: int = 0, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": "urn:test:rest", "value": f"{family}-{n}"}],
            "name": [{"family": family, "given": ["Ada"]}], "gender": "female", "birthDate": "1970-01-01",
            "active": True, **more}


class Leaks:
    """Every response the test's client gets, scanned for an upstream address (body and headers)."""

    def __init__(self, *origins: str) -> None:
        self.origins = [o.lower() for o in origins]
        self.found: list[str] = []
        self.seen = 0

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.seen += 1
        text = (response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())).lower()
        for o in self.origins:
            if o in text or o.replace("/", "\\/") in text:
                self.found.append(f"{response.request.method} {response.request.url.path}: {o}")


@pytest.fixture(scope="module")
def aliased() -> Iterator[UpstreamProcess]:
    server = UpstreamProcess(public_base=ALIAS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def facade(aliased: UpstreamProcess, redis_server: RedisServer) -> Iterator[ServedApp]:
    with ServedApp(Settings(redis_url=redis_server.url, upstream_url=aliased.base, upstream_retries=1)) as app:
        yield app


@pytest.fixture()
def client(facade: ServedApp, aliased: UpstreamProcess, caplog: pytest.LogCaptureFixture) -> Iterator[httpx.Client]:
    aliased.control.reset()
    leaks = Leaks("fhir.internal.example", f"127.0.0.1:{aliased.port}")
    with caplog.at_level(logging.ERROR, "helixgate.facade"), httpx.Client(
            base_url=f"{facade.url}/fhir", timeout=60, event_hooks={"response": [leaks]}) as c:
        yield c
    assert leaks.seen and not leaks.found, leaks.found  # no test of this module lets an upstream address through
    assert "still names the upstream" not in caplog.text  # and the gateway's own scan agrees


def test_an_upstream_address_outside_its_base_is_a_logged_error(facade: ServedApp, aliased: UpstreamProcess,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """A URL on the upstream's host but outside its FHIR base cannot be mapped to the gateway: it is logged."""
    aliased.control.reset()
    body = patient("Photo", photo=[{"url": "http://fhir.internal.example:8443/files/photo-1.png"}])
    with caplog.at_level(logging.ERROR, "helixgate.facade"):
        r = httpx.post(f"{facade.url}/fhir/Patient", json=body, headers=FHIR, timeout=30)
    assert r.status_code == 201
    assert "still names the upstream (http://fhir.internal.example:8443)" in caplog.text


def _created(client: httpx.Client, family: str, n: int = 0) -> tuple[str, str]:
    r = client.post("/Patient", json=patient(family, n), headers=FHIR)
    assert r.status_code == 201, r.text
    return r.json()["id"], r.headers["etag"]


def test_metadata_announces_what_the_table_and_the_upstream_both_do(client: httpx.Client,
                                                                    facade: ServedApp) -> None:
    cap = client.get("/metadata").json()
    assert cap["implementation"]["url"] == f"{facade.url}/fhir"
    rest = cap["rest"][0]
    patient_res = next(r for r in rest["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient_res["interaction"]}
    assert codes == {"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                     "search-type"}
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "search-system", "history-system"}
    table = {i.code for i in TABLE if not i.code.startswith("$")}
    assert codes | {i["code"] for i in rest["interaction"]} <= table  # nothing the gateway does not route
    assert patient_res["conditionalDelete"] == "multiple" and patient_res["conditionalUpdate"] is True
    assert "application/json-patch+json" in cap["patchFormat"]


def test_create_read_vread_update_with_versions_and_prefer(client: httpx.Client, facade: ServedApp) -> None:
    r = client.post("/Patient", json=patient("Rest"), headers={**FHIR, "Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b""
    assert re.fullmatch(rf"{facade.url}/fhir/Patient/[^/]+/_history/[^/]+", r.headers["location"])
    assert r.headers["etag"].startswith('W/"') and r.headers["last-modified"].endswith("GMT")
    path = r.headers["location"].split("/fhir/")[1].split("/_history")[0]
    read = client.get(f"/{path}")
    assert read.status_code == 200 and read.headers["etag"] == r.headers["etag"]
    vid = read.json()["meta"]["versionId"]
    assert client.get(f"/{path}/_history/{vid}").json()["id"] == read.json()["id"]
    oo = client.put(f"/{path}", json={**read.json(), "gender": "other"},
                    headers={**FHIR, "Prefer": "return=OperationOutcome"})
    assert oo.status_code == 200 and oo.json()["resourceType"] == "OperationOutcome"
    assert oo.headers["etag"] != r.headers["etag"]
    stale = client.put(f"/{path}", json=read.json(), headers={**FHIR, "If-Match": r.headers["etag"]})
    assert stale.status_code in (409, 412) and stale.json()["resourceType"] == "OperationOutcome"
    history = client.get(f"/{path}/_history").json()
    assert history["type"] == "history" and len(history["entry"]) == 2
    assert any(ln["relation"] == "self" for ln in history["link"])


def test_update_as_create_is_201_with_location(client: httpx.Client, facade: ServedApp) -> None:
    body = {**patient("Putcreate"), "id": "put-created-1"}
    r = client.put("/Patient/put-created-1", json=body, headers=FHIR)
    assert r.status_code == 201, r.text  # the upstream says 200: the gateway knows better
    assert r.headers["location"].startswith(f"{facade.url}/fhir/Patient/put-created-1/_history/")
    again = client.put("/Patient/put-created-1", json={**body, "gender": "male"}, headers=FHIR)
    assert again.status_code == 200 and "location" not in again.headers
    wrong = client.put("/Patient/other-id", json=body, headers=FHIR)
    assert wrong.status_code == 400 and wrong.json()["issue"][0]["code"] == "invalid"


def test_delete_then_read_is_410_and_conditional_delete_takes_the_matches(client: httpx.Client) -> None:
    pid, _ = _created(client, "Deleteme")
    assert client.delete(f"/Patient/{pid}").status_code in (200, 204)
    gone = client.get(f"/Patient/{pid}")
    assert gone.status_code == 410 and gone.json()["issue"][0]["code"] == "deleted"
    for n in range(2):
        _created(client, "Conddelete", n)
    assert client.delete("/Patient", params={"family": "Conddelete"}).status_code in (200, 204)
    assert client.get("/Patient", params={"family": "Conddelete"}).json()["total"] == 0
    everything = client.delete("/Patient")
    assert everything.status_code == 412 and everything.json()["resourceType"] == "OperationOutcome"


def test_conditional_create_and_update(client: httpx.Client) -> None:
    body = patient("Cond", 7)
    first = client.post("/Patient", json=body, headers={**FHIR, "If-None-Exist": "identifier=urn:test:rest|Cond-7"})
    second = client.post("/Patient", json=body, headers={**FHIR, "If-None-Exist": "identifier=urn:test:rest|Cond-7"})
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    made = client.put("/Patient", params={"identifier": "urn:test:rest|Cond-8"}, json=patient("Cond", 8),
                      headers=FHIR)
    assert made.status_code == 201 and made.headers["location"]
    updated = client.put("/Patient", params={"identifier": "urn:test:rest|Cond-8"},
                         json={**patient("Cond", 8), "gender": "male"}, headers=FHIR)
    assert updated.status_code == 200 and updated.json()["gender"] == "male"


def test_json_patch_and_fhirpath_patch_are_validated_before_they_are_stored(client: httpx.Client) -> None:
    pid, etag = _created(client, "Patchme")
    jp = client.patch(f"/Patient/{pid}", content=b'[{"op":"replace","path":"/gender","value":"male"}]',
                      headers={"Content-Type": "application/json-patch+json", "If-Match": etag})
    assert jp.status_code == 200, jp.text
    assert jp.json()["gender"] == "male" and jp.headers["etag"] != etag
    fp = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
        {"name": "name", "valueString": "deceasedBoolean"}, {"name": "value", "valueBoolean": False}]}]}
    r = client.patch(f"/Patient/{pid}", json=fp, headers=FHIR)
    assert r.status_code == 200 and r.json()["deceasedBoolean"] is False
    invalid = client.patch(f"/Patient/{pid}", content=b'[{"op":"replace","path":"/gender","value":"sometimes"}]',
                           headers={"Content-Type": "application/json-patch+json"})
    assert invalid.status_code == 422 and invalid.headers["x-forwarded"] == "no"
    assert client.get(f"/Patient/{pid}").json()["gender"] == "male"  # nothing stored
    stale = client.patch(f"/Patient/{pid}", content=b'[{"op":"remove","path":"/active"}]',
                         headers={"Content-Type": "application/json-patch+json", "If-Match": etag})
    assert stale.status_code == 412
    bad = client.patch(f"/Patient/{pid}", content=b'{"op":"remove"}',
                       headers={"Content-Type": "application/json-patch+json"})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    no_id = client.patch(f"/Patient/{pid}", content=b'[{"op":"remove","path":"/id"}]',
                         headers={"Content-Type": "application/json-patch+json"})
    assert no_id.status_code == 422


def test_paging_is_followed_to_the_last_page_on_the_gateway(client: httpx.Client, facade: ServedApp) -> None:
    for n in range(7):
        _created(client, "Pager", n)
    url: str | None = "/Patient?family=Pager&_count=3"
    ids: list[str] = []
    pages = 0
    while url and pages < 10:
        page = client.get(url).json()
        links = {ln["relation"]: ln["url"] for ln in page["link"]}
        assert links["self"].startswith(f"{facade.url}/fhir/")
        ids += [e["resource"]["id"] for e in page.get("entry", []) if e["search"]["mode"] == "match"]
        url = links.get("next")
        assert url is None or url.startswith(f"{facade.url}/fhir/Patient?")
        pages += 1
    assert pages == 3 and len(ids) == len(set(ids)) == 7


def test_post_search_type_search_and_histories(client: httpx.Client, facade: ServedApp) -> None:
    for n in range(3):
        _created(client, "Poster", n)
    r = client.post("/Patient/_search", content=b"family=Poster&_count=2",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json()["total"] == 3
    assert any(ln["relation"] == "next" for ln in r.json()["link"])
    typed = client.get("/", params={"_type": "Patient,Observation", "family": "Poster"})
    assert typed.status_code == 200 and typed.json()["total"] == 3
    junk = client.post("/", content=b"x")  # answered at /fhir/, not redirected (a 307 a client may not re-POST)
    assert junk.status_code in (400, 415) and junk.json()["resourceType"] == "OperationOutcome"
    for path in ("/Patient/_history", "/_history"):
        h = client.get(path, params={"_count": "2"})
        assert h.status_code == 200 and h.json()["type"] == "history" and h.json()["total"] >= 3, path
    wrong = client.post("/Patient/_search", json={"family": "Poster"})
    assert wrong.status_code == 415


def test_summary_and_elements_are_applied_when_the_upstream_ignores_them(client: httpx.Client) -> None:
    pid, _ = _created(client, "Subset")
    elements = client.get(f"/Patient/{pid}", params={"_elements": "gender"}).json()
    assert elements["gender"] == "female" and "name" not in elements and "birthDate" not in elements
    assert any(t["code"] == "SUBSETTED" for t in elements["meta"]["tag"])
    summary = client.get(f"/Patient/{pid}", params={"_summary": "true"}).json()
    assert summary["name"] and "SUBSETTED" in str(summary["meta"])
    bogus = client.get(f"/Patient/{pid}", params={"_summary": "some"})
    assert bogus.status_code == 400 and bogus.json()["resourceType"] == "OperationOutcome"
    count = client.get("/Patient", params={"family": "Subset", "_summary": "count"}).json()
    assert count["total"] == 1 and "entry" not in count
    found = client.get("/Patient", params={"family": "Subset", "_elements": "birthDate"}).json()
    assert "name" not in found["entry"][0]["resource"] and found["entry"][0]["resource"]["birthDate"]


def test_a_page_without_a_next_link_says_it_may_be_incomplete(client: httpx.Client,
                                                             aliased: UpstreamProcess) -> None:
    for n in range(3):
        _created(client, "Nolinks", n)
    aliased.control.behave(dropLinks=True)
    page = client.get("/Patient", params={"family": "Nolinks", "_count": "2"}).json()
    outcomes = [e for e in page["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1 and outcomes[0]["resource"]["issue"][0]["code"] == "incomplete"
    assert [ln["relation"] for ln in page["link"]] == ["self"]
    whole = client.get("/Patient", params={"family": "Nolinks", "_count": "10"}).json()
    assert all(e["search"]["mode"] == "match" for e in whole["entry"])  # the whole set: nothing to say


def test_instance_validate_and_fhir_xml(client: httpx.Client) -> None:
    pid, _ = _created(client, "Validate")
    stored = client.post(f"/Patient/{pid}/$validate")
    assert stored.status_code == 200 and stored.json()["resourceType"] == "OperationOutcome"
    bad = client.post(f"/Patient/{pid}/$validate", json={**patient("Validate"), "id": pid, "gender": "x"},
                      headers=FHIR)
    assert bad.status_code == 200 and any(i["severity"] == "error" for i in bad.json()["issue"])
    xml = (b'<Patient xmlns="http://hl7.org/fhir"><name><family value="Xmlpost"/></name>'
           b'<gender value="female"/></Patient>')
    r = client.post("/Patient", content=xml, headers={"Content-Type": "application/fhir+xml"})
    assert r.status_code == 201, r.text
    assert client.get("/Patient", params={"family": "Xmlpost"}).json()["total"] == 1
    v2 = client.post("/Patient", content=b"MSH|^~\\&|x\r", headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert v2.status_code == 415 and "[base]" in v2.json()["issue"][0]["details"]["text"]


def test_transaction_and_batch_through_the_base_and_its_slash(client: httpx.Client, facade: ServedApp) -> None:
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:8c6bd1b4-6c3e-4a8b-9d1a-3e9f1d7a0001", "resource": patient("Txn"),
         "request": {"method": "POST", "url": "Patient"}}]}
    r = client.post("/", json=tx, headers=FHIR)
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["type"] == "transaction-response"
    assert reply["entry"][0]["response"]["location"].startswith(("Patient/", f"{facade.url}/fhir/Patient/"))
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?family=Txn"}}]}
    b = client.post("", json=batch, headers=FHIR)
    assert b.status_code == 200 and b.json()["type"] == "batch-response"
    not_bundle = client.post("", json=patient("Nb"), headers=FHIR)
    assert not_bundle.status_code == 400


def test_forwarded_headers_count_only_from_configured_proxies(aliased: UpstreamProcess,
                                                              redis_server: RedisServer) -> None:
    spoof = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Prefix": "/x"}
    with ServedApp(Settings(redis_url=redis_server.url, upstream_url=aliased.base)) as app:
        r = httpx.post(f"{app.url}/fhir/Patient", json=patient("Fwd"), headers={**FHIR, **spoof}, timeout=30)
        assert r.status_code == 201 and r.headers["location"].startswith(f"{app.url}/fhir/Patient/")
    with ServedApp(Settings(redis_url=redis_server.url, upstream_url=aliased.base,
                            trusted_proxies=("127.0.0.1",))) as app:
        r = httpx.post(f"{app.url}/fhir/Patient", json=patient("Fwd", 1),
                       headers={**FHIR, **spoof, "X-Forwarded-Proto": "https"}, timeout=30)
        assert r.status_code == 201
        assert r.headers["location"].startswith("https://evil.example/x/fhir/Patient/")
        assert "fhir.internal.example" not in r.text


def test_error_texts_never_name_the_upstream(redis_server: RedisServer, aliased: UpstreamProcess) -> None:
    with ServedApp(Settings(redis_url=redis_server.url, upstream_url=aliased.base, upstream_retries=0)) as app:
        aliased.control.behave(failCount=5, failStatus=503)
        try:
            r = httpx.get(f"{app.url}/fhir/Patient/x", timeout=30)
        finally:
            aliased.control.reset()
    assert r.status_code == 503 and r.headers["retry-after"]
    assert str(aliased.port) not in r.text and "/fhir/R4" not in r.text
    assert "[upstream]" in r.json()["issue"][0]["details"]["text"]

