"""Opaque bearer tokens through RFC 7662 introspection at the real authorization server (oidc-provider)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.auth.introspection import ClientCredentials
from gateway.auth.oauth import AuthServerUnavailable, BearerVerifier, OAuthConfig, verifier_from_env
from gateway.auth.principal import AuthError
from tests.auth.oidc import INTROSPECTOR_SECRET, ClientKey, OidcClient, OidcServer
from tests.conftest import free_port

GATEWAY = "http://127.0.0.1:8080"


def introspecting(server: OidcServer, cache_s: int = 60, secret: str = INTROSPECTOR_SECRET,
                  url: str | None = None) -> BearerVerifier:
    return BearerVerifier(OAuthConfig(issuer=server.issuer, audience=(GATEWAY,), introspection_url=url,
                                      introspection=ClientCredentials("introspector", secret=secret),
                                      introspection_cache_s=cache_s))


def test_an_active_opaque_token_gives_its_principal(oidc_server: OidcServer) -> None:
    token = oidc_server.token("opaque", "system/Observation.rs system/Patient.rs", resource=GATEWAY)
    assert "." not in token
    principal = asyncio.run(introspecting(oidc_server).verify(token))
    assert principal.client == "opaque"
    assert principal.via == "introspection"
    assert principal.scopes == ("system/Observation.rs", "system/Patient.rs")
    assert "active" not in principal.claims
    assert principal.claims["aud"] == GATEWAY


def test_an_unknown_opaque_token_is_inactive(oidc_server: OidcServer) -> None:
    with pytest.raises(AuthError, match="not active") as caught:
        asyncio.run(introspecting(oidc_server).verify("Zm9yZ2VkLW9wYXF1ZS10b2tlbi12YWx1ZQ"))
    assert "Zm9yZ2Vk" not in str(caught.value)


def test_an_opaque_token_for_another_resource_is_refused(oidc_server: OidcServer) -> None:
    token = oidc_server.token("opaque", "system/*.rs", resource="http://127.0.0.1:9/other")
    with pytest.raises(AuthError, match="audience is not this gateway"):
        asyncio.run(introspecting(oidc_server).verify(token))


def test_answers_are_cached_by_token(oidc_server: OidcServer) -> None:
    verifier = introspecting(oidc_server)
    first = oidc_server.token("opaque", "system/*.rs", resource=GATEWAY)
    second = oidc_server.token("opaque", "system/*.rs", resource=GATEWAY)
    before = oidc_server.stats().get("/token/introspection", 0)

    async def scenario() -> None:
        for _ in range(5):
            await verifier.verify(first)
        await verifier.verify(second)
        for _ in range(3):
            with pytest.raises(AuthError):
                await verifier.verify("bm90LWEtdG9rZW4")  # the inactive answer is cached too

    asyncio.run(scenario())
    assert verifier.introspector is not None and verifier.introspector.requests == 3
    assert oidc_server.stats()["/token/introspection"] - before == 3


def test_a_revoked_token_is_refused_once_its_answer_is_no_longer_cached(oidc_server: OidcServer) -> None:
    token = oidc_server.token("opaque", "system/*.rs", resource=GATEWAY)
    cached, uncached = introspecting(oidc_server, cache_s=60), introspecting(oidc_server, cache_s=0)

    async def scenario() -> None:
        await cached.verify(token)
        await uncached.verify(token)
        oidc_server.revoke(token, "opaque")
        assert (await cached.verify(token)).client == "opaque"  # within the cache cap: the known trade-off
        with pytest.raises(AuthError, match="not active"):
            await uncached.verify(token)

    asyncio.run(scenario())


def test_launch_context_claims_come_through_introspection(oidc_server: OidcServer) -> None:
    client_id = oidc_server.register(OidcClient("x", ClientKey.generate("RS384"), token_format="opaque",
                                                claims={"patient": "pat-9", "fhirUser": "Patient/pat-9"}))
    principal = asyncio.run(introspecting(oidc_server).verify(oidc_server.token(client_id, "patient/*.rs",
                                                                                 resource=GATEWAY)))
    assert (principal.client, principal.patient, principal.fhir_user) == (client_id, "pat-9", "Patient/pat-9")


def test_the_gateway_can_authenticate_with_private_key_jwt(oidc_server: OidcServer, tmp_path: Path) -> None:
    key = ClientKey.generate("ES384")
    client_id = oidc_server.register(OidcClient("rs", key))
    pem = tmp_path / "introspection.pem"
    pem.write_bytes(key.private_pem())
    verifier = verifier_from_env({
        "HELIXGATE_OAUTH_ISSUER": oidc_server.issuer, "HELIXGATE_OAUTH_AUDIENCE": GATEWAY,
        "HELIXGATE_OAUTH_INTROSPECTION_CLIENT_ID": client_id, "HELIXGATE_OAUTH_INTROSPECTION_KEY_FILE": str(pem),
        "HELIXGATE_OAUTH_INTROSPECTION_KEY_ALG": "ES384", "HELIXGATE_OAUTH_INTROSPECTION_KEY_ID": key.kid,
        "HELIXGATE_OAUTH_INTROSPECTION_URL": oidc_server.introspection_url})
    assert verifier is not None
    token = oidc_server.token("opaque", "system/*.rs", resource=GATEWAY)
    assert asyncio.run(verifier.verify(token)).client == "opaque"


def test_refused_gateway_credentials_are_a_503_not_an_inactive_token(oidc_server: OidcServer) -> None:
    token = oidc_server.token("opaque", "system/*.rs", resource=GATEWAY)
    with pytest.raises(AuthServerUnavailable) as caught:
        asyncio.run(introspecting(oidc_server, secret="wrong").verify(token))
    assert caught.value.status == 503


def test_an_unreachable_introspection_endpoint_is_a_503(oidc_server: OidcServer) -> None:
    verifier = introspecting(oidc_server, url=f"http://127.0.0.1:{free_port()}/introspect")
    with pytest.raises(AuthServerUnavailable):
        asyncio.run(verifier.verify(oidc_server.token("opaque", "system/*.rs", resource=GATEWAY)))


def test_without_introspection_an_opaque_token_is_refused(oidc_server: OidcServer) -> None:
    verifier = BearerVerifier(OAuthConfig(issuer=oidc_server.issuer, audience=(GATEWAY,)))
    with pytest.raises(AuthError, match="no introspection endpoint"):
        asyncio.run(verifier.verify(oidc_server.token("opaque", "system/*.rs", resource=GATEWAY)))


def test_jwt_and_opaque_tokens_side_by_side(oidc_server: OidcServer) -> None:
    verifier = introspecting(oidc_server)

    async def scenario() -> tuple[str, str]:
        a = await verifier.verify(oidc_server.token("system", "system/*.rs", resource=GATEWAY))
        b = await verifier.verify(oidc_server.token("opaque", "system/*.rs", resource=GATEWAY))
        return a.via, b.via

    assert asyncio.run(scenario()) == ("jwt", "introspection")
