"""Bulk $convert after the FHIR Bulk Data async pattern: kick-off (202 + Content-Location), polling (202 +
X-Progress, then 200 + Expires + manifest), NDJSON outputs served by the gateway, DELETE, jobs run by a real
worker process."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.settings import Settings
from tests.conftest import ServedApp, start_redis
from tests.redis_topologies import MODES, EngineRedis, engine_redis_for
from tests.upstream.engine import WorkerProcess, unique_message
from tests.upstream.fixtures import wait_for

V2 = {"Content-Type": "x-application/hl7-v2+er7"}


@pytest.fixture(scope="module", params=MODES)
def bulk_redis(request: pytest.FixtureRequest) -> Iterator[EngineRedis]:
    """One server, then a 3-master cluster: jobs, their stream and their state on either."""
    with engine_redis_for(request, request.param) as target:
        yield target


@pytest.fixture(scope="module")
def bulk_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bulk")


@pytest.fixture(scope="module")
def bulk_gateway(bulk_redis: EngineRedis, bulk_folder: Path) -> Iterator[ServedApp]:
    with ServedApp(Settings(redis_url=bulk_redis.url, bulk_dir=str(bulk_folder))) as app:
        yield app


@pytest.fixture(scope="module")
def bulk_worker(bulk_redis: EngineRedis, bulk_folder: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess({"HELIXGATE_REDIS_URL": bulk_redis.url, "HELIXGATE_BULK_DIR": str(bulk_folder),
                            "HELIXGATE_UPSTREAM_URL": ""}, "bulk")
    yield worker
    worker.stop()


def poll(url: str, timeout: float = 30) -> httpx.Response:
    seen_progress = []

    def done() -> httpx.Response | None:
        r = httpx.get(url, timeout=10)
        if r.status_code == 202:
            seen_progress.append(r.headers["x-progress"])
            assert r.headers["retry-after"]
            return None
        return r

    r = wait_for(done, timeout, interval=0.1, what="the bulk job")
    r.progress = seen_progress  # type: ignore[attr-defined]
    return r


def ndjson(url: str) -> list[dict]:
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+ndjson")
    return [orjson.loads(line) for line in r.content.splitlines() if line]


def test_a_batch_of_hl7v2_messages_becomes_ndjson_per_resource_type(bulk_gateway: ServedApp, bulk_worker) -> None:
    messages = [unique_message(n, "B") for n in range(5)]
    bad = unique_message(9, "B").replace(b"ORU^R01^ORU_R01", b"ADT^A01")
    batch = b"BHS|^~\\&|LAB\r" + b"".join([*messages[:3], bad, *messages[3:]]) + b"BTS|6\r"
    kick = httpx.post(f"{bulk_gateway.url}/fhir/$convert", content=batch, headers={**V2, "Prefer": "respond-async"},
                      timeout=10)
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["content-location"]
    assert status_url.startswith(f"{bulk_gateway.url}/fhir/bulk/")
    done = poll(status_url)
    assert done.status_code == 200, done.text
    assert done.headers["expires"].endswith("GMT")
    manifest = done.json()
    assert manifest["requiresAccessToken"] is False and manifest["request"].endswith("/fhir/$convert")
    outputs = {o["type"]: o for o in manifest["output"]}
    assert outputs["Patient"]["count"] == 5 and outputs["DiagnosticReport"]["count"] == 5
    assert outputs["Observation"]["count"] == 15 and outputs["Practitioner"]["count"] == 1  # each resource once
    patients = ndjson(outputs["Patient"]["url"])
    assert sorted(p["identifier"][0]["value"] for p in patients) == [f"PAT-B{n:05d}" for n in range(5)]
    reports = ndjson(outputs["DiagnosticReport"]["url"])
    assert all(r["subject"]["reference"].startswith("Patient/") for r in reports)  # relative, resolvable
    errors = manifest["error"]
    assert errors[0]["type"] == "OperationOutcome" and errors[0]["count"] == 1
    (problem,) = ndjson(errors[0]["url"])
    assert "message 4" in problem["issue"][0]["details"]["text"]
    assert problem["issue"][1]["expression"] == ["MSH-9"]


def test_an_ndjson_body_of_binary_documents_is_a_bulk_job_without_asking(bulk_gateway: ServedApp,
                                                                         bulk_worker) -> None:
    lines = [orjson.dumps({"resourceType": "Binary", "contentType": "x-application/hl7-v2+er7",
                           "data": base64.b64encode(unique_message(n, "N")).decode()}) for n in range(3)]
    lines.append(b'{"resourceType": "Patient"}')
    r = httpx.post(f"{bulk_gateway.url}/fhir/$convert", content=b"\n".join(lines),
                   headers={"Content-Type": "application/fhir+ndjson"}, timeout=10)
    assert r.status_code == 202
    manifest = poll(r.headers["content-location"]).json()
    assert {o["type"]: o["count"] for o in manifest["output"]}["Patient"] == 3
    assert manifest["error"][0]["count"] == 1


def test_a_parameters_invocation_can_be_asynchronous_too(bulk_gateway: ServedApp, bulk_worker) -> None:
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "input", "valueString": unique_message(1, "A").decode()}, {"name": "source", "valueCode": "hl7v2"}]}
    r = httpx.post(f"{bulk_gateway.url}/fhir/$convert", json=body,
                   headers={"Content-Type": "application/fhir+json", "Prefer": "respond-async"}, timeout=10)
    assert r.status_code == 202, r.text
    manifest = poll(r.headers["content-location"]).json()
    assert {o["type"]: o["count"] for o in manifest["output"]}["DiagnosticReport"] == 1 and manifest["error"] == []


def test_a_batch_without_prefer_converts_synchronously_and_an_async_job_can_be_cancelled(
        bulk_gateway: ServedApp, bulk_worker, bulk_folder: Path) -> None:
    body = unique_message(1, "C") + unique_message(2, "C")
    sync = httpx.post(f"{bulk_gateway.url}/fhir/$convert", content=body, headers=V2, timeout=30)
    assert sync.status_code == 200 and sync.headers["content-type"].startswith("application/fhir+ndjson")
    assert sync.headers["x-batch"] == "documents=2; converted=2; failed=0"
    bundles = [orjson.loads(line) for line in sync.content.splitlines()]
    assert [b["resourceType"] for b in bundles] == ["Bundle", "Bundle"] and bundles[0]["id"] != bundles[1]["id"]
    r = httpx.post(f"{bulk_gateway.url}/fhir/$convert", content=body, headers={**V2, "Prefer": "respond-async"},
                   timeout=10)
    assert r.status_code == 202
    url = r.headers["content-location"]
    job = url.rsplit("/", 1)[1]
    poll(url)
    assert (bulk_folder / job / "output" / "Patient.ndjson").is_file()
    assert httpx.delete(url, timeout=10).status_code == 202
    gone = httpx.get(url, timeout=10)
    assert gone.status_code == 404 and gone.json()["resourceType"] == "OperationOutcome"
    assert not (bulk_folder / job).exists()
    assert httpx.get(f"{url}/Patient.ndjson", timeout=10).status_code == 404


def test_a_job_polled_before_any_worker_runs_reports_its_progress(bulk_redis: EngineRedis, bulk_folder: Path) -> None:
    with ServedApp(Settings(redis_url=bulk_redis.url, bulk_dir=str(bulk_folder))) as app:
        r = httpx.post(f"{app.url}/fhir/$convert", content=unique_message(1, "Q"),
                       headers={**V2, "Prefer": "respond-async"}, timeout=10)
        first = httpx.get(r.headers["content-location"], timeout=10)
        assert first.status_code in (200, 202)  # the module's worker may already have taken it
        if first.status_code == 202:
            assert first.headers["x-progress"]
        assert httpx.get(f"{app.url}/fhir/bulk/{'0' * 32}", timeout=10).status_code == 404
        assert httpx.get(f"{app.url}/fhir/bulk/../etc", timeout=10).status_code == 404


def test_without_redis_an_async_request_is_refused_and_a_batch_converts_synchronously(embedded_gateway) -> None:
    r = httpx.post(f"{embedded_gateway.url}/fhir/$convert", content=unique_message(1),
                   headers={**V2, "Prefer": "respond-async"}, timeout=10)
    assert r.status_code == 501 and "HELIXGATE_REDIS_URL" in r.json()["issue"][0]["details"]["text"]
    bad = b"MSH|^~\\&|A|B|C|D|20250101||ADT^A01|X9|P|2.5.1\r"  # a message type that does not convert
    two = httpx.post(f"{embedded_gateway.url}/fhir/$convert", content=unique_message(1) + bad, headers=V2, timeout=30)
    assert two.status_code == 200 and two.headers["x-batch"] == "documents=2; converted=1; failed=1"
    first, second = (orjson.loads(line) for line in two.content.splitlines())
    assert first["resourceType"] == "Bundle"
    assert second["resourceType"] == "OperationOutcome"
    assert second["issue"][0]["details"]["text"].startswith("message 2: ")


def test_a_long_job_shows_progress(bulk_gateway: ServedApp, bulk_worker) -> None:
    body = b"".join(unique_message(n, "L") for n in range(150))
    r = httpx.post(f"{bulk_gateway.url}/fhir/$convert", content=body, headers={**V2, "Prefer": "respond-async"},
                   timeout=10)
    started = time.monotonic()
    done = poll(r.headers["content-location"], timeout=60)
    assert done.status_code == 200
    assert {o["type"]: o["count"] for o in done.json()["output"]}["Patient"] == 150
    if time.monotonic() - started > 1:  # a run this long was polled while running
        assert any("/150 documents" in p for p in done.progress)  # type: ignore[attr-defined]


def test_a_document_past_the_worker_budget_is_an_error_line_and_the_job_goes_on(tmp_path: Path) -> None:
    """Bulk documents run in the worker's sandbox processes under its per-message budget: a costly one (an ORU
    with 8,000 repeated OBX, seconds of work) is stopped and reported in the error file; the others convert."""
    redis_server = start_redis()
    folder = tmp_path / "bulk"
    worker = WorkerProcess({"HELIXGATE_REDIS_URL": redis_server.url, "HELIXGATE_BULK_DIR": str(folder),
                            "HELIXGATE_UPSTREAM_URL": "", "HELIXGATE_WORKER_MESSAGE_TIMEOUT_MS": "400"}, "bulk")
    try:
        with ServedApp(Settings(redis_url=redis_server.url, bulk_dir=str(folder))) as app:
            costly = unique_message(7, "T")
            obx = next(s for s in costly.split(b"\r") if s.startswith(b"OBX"))
            costly += b"\r".join([obx] * 8000) + b"\r"  # under the 10,000-segment limit; seconds of work
            docs = [unique_message(1, "T"), costly, unique_message(2, "T")]
            lines = [orjson.dumps({"resourceType": "Binary", "contentType": "x-application/hl7-v2+er7",
                                   "data": base64.b64encode(d).decode()}) for d in docs]
            r = httpx.post(f"{app.url}/fhir/$convert", content=b"\n".join(lines),
                           headers={"Content-Type": "application/fhir+ndjson"}, timeout=10)
            assert r.status_code == 202, r.text
            manifest = poll(r.headers["content-location"], timeout=180).json()
            assert {o["type"]: o["count"] for o in manifest["output"]}["DiagnosticReport"] == 2
            (problem,) = ndjson(manifest["error"][0]["url"])
            located, issue = problem["issue"][:2]
            assert "document 2" in located["details"]["text"] or "line 2" in located["details"]["text"], located
            assert issue["details"]["coding"][0]["code"] == "over-time-budget"
            assert "HELIXGATE_WORKER_MESSAGE_TIMEOUT_MS" in issue["details"]["text"]
    finally:
        worker.stop()
        redis_server.stop()
