"""Real FHIR clients drive every interaction of the facade's route table, as an integrator would: fhir-kit-client
(npm, tests/upstream/kit_client.mjs) and fhirclient (PyPI, SMART on FHIR's Python client), through the gateway in
front of the test upstream in its "named by another public URL" mode. Every response body is parsed with
fhir.resources, paging is followed to the last page, and no body or header names the upstream."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fhir.resources.R4B import get_fhir_model_class
from fhirclient import client as fhirclient
from fhirclient.models.bundle import Bundle
from fhirclient.models.patient import Patient

from gateway.facade import TABLE
from gateway.settings import Settings
from tests.conftest import RedisServer, ServedApp
from tests.upstream.fixtures import HERE, UpstreamProcess

ALIAS = "https://fhir-upstream.internal.example/fhir/R4"
FHIR_JSON = "application/fhir+json"


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


def _leaks(aliased: UpstreamProcess, text: str) -> list[str]:
    low = text.lower()
    return [o for o in ("fhir-upstream.internal.example", f"127.0.0.1:{aliased.port}") if o in low]


def _parses(doc: Any) -> None:
    """fhir.resources (R4B models: R4's resources as far as these interactions go) accepts the body."""
    if isinstance(doc, dict) and doc.get("resourceType"):
        get_fhir_model_class(doc["resourceType"]).model_validate(doc)


def _interactions(cap: dict[str, Any]) -> set[str]:
    rest = cap["rest"][0]
    codes = {i["code"] for i in rest.get("interaction", [])}
    for res in rest["resource"]:
        codes |= {i["code"] for i in res.get("interaction", [])}
    return codes


def test_fhir_kit_client_drives_every_interaction(facade: ServedApp, aliased: UpstreamProcess) -> None:
    aliased.control.reset()
    done = subprocess.run(["node", str(HERE / "kit_client.mjs"), f"{facade.url}/fhir"], cwd=HERE,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = {s["name"]: s for s in json.loads(done.stdout)}
    for s in steps.values():
        assert not _leaks(aliased, json.dumps(s["body"]) + json.dumps(s["headers"])), s["name"]
        _parses(s["body"])
    failed = {n: (s["status"], s.get("error")) for n, s in steps.items()
              if n != "read-deleted" and not (s["status"] and 200 <= s["status"] < 300)}
    assert not failed, failed
    assert steps["create"]["status"] == 201 and steps["create"]["headers"]["location"].startswith(facade.url)
    assert steps["conditional-create"]["status"] == 200  # it exists: nothing written
    assert steps["conditional-update"]["status"] == 201
    assert steps["patch"]["body"]["gender"] == "male"
    assert steps["read-deleted"]["status"] == 410
    pages = [s for n, s in steps.items() if n.startswith("search-page-")]
    ids = {e["resource"]["id"] for p in pages for e in p["body"].get("entry", []) if e["search"]["mode"] == "match"}
    assert len(pages) == 3 and len(ids) == 7  # followed to the last page, through the gateway
    assert steps["search-post"]["body"]["total"] == steps["search-system"]["body"]["total"] == 7
    assert steps["validate-type"]["body"]["resourceType"] == "OperationOutcome"
    covered = {"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
               "search-type", "transaction", "batch", "search-system", "history-system"}
    assert _interactions(steps["capabilities"]["body"]) == covered  # every one announced was driven above
    assert covered == {i.code for i in TABLE if not i.code.startswith("$")}


@pytest.fixture()
def smart(facade: ServedApp, aliased: UpstreamProcess) -> Iterator[tuple[Any, list[str]]]:
    aliased.control.reset()
    leaks: list[str] = []

    def scan(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        found = _leaks(aliased, response.text + json.dumps(dict(response.headers)))
        leaks.extend(f"{response.request.method} {response.url}: {f}" for f in found)
        if response.content and "json" in response.headers.get("content-type", ""):
            _parses(response.json())

    app = fhirclient.FHIRClient(settings={"app_id": "helixgate-test", "api_base": f"{facade.url}/fhir"})
    app.server.session.hooks["response"].append(scan)
    yield app.server, leaks
    assert not leaks, leaks


def test_fhirclient_drives_every_interaction(smart: tuple[Any, list[str]], facade: ServedApp) -> None:
    server, _ = smart
    server.get_capability()
    cap = server.capabilityStatement.as_json()
    assert "patch" in _interactions(cap)
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:test:fc", "value": "fc-0"}],
            "name": [{"family": "Fclient"}], "gender": "female"}
    created = Patient(body).create(server)
    pid = created["id"]
    read = Patient.read(pid, server)
    vid = read.meta.versionId
    assert Patient.read_from(f"Patient/{pid}/_history/{vid}", server).id == pid
    read.gender = "other"
    updated = read.update(server)
    assert updated["gender"] == "other"
    session, base = server.session, f"{facade.url}/fhir"
    patched = session.patch(f"{base}/Patient/{pid}", data=b'[{"op":"add","path":"/birthDate","value":"1980-02-02"}]',
                            headers={"Content-Type": "application/json-patch+json", "Accept": FHIR_JSON})
    assert patched.status_code == 200 and patched.json()["birthDate"] == "1980-02-02"
    history = Bundle(server.request_json(f"Patient/{pid}/_history"))
    assert len(history.entry) == 3
    cond = session.post(f"{base}/Patient", json=body, headers={"If-None-Exist": "identifier=urn:test:fc|fc-0",
                                                                "Content-Type": FHIR_JSON})
    assert cond.status_code == 200 and cond.json()["id"] == pid
    upd = session.put(f"{base}/Patient?identifier=urn:test:fc|fc-9", json={**body, "identifier": [
        {"system": "urn:test:fc", "value": "fc-9"}]}, headers={"Content-Type": FHIR_JSON})
    assert upd.status_code == 201
    for n in range(1, 8):
        Patient({**body, "name": [{"family": "Fcpager"}], "identifier": [{"system": "urn:test:fc",
                                                                          "value": f"p-{n}"}]}).create(server)
    search = Patient.where(struct={"family": "Fcpager", "_count": "3"})
    bundles = list(search.perform_iter(server))  # follows the next links the gateway gives
    assert len(bundles) == 3
    assert len({e.resource.id for b in bundles for e in b.entry or []}) == 7
    posted = server.post_as_form(f"{base}/Patient/_search", {"family": "Fcpager"})
    assert posted.status_code == 200 and posted.json()["total"] == 7
    assert Bundle(server.request_json("?_type=Patient&family=Fcpager")).total == 7
    assert Bundle(server.request_json("Patient/_history")).type == "history"
    assert Bundle(server.request_json("_history")).type == "history"
    tx = server.post_json("", {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:2f0c8d1a-5a8e-4c55-8b1e-5f3b7b6a9c02", "resource": {**body, "identifier": [
            {"system": "urn:test:fc", "value": "tx"}]}, "request": {"method": "POST", "url": "Patient"}}]})
    assert tx.json()["type"] == "transaction-response"
    batch = server.post_json("", {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{pid}"}}]})
    assert batch.json()["type"] == "batch-response"
    outcome = server.post_json("Patient/$validate", body).json()
    assert outcome["resourceType"] == "OperationOutcome"
    instance = server.post_json(f"Patient/{pid}/$validate", {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {**body, "id": pid}}]}).json()
    assert not [i for i in instance["issue"] if i["severity"] in ("error", "fatal")]
    Patient.read(pid, server).delete(server)
    with pytest.raises(requests.HTTPError) as gone:
        Patient.read(pid, server)
    assert gone.value.response.status_code == 410
    assert server.delete_json("Patient?identifier=urn:test:fc|fc-9").status_code in (200, 204)
