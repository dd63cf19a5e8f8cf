"""Facade paths against FHIR's grammar, over real HTTP: dot segments and encoded separators are refused with 400
and an OperationOutcome before anything is forwarded, both to Medplum and to a recording upstream that shows
exactly what would have left the gateway."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from gateway.settings import Settings
from tests.conftest import RedisServer, ServedApp
from tests.upstream.fixtures import UpstreamControl

PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Pathtest"}], "gender": "female"}

HOSTILE = [
    ("GET", "/fhir/Patient/../../admin"),  # the reproducers
    ("GET", "/fhir/Patient/%2e%2e%2f%2e%2e%2fadmin"),
    ("PUT", "/fhir/Patient/.."),
    ("GET", "/fhir/Patient/..%2f..%2f..%2f_admin/stats"),
    ("GET", "/fhir/%2e%2e/%2e%2e/_admin/stats"),
    ("GET", "/fhir/Patient/../../../_admin/stats"),
    ("GET", "/fhir/Patient/1/_history/../../../../_admin/stats"),
    ("GET", "/fhir/Patient/."),
    ("GET", "/fhir/Patient//1"),
    ("GET", "/fhir/Patient/a%2fb"),
    ("GET", "/fhir/Patient/a%5cb"),
    ("GET", "/fhir/Patient/a%00b"),
    ("GET", "/fhir/Patient/a\\b"),
    ("GET", "/fhir/Pat-ient/1"),
    ("GET", "/fhir/Patient/" + "x" * 65),
    ("GET", "/fhir/Patient/1/2/3/4/5"),
    ("GET", "/fhir/Patient/$every$thing"),
    ("GET", "/fhir/Patient/1/$everything/.."),
    ("PUT", "/fhir/Patient/%2e%2e"),
    ("PUT", "/fhir/Patient/a%2fb"),
    ("PUT", "/fhir/Patient/p1/_history"),
    ("PUT", "/fhir/%2e%2e/p1"),
]


def _send(base: str, method: str, path: str) -> tuple[int, dict]:
    """The request with `path` exactly as written (http.client does not resolve dot segments, httpx would)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps(PATIENT).encode() if method != "GET" else None
    conn.request(method, path, body=body, headers={"Content-Type": "application/fhir+json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else {}


@pytest.fixture(scope="module")
def facade(medplum_upstream: str, redis_server: RedisServer) -> Iterator[ServedApp]:
    settings = Settings(redis_url=redis_server.url, upstream_url=medplum_upstream, upstream_retries=1)
    with ServedApp(settings) as app:
        yield app


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def _answer(self) -> None:
        self.seen.append((self.command, self.path))
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"resourceType": "Patient", "id": "p1"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[ServedApp, list[tuple[str, str]]]]:
    """The facade in front of an upstream that records every request line (writes validated by the real
    validator, so a valid Patient passes)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/fhir/R4"
    try:
        with ServedApp(Settings(upstream_url=base, upstream_retries=0)) as app:
            yield app, _Recorder.seen
    finally:
        server.shutdown()


@pytest.mark.parametrize(("method", "path"), HOSTILE)
def test_hostile_paths_get_400_and_nothing_is_forwarded(recorded, method: str, path: str) -> None:
    app, seen = recorded
    seen.clear()
    status, outcome = _send(app.url, method, path)
    assert status == 400, outcome
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "invalid"
    assert seen == []


@pytest.mark.parametrize(("method", "path", "forwarded"), [
    ("GET", "/fhir/Patient", "/fhir/R4/Patient"),
    ("GET", "/fhir/Patient/p1", "/fhir/R4/Patient/p1"),
    ("GET", "/fhir/Patient/p-1.a/", "/fhir/R4/Patient/p-1.a"),
    ("GET", "/fhir/Patient/_history", "/fhir/R4/Patient/_history"),
    ("GET", "/fhir/Patient/p1/_history/2", "/fhir/R4/Patient/p1/_history/2"),
    ("GET", "/fhir/Patient/p1/$everything?_count=5", "/fhir/R4/Patient/p1/$everything?_count=5"),
    ("GET", "/fhir/Patient/p1/Observation?code=x", "/fhir/R4/Patient/p1/Observation?code=x"),
    ("GET", "/fhir/Observation/$lastn", "/fhir/R4/Observation/$lastn"),
    ("PUT", "/fhir/Patient/p1", "/fhir/R4/Patient/p1"),
])
def test_paths_in_fhirs_grammar_are_forwarded_as_written(recorded, method: str, path: str, forwarded: str) -> None:
    app, seen = recorded
    seen.clear()
    status, _ = _send(app.url, method, path)
    assert status == 200
    assert seen[-1] == (method, forwarded)
    # before it, at most the upstream's CapabilityStatement (what it calls itself) and, for a PUT, a read of the
    # same resource (does the update create it?)
    assert set(seen[:-1]) <= {("GET", "/fhir/R4/metadata"), ("GET", forwarded)}


def test_traversal_out_of_the_medplum_base_is_refused(facade: ServedApp, upstream_control: UpstreamControl) -> None:
    """Before: `/fhir/Patient/../../../_admin/stats` came back 200 with the upstream's admin route, outside its
    FHIR base; `PUT /fhir/Patient/..` became a PUT to the base."""
    for method, path in (("GET", "/fhir/Patient/../../../_admin/stats"),
                         ("GET", "/fhir/Patient/%2e%2e%2f%2e%2e%2f%2e%2e%2f_admin/stats"), ("PUT", "/fhir/Patient/..")):
        status, outcome = _send(facade.url, method, path)
        assert status == 400 and outcome["resourceType"] == "OperationOutcome", (path, outcome)
        assert "requests" not in outcome
    assert upstream_control.stats()["requests"] == 0
    status, outcome = _send(facade.url, "GET", "/fhir/Patient/nosuch")  # the grammar's paths still get through
    assert status == 404 and upstream_control.stats()["byMethod"] == {"GET": 2}  # metadata (first use), the read


def _deep_extension_observation() -> bytes:
    ext = '{"url": "http://example.org/x", "extension": [' * 300
    ext += '{"url": "http://example.org/x", "valueString": "v"}' + "]}" * 300
    return ('{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "extension": [' + ext +
            "]}").encode()


OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}


@pytest.mark.parametrize("body", [
    json.dumps({**OBSERVATION, "code": {"coding": [{"system": {"system": "http://x", "code": "a"}, "code": "a"}]}}),
    json.dumps({**OBSERVATION, "meta": "x"}),
    json.dumps({**OBSERVATION, "category": [{"coding": "not a list"}]}),
    _deep_extension_observation().decode(),
], ids=["coding-object-for-string", "meta-not-object", "coding-string", "extension-300-deep"])
def test_hostile_writes_get_a_4xx_outcome_and_nothing_is_forwarded(recorded, body: str) -> None:
    """Issue 12: facade `POST /fhir/Observation` with the $validate reproducers' bodies answered 500."""
    app, seen = recorded
    seen.clear()
    host, port = app.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", "/fhir/Observation", body=body.encode(), headers={"Content-Type": "application/fhir+json"})
    resp = conn.getresponse()
    outcome = json.loads(resp.read())
    conn.close()
    assert 400 <= resp.status < 500, (resp.status, outcome)
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert [s for s in seen if s[0] != "GET"] == []
