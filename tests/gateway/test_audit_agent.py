"""The AuditEvent names who called — the Principal's client (API key name and public id, a token's client id and
issuer), never the credential — and every denial (401, 403, 429) is an event with its outcome, on any path."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gateway.audit import AUDIT_STREAM, identity_of, read_events, rest_event
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.settings import Settings
from gateway.workers.streams import redis_client
from tests.auth.oidc import DEFAULT_AUDIENCE, OidcServer
from tests.conftest import RedisServer, start_redis
from tests.gateway.principals import KeyedApp
from tests.upstream.fixtures import wait_for

TRANSLATE = "/fhir/ConceptMap/$translate?url=urn:none&system=urn:none&code=x"


@pytest.fixture(scope="module")
def audit_redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


def events(url: str, n: int) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        client = redis_client(url)
        try:
            return await read_events(client)
        finally:
            await client.aclose()

    return wait_for(lambda: (e := asyncio.run(read())) and len(e) >= n and e, 10, what=f"{n} AuditEvents")


def requestor(event: dict[str, Any]) -> dict[str, Any]:
    (agent,) = [a for a in event["agent"] if a["requestor"]]
    return agent


def test_the_caller_and_every_denial_are_in_the_audit_stream(audit_redis: RedisServer, tmp_path: Path) -> None:
    raw_redis = redis.Redis.from_url(audit_redis.url)
    raw_redis.delete(AUDIT_STREAM)
    settings = Settings(redis_url=audit_redis.url, rate_limits='{"translate": "1/h burst 1"}')
    with KeyedApp(settings, tmp_path, {"lab-a": ["system/$translate"], "lab-b": ["system/$convert"]}) as app:
        forged = "hgk_aaaaaaaaaaaa_" + "B" * 43
        answers = [
            httpx.get(f"{app.url}{TRANSLATE}", headers=app.auth("lab-a"), timeout=30),  # allowed
            httpx.get(f"{app.url}{TRANSLATE}", headers=app.auth("lab-a"), timeout=30),  # 429: over the limit
            httpx.get(f"{app.url}{TRANSLATE}", headers=app.auth("lab-b"), timeout=30),  # 403: no $translate scope
            httpx.get(f"{app.url}{TRANSLATE}", timeout=30),  # 401: no credential
            httpx.get(f"{app.url}{TRANSLATE}", headers={"Authorization": f"ApiKey {forged}"}, timeout=30),  # 401
            httpx.get(f"{app.url}/not-a-route", timeout=30),  # 401 outside /fhir: audited as a denial too
            httpx.get(f"{app.url}/healthz", timeout=30),  # public, not FHIR: not audited
        ]
        assert [r.status_code for r in answers][1:] == [429, 403, 401, 401, 401, 200]
        key_ids = {name: key.split("_")[1] for name, key in app.keys.items()}
        got = events(audit_redis.url, 6)
    assert len(got) == 6
    allowed, throttled, forbidden, missing, wrong, unrouted = got
    a = requestor(allowed)
    assert a["who"]["identifier"] == {"system": "urn:helixgate:api-key", "value": "lab-a"}
    assert a["name"] == "lab-a" and a["altId"] == key_ids["lab-a"] and a["who"]["display"] == "lab-a (api-key)"
    assert allowed["outcome"] == ("0" if answers[0].status_code < 400 else "4")
    assert throttled["outcome"] == "4" and throttled["outcomeDesc"] == "denied: HTTP 429, rate limit reached"
    assert requestor(throttled)["who"]["identifier"]["value"] == "lab-a"
    assert forbidden["outcome"] == "4" and forbidden["outcomeDesc"].startswith("denied: HTTP 403")
    assert requestor(forbidden)["who"]["identifier"]["value"] == "lab-b"
    for denied in (missing, wrong, unrouted):
        assert denied["outcome"] == "4" and denied["outcomeDesc"] == "denied: HTTP 401, no valid credential"
        assert "who" not in requestor(denied) and requestor(denied)["network"]["address"] == "127.0.0.1"
    assert unrouted["entity"][0]["what"]["display"] == "GET /not-a-route"
    stream = b"".join(f[b"event"] for _, f in raw_redis.xrange(AUDIT_STREAM))
    for secret in (*app.keys.values(), forged):  # no key, whole or in part, is ever written
        # hgk_<key id>_<secret>: the secret may itself hold "_", so it is all after the second one
        assert secret.encode() not in stream and secret.split("_", 2)[2].encode() not in stream
    assert b"ApiKey" not in stream
    raw_redis.close()


def test_a_bearer_tokens_client_and_issuer_name_the_agent(audit_redis: RedisServer, oidc_server: OidcServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    raw_redis = redis.Redis.from_url(audit_redis.url)
    raw_redis.delete(AUDIT_STREAM)
    monkeypatch.setenv("HELIXGATE_OAUTH_ISSUER", oidc_server.issuer)
    monkeypatch.setenv("HELIXGATE_OAUTH_AUDIENCE", DEFAULT_AUDIENCE)
    token = oidc_server.token("system", "system/$translate", resource=DEFAULT_AUDIENCE)
    with KeyedApp(Settings(redis_url=audit_redis.url), oauth=True) as app:
        r = httpx.get(f"{app.url}{TRANSLATE}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code not in (401, 403), r.text
        (event,) = events(audit_redis.url, 1)
    agent = requestor(event)
    assert agent["who"]["identifier"] == {"system": oidc_server.issuer, "value": "system"}
    assert agent["who"]["display"] == "system (jwt)" and "altId" not in agent
    stream = b"".join(f[b"event"] for _, f in raw_redis.xrange(AUDIT_STREAM))
    assert token.encode() not in stream and token.split(".")[2].encode() not in stream
    raw_redis.close()


def test_identities_by_way_of_proof() -> None:
    assert identity_of(ANONYMOUS) is None
    assert identity_of(Principal("CN=lab-a,O=Lab", "mtls")) == ("CN=lab-a,O=Lab", "mtls",
                                                               "urn:helixgate:certificate-subject", None)
    assert identity_of(Principal("c1", "introspection", claims={"iss": "https://as.example"}))[2] == \
        "https://as.example"
    assert identity_of(Principal("c1", "jwt"))[2] == "urn:helixgate:oauth-client"
    open_event = rest_event("GET", "/fhir/metadata", 200, "10.0.0.1", 0.0)
    assert "who" not in requestor(open_event)  # auth off: the network address is all there is


def test_events_with_an_agent_are_valid_fhir(validator) -> None:
    who = identity_of(Principal("lab-a", "api-key", claims={"key_id": "abcdefghijkl"}))
    for status in (200, 401, 403, 429):
        event = rest_event("GET", "/fhir/Patient/1", status, "127.0.0.1", 0.0, identity=who)
        errors = [(i.expression, i.message) for i in validator.validate(event) if i.severity in ("error", "fatal")]
        assert errors == [], status
