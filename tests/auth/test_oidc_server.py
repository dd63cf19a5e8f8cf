"""The test authorization server itself (tests/auth/oidc.py): what the auth tests rely on it to do."""

from __future__ import annotations

import jwt

from tests.auth.oidc import ClientKey, OidcClient, OidcServer


def test_issues_an_rfc9068_jwt_for_the_requested_resource(oidc_server: OidcServer) -> None:
    token = oidc_server.token("system", "system/*.rs", resource="http://127.0.0.1:8080")
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    key = jwt.PyJWKClient(oidc_server.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="http://127.0.0.1:8080", issuer=oidc_server.issuer)
    assert claims["client_id"] == "system"
    assert claims["scope"] == "system/*.rs"
    assert claims["exp"] - claims["iat"] == 300


def test_drops_unknown_scopes_silently(oidc_server: OidcServer) -> None:
    r = oidc_server.token_response("system", "system/*.rs system/NotAThing.zz")
    assert r.status_code == 200
    assert r.json()["scope"] == "system/*.rs"


def test_refuses_a_replayed_client_assertion(oidc_server: OidcServer) -> None:
    assertion = oidc_server.assertion("system")
    assert oidc_server.token_response("system", "system/*.rs", assertion=assertion).status_code == 200
    replay = oidc_server.token_response("system", "system/*.rs", assertion=assertion)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


def test_refuses_an_assertion_signed_by_another_key(oidc_server: OidcServer) -> None:
    forged = ClientKey.generate("RS384")
    forged.kid = oidc_server.clients["system"].key.kid  # type: ignore[union-attr]
    assertion = forged.sign({"iss": "system", "sub": "system", "aud": oidc_server.token_url,
                             "exp": 4102444800, "jti": "forged"})
    assert oidc_server.token_response("system", "system/*.rs", assertion=assertion).status_code == 401


def test_opaque_tokens_introspect_active_then_inactive_once_revoked(oidc_server: OidcServer) -> None:
    token = oidc_server.token("opaque", "system/Observation.rs")
    assert token.count(".") == 0
    info = oidc_server.introspect(token)
    assert info["active"] is True
    assert info["client_id"] == "opaque"
    assert info["scope"] == "system/Observation.rs"
    oidc_server.revoke(token, "opaque")
    assert oidc_server.introspect(token) == {"active": False}


def test_registered_client_gets_tokens_with_its_claims(oidc_server: OidcServer) -> None:
    client = OidcClient("ignored", ClientKey.generate("ES384"), claims={"patient": "p-7"})
    client_id = oidc_server.register(client)
    claims = jwt.decode(oidc_server.token(client_id, "patient/*.rs"), options={"verify_signature": False})
    assert claims["client_id"] == client_id
    assert claims["patient"] == "p-7"
    assert oidc_server.stats()["/reg"] >= 1
