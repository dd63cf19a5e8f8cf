"""GET /openapi.json: the committed docs/openapi.json is what the gateway serves, every route the app has is in it
(or is a FHIR-generic facade route), and a property-based run of schemathesis against the live server (Redis, sandbox
processes: as deployed) finds no 5xx and no response that the document does not describe."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest
import schemathesis  # the test extra (scripts/test installs it)
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks

from gateway.app import create_app
from gateway.openapi import generic, missing, operations, rendered, template
from gateway.settings import Settings
from tests.conftest import ROOT, ServedApp
from tests.gateway.principals import KeyedApp

COMMITTED = ROOT / "docs" / "openapi.json"
EXAMPLES_PER_OPERATION = 25  # bounded: ~15 operations, a few seconds each at most


def test_the_served_document_is_the_committed_one(embedded_gateway: ServedApp) -> None:
    served = httpx.get(f"{embedded_gateway.url}/openapi.json", timeout=10)
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
    assert served.content == rendered()
    assert COMMITTED.read_bytes() == served.content, "docs/openapi.json is stale: run python scripts/openapi.py"


def _served(upstream: str | None) -> set[tuple[str, str]]:
    app = create_app(Settings(upstream_url=upstream))
    return {(template(r.path), m) for r in app.routes for m in (r.methods or set()) - {"HEAD"}}


@pytest.mark.parametrize("upstream", [None, "http://127.0.0.1:9"])
def test_every_route_is_described(upstream: str | None) -> None:
    app = create_app(Settings(upstream_url=upstream))
    assert missing(app.routes) == [], ("describe these routes in gateway/openapi.py operations(), then "
                                       "run python scripts/openapi.py")
    served = _served(upstream)
    assert any(generic(path) for path, _ in served) == bool(upstream)  # the facade's routes: only with an upstream


def test_nothing_is_described_that_the_app_does_not_serve() -> None:
    described = {(op.path, op.method) for op in operations()}
    assert described <= _served(None) | _served("http://127.0.0.1:9")


def test_every_error_is_an_operation_outcome_and_every_body_has_media_types() -> None:
    doc = orjson.loads(rendered())
    assert doc["openapi"].startswith("3.1")
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/fhir+json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/OperationOutcome"}, (method, path, status)
            if "requestBody" in op:
                assert op["requestBody"]["content"], (method, path)
    convert = doc["paths"]["/fhir/$convert"]["post"]
    assert {"x-application/hl7-v2+er7", "text/vcf", "application/fhir+json"} <= set(convert["requestBody"]["content"])
    assert {"application/fhir+json", "text/vcf"} <= set(convert["responses"]["200"]["content"])


# Request bodies of these media types are text for schemathesis to send as generated (its built-in serializers
# know JSON, XML-free text and forms).
TEXT_TYPES = ("x-application/hl7-v2+er7", "application/hl7-v2", "application/hl7-v2+er7", "application/edi-hl7",
              "text/vcf", "text/x-vcf", "application/cda+xml", "application/hl7-cda+xml", "application/xml",
              "text/xml", "application/fhir+ndjson", "application/fhir+xml", "application/octet-stream")


def test_schemathesis_against_the_live_server(own_redis, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    for media in TEXT_TYPES:
        schemathesis.serializer.alias(media, "text/plain")
    for media in (m for m in orjson.loads(rendered())["paths"]["/fhir/$convert"]["post"]["requestBody"]["content"]
                  if m.endswith("json") and m not in ("application/json", "application/fhir+json")):
        schemathesis.serializer.alias(media, "application/json")
    # 0 responses 5xx, every status, media type, body and header as documented, 405 (with Allow) for other methods.
    # Not the data-acceptance checks: a random string of a documented media type is no HL7 message (400 is right).
    run_checks = [not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
                  checks.response_schema_conformance, checks.response_headers_conformance, checks.unsupported_method]
    failures: list[str] = []
    calls = 0
    statuses: list[int] = []

    def fuzz(op, base: str, examples: int = EXAMPLES_PER_OPERATION):  # type: ignore[no-untyped-def]
        @given(op.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def call(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            try:
                statuses.append(case.call_and_validate(base_url=base, checks=run_checks, timeout=60).status_code)
            except BaseException as e:  # collected: every operation is run, then all failures are shown
                failures.append(f"{op.method.upper()} {op.path}: {str(e)[:1500]}")

        return call

    # every feature configured, as a deployment has them: Redis (bulk jobs), the example exchange routes
    monkeypatch.setenv("HELIXGATE_EXCHANGE_ROUTES", str(ROOT / "examples" / "exchange" / "routes.json"))
    with ServedApp(Settings(redis_url=own_redis.url, max_request_bytes=256 * 1024)) as app:
        schema = schemathesis.openapi.from_url(f"{app.url}/openapi.json")
        started = time.monotonic()
        for result in schema.get_all_operations():
            fuzz(result.ok(), app.url)()
            assert time.monotonic() - started < 300, "the fuzz run is bounded to 5 minutes"
    assert calls >= 10 * len(operations())  # it did run
    assert {200, 400, 404} <= set(statuses) and 401 not in statuses  # answers and refusals, auth off
    seen = len(statuses)
    # access control on, no credential: the 401s (and their WWW-Authenticate) as documented too
    with KeyedApp(Settings(http_processes=0), tmp_path, {"lab": ["system/$convert"]}) as keyed:
        schema = schemathesis.openapi.from_url(f"{keyed.url}/openapi.json")
        for result in schema.get_all_operations():
            fuzz(result.ok(), keyed.url, 3)()
    assert 401 in statuses[seen:]
    assert not failures, "\n\n".join(dict.fromkeys(failures))
