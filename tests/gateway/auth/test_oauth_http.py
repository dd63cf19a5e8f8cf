"""OAuth bearer tokens end to end: the real authorization server (oidc-provider) issues them, the gateway under
uvicorn on loopback (HELIXGATE_OAUTH_* settings) takes them on `$convert`, with the auth middleware's 401/403."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import jwt
import pytest

from gateway.settings import Settings
from tests.auth.oidc import DEFAULT_AUDIENCE, INTROSPECTOR_SECRET, OidcServer
from tests.conftest import ROOT, ServedApp, free_port

V2 = {"Content-Type": "x-application/hl7-v2+er7"}
MESSAGE = (ROOT / "tests" / "mappers" / "hl7v2" / "messages" / "01-egfr-snv-somatic.hl7").read_bytes()


def served(env: dict[str, str]) -> ServedApp:
    """The app is built (and reads its auth settings) while `env` is set; the server runs after."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("HELIXGATE_API_KEYS_FILE", "HELIXGATE_MTLS_CLIENTS"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        return ServedApp(Settings())


@pytest.fixture(scope="module")
def oauth_gateway(oidc_server: OidcServer) -> Iterator[ServedApp]:
    env = {"HELIXGATE_OAUTH_ISSUER": oidc_server.issuer, "HELIXGATE_OAUTH_AUDIENCE": DEFAULT_AUDIENCE,
           "HELIXGATE_OAUTH_INTROSPECTION_CLIENT_ID": "introspector",
           "HELIXGATE_OAUTH_INTROSPECTION_CLIENT_SECRET": INTROSPECTOR_SECRET}
    with served(env) as app:
        yield app


def convert(app: ServedApp, token: str | None = None) -> httpx.Response:
    headers = dict(V2)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{app.url}/fhir/$convert", content=MESSAGE, headers=headers, timeout=30)


def outcome_text(r: httpx.Response) -> str:
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome"
    return " ".join(i.get("details", {}).get("text", "") for i in doc["issue"])


def test_no_token_is_a_401_with_a_bearer_challenge(oauth_gateway: ServedApp) -> None:
    r = convert(oauth_gateway)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="helixgate"')
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code when no credential was sent
    outcome_text(r)


def test_a_good_token_converts(oidc_server: OidcServer, oauth_gateway: ServedApp) -> None:
    r = convert(oauth_gateway, oidc_server.token("system", "system/$convert"))
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "Bundle"
    again = convert(oauth_gateway, oidc_server.token("es384", "system/$convert"))  # cached answer, other client
    assert again.status_code == 200
    assert again.headers.get("x-cache") == "hit"


def test_an_opaque_token_converts_through_introspection(oidc_server: OidcServer, oauth_gateway: ServedApp) -> None:
    r = convert(oauth_gateway, oidc_server.token("opaque", "system/$convert"))
    assert r.status_code == 200, r.text


def test_a_bad_signature_is_a_401_invalid_token(oidc_server: OidcServer, oauth_gateway: ServedApp) -> None:
    header, payload, signature = oidc_server.token("system", "system/$convert").split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x80
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"
    r = convert(oauth_gateway, forged)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "signature" in r.headers["www-authenticate"]
    assert payload not in r.text and payload not in r.headers["www-authenticate"]


def test_a_token_for_another_resource_is_a_401(oidc_server: OidcServer, oauth_gateway: ServedApp) -> None:
    r = convert(oauth_gateway, oidc_server.token("system", "system/$convert", resource="http://127.0.0.1:9/x"))
    assert r.status_code == 401
    assert "audience" in outcome_text(r)


def test_the_gateway_checks_the_scopes_itself(oidc_server: OidcServer, oauth_gateway: ServedApp) -> None:
    """A valid token without system/$convert is a 403 naming it — also when the AS silently dropped the scopes it
    does not know and issued a token with none at all."""
    r = convert(oauth_gateway, oidc_server.token("system", "system/Observation.rs"))
    assert r.status_code == 403
    assert "system/$convert" in outcome_text(r)
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]

    issued = oidc_server.token_response("system", "system/$convertAll system/Observation.zz")
    assert issued.status_code == 200 and "scope" not in issued.json()
    token = issued.json()["access_token"]
    assert "scope" not in jwt.decode(token, options={"verify_signature": False})
    r = convert(oauth_gateway, token)
    assert r.status_code == 403
    assert "system/$convert" in outcome_text(r)


def test_smart_configuration_names_the_discovered_token_endpoint(oidc_server: OidcServer,
                                                                  oauth_gateway: ServedApp) -> None:
    r = httpx.get(f"{oauth_gateway.url}/fhir/.well-known/smart-configuration", timeout=10)
    assert r.status_code == 200
    assert r.json()["token_endpoint"] == oidc_server.token_url


def test_an_unreachable_authorization_server_is_a_503(oidc_server: OidcServer) -> None:
    """Keys that cannot be fetched: the token is not checked, and not accepted (fail closed)."""
    env = {"HELIXGATE_OAUTH_ISSUER": f"http://127.0.0.1:{free_port()}", "HELIXGATE_OAUTH_AUDIENCE": DEFAULT_AUDIENCE}
    with served(env) as app:
        r = convert(app, oidc_server.token("system", "system/$convert"))
        assert r.status_code == 503
        assert "unavailable" in outcome_text(r)
        assert r.headers.get("retry-after")
