"""The access log, read as a real `helixgate serve` writes it (JSON and text on stderr) and as the app logs it: one
line per request — 2xx, 4xx, 413 included — with method, route template, status, duration, bytes and client, and
never the query string, the body or anything of the patient in them. The 404s say what the path needs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.settings import Settings
from tests.conftest import ROOT, ServedApp, free_port
from tests.gateway.principals import KeyedApp

PATIENT = "Zhang^Wei^1961"  # what must never reach a log line
V2 = {"Content-Type": "x-application/hl7-v2+er7"}
MESSAGE = (ROOT / "tests" / "mappers" / "hl7v2" / "messages" / "01-egfr-snv-somatic.hl7").read_bytes()


def _traffic(url: str) -> dict[str, int]:
    """Requests whose query strings and bodies carry the patient; their statuses by name."""
    statuses = {}
    body = MESSAGE.replace(b"HELIX-NGS", PATIENT.encode())
    r = httpx.post(f"{url}/fhir/$convert", params={"name": PATIENT}, content=body, headers=V2, timeout=60)
    statuses["convert"] = r.status_code
    r = httpx.post(f"{url}/fhir/$convert", params={"name": PATIENT}, content=PATIENT.encode() * 100_000,
                   headers=V2, timeout=30)
    statuses["too-large"] = r.status_code
    r = httpx.get(f"{url}/fhir/Patient/{PATIENT}", params={"family": PATIENT}, timeout=10)
    statuses["unknown"] = r.status_code
    r = httpx.get(f"{url}/fhir/ConceptMap/$translate", params={"code": PATIENT, "system": "x"}, timeout=10)
    statuses["translate"] = r.status_code
    return statuses


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "HELIXGATE_HTTP_PROCESSES": "0",
                                 "HELIXGATE_MAX_REQUEST_BYTES": "1000000", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.communicate()[1][-2000:]}")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        return proc.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


def test_json_access_log_of_a_real_server() -> None:
    proc, url = _serve({"HELIXGATE_LOG_FORMAT": "json", "HELIXGATE_LOG_LEVEL": "info"})
    try:
        statuses = _traffic(url)
    finally:
        stderr = _stop(proc)
    assert statuses["convert"] == 200 and statuses["too-large"] == 413 and statuses["unknown"] == 404
    lines = [orjson.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len(stderr.splitlines()), stderr[-3000:]  # every line is JSON
    access = [doc for doc in lines if doc["logger"] == "helixgate.access"]
    seen = {(d["method"], d["route"], d["status"]) for d in access}
    assert ("POST", "/fhir/$convert", 200) in seen
    assert ("POST", "/fhir/$convert", 413) in seen
    assert ("GET", "unmatched", 404) in seen
    assert ("GET", "/fhir/ConceptMap/$translate", statuses["translate"]) in seen
    for d in access:
        assert d["client"] == "anonymous" and d["duration_ms"] >= 0 and d["bytes"] > 0
        assert set(d) >= {"time", "level", "method", "route", "status", "duration_ms", "bytes", "client"}
    assert "Zhang" not in stderr and "1961" not in stderr  # no query string, body or path id in any line


def test_text_access_log_and_level(tmp_path: Path) -> None:
    proc, url = _serve({"HELIXGATE_LOG_FORMAT": "text", "HELIXGATE_LOG_LEVEL": "warning"})
    try:
        httpx.get(f"{url}/healthz", timeout=5)
    finally:
        quiet = _stop(proc)
    assert "helixgate.access" not in quiet  # warning level: no access lines
    proc, url = _serve({"HELIXGATE_LOG_FORMAT": "text"})
    try:
        httpx.get(f"{url}/healthz", params={"q": PATIENT}, timeout=5)
    finally:
        text = _stop(proc)
    line = next(x for x in text.splitlines() if "helixgate.access" in x)
    assert " INFO helixgate.access: GET /healthz 200 " in line and line.endswith("client=anonymous")
    assert "Zhang" not in text


def test_bad_log_settings_are_named() -> None:
    done = subprocess.run([sys.executable, "-m", "gateway.cli.main", "serve", "--port", "0"], cwd=ROOT,
                          env={**os.environ, "HELIXGATE_LOG_FORMAT": "xml"}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "HELIXGATE_LOG_FORMAT" in done.stdout + done.stderr


def test_denials_are_logged_with_the_client(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="helixgate.access"), \
            KeyedApp(Settings(http_processes=0), tmp_path, {"lab": ["system/$translate"]}) as app:
        httpx.post(f"{app.url}/fhir/$convert", content=b"x", headers=V2, timeout=10)
        httpx.post(f"{app.url}/fhir/$convert", content=b"x", headers={**V2, **app.auth("lab")}, timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "helixgate.access"]
    assert any(x.startswith("POST /fhir/$convert 401 ") and x.endswith("client=-") for x in lines), lines
    assert any(x.startswith("POST /fhir/$convert 403 ") and x.endswith("client=lab") for x in lines), lines


@pytest.mark.parametrize(("path", "says"), [
    ("/", "/fhir/$convert"),
    ("/fhir", "HELIXGATE_UPSTREAM_URL"),
    ("/fhir/", "HELIXGATE_UPSTREAM_URL"),
    ("/fhir/Patient", "set HELIXGATE_UPSTREAM_URL to proxy FHIR reads"),
    ("/fhir/Observation/123/_history/2", "set HELIXGATE_UPSTREAM_URL to proxy FHIR reads"),
    ("/nothing-here", "/openapi.json"),
])
def test_404s_say_what_the_path_needs(embedded_gateway: ServedApp, path: str, says: str) -> None:
    r = httpx.get(embedded_gateway.url + path, timeout=10)
    assert r.status_code == 404
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert says in outcome["issue"][0]["details"]["text"]


def test_a_routes_own_404_keeps_its_message(embedded_gateway: ServedApp) -> None:
    r = httpx.get(f"{embedded_gateway.url}/fhir/bulk/no-such-job", timeout=10)
    assert r.status_code == 404
    assert "HELIXGATE_UPSTREAM_URL" not in r.text and "/openapi.json" not in r.text


def test_a_client_id_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """A token's client id is the issuer's text: control characters are replaced before it reaches the line."""
    import asyncio

    from gateway.accesslog import AccessLogMiddleware
    from gateway.auth.principal import SCOPE_KEY, Principal

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def noop(*args: object) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": [],
             SCOPE_KEY: Principal(client="lab\nGET /fhir/$convert 200 1.0ms 0B client=admin", via="jwt")}
    with caplog.at_level(logging.INFO, logger="helixgate.access"):
        asyncio.run(AccessLogMiddleware(app, routes=[])(scope, noop, noop))
    [line] = [r.getMessage() for r in caplog.records if r.name == "helixgate.access"]
    assert "\n" not in line and line.startswith("GET unmatched 204 ") and "client=lab?GET" in line


async def _answer(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _request(principal: object) -> None:
    import asyncio

    from gateway.accesslog import AccessLogMiddleware
    from gateway.auth.principal import SCOPE_KEY

    async def noop(*args: object) -> None:
        return None

    async def main() -> None:  # in an event loop, as served (the gateway's handler writes its lines in turns)
        await AccessLogMiddleware(_answer, routes=[])(
            {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": [], SCOPE_KEY: principal},
            noop, noop)

    asyncio.run(main())


@pytest.fixture()
def access_logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("helixgate.access")
    saved = (list(log.handlers), log.propagate, log.level)
    yield log
    log.handlers[:], log.propagate = saved[0], saved[1]
    log.setLevel(saved[2])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_gateways_handler_writes_the_line_a_record_would(fmt: str, access_logger: logging.Logger) -> None:
    """Alone, the gateway's handler is handed the line directly; beside another handler (an operator's), the line
    is a record both get. The two lines are the same but for the time and duration."""
    import io

    from gateway.auth.principal import Principal
    from gateway.logconfig import GatewayHandler, sole_handler

    ours, theirs = io.StringIO(), io.StringIO()
    handler = GatewayHandler(ours, fmt)
    access_logger.handlers[:] = [handler]
    access_logger.propagate = False
    access_logger.setLevel(logging.INFO)
    assert sole_handler(access_logger) is handler
    _request(Principal(client="lab", via="api-key"))
    assert ours.getvalue() == ""  # handed over, waiting for its turn to be written
    handler.flush()
    direct = ours.getvalue()
    other = logging.StreamHandler(theirs)
    access_logger.addHandler(other)
    assert sole_handler(access_logger) is None
    _request(Principal(client="lab", via="api-key"))
    through_logging = ours.getvalue()[len(direct):]
    assert theirs.getvalue().startswith("GET unmatched 204 ")  # the operator's handler got the record
    assert theirs.getvalue().endswith("ms 0B client=lab\n")
    assert direct.endswith("\n") and direct.count("\n") == 1 and through_logging.count("\n") == 1
    if fmt == "json":
        a, b = orjson.loads(direct), orjson.loads(through_logging)
        assert list(a) == list(b) == ["time", "level", "logger", "message", "method", "route", "status",
                                      "duration_ms", "bytes", "client"]
        for doc in (a, b):
            assert (doc["level"], doc["logger"], doc["method"], doc["route"], doc["status"], doc["bytes"],
                    doc["client"]) == ("info", "helixgate.access", "GET", "unmatched", 204, 0, "lab")
            assert doc["time"].endswith("+00:00") and len(doc["time"]) == 29 and doc["duration_ms"] >= 0
            assert doc["message"].startswith("GET unmatched 204 ") and doc["message"].endswith("ms 0B client=lab")
    else:
        import re

        shape = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO helixgate\.access: "
                           r"GET unmatched 204 \d+\.\dms 0B client=lab\n")
        assert shape.fullmatch(direct) and shape.fullmatch(through_logging), (direct, through_logging)


def test_waiting_lines_are_written_before_a_later_record(access_logger: logging.Logger) -> None:
    import io

    from gateway.logconfig import GatewayHandler

    out = io.StringIO()
    access_logger.handlers[:] = [GatewayHandler(out, "text")]
    access_logger.propagate = False
    access_logger.setLevel(logging.INFO)
    _request(None)
    _request(None)
    access_logger.warning("after the requests")
    lines = out.getvalue().splitlines()
    assert [line.split(": ", 1)[1].split(" ", 3)[:3] for line in lines[:2]] == [["GET", "unmatched", "204"]] * 2
    assert lines[2].endswith("WARNING helixgate.access: after the requests") and len(lines) == 3
