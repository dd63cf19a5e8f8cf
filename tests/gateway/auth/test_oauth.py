"""Bearer JWT verification (gateway/auth/oauth.py) against a real authorization server (oidc-provider, tests/auth)
and, for tokens a real AS will not issue, against a loopback key server the test controls (keyserver.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from gateway.auth.oauth import AuthServerUnavailable, BearerVerifier, OAuthConfig
from gateway.auth.principal import AuthError, Principal
from tests.auth.oidc import ClientKey, OidcServer
from tests.gateway.auth.keyserver import KeyServer

GATEWAY = "http://127.0.0.1:8080"


def verify(verifier: BearerVerifier, token: str) -> Principal:
    return asyncio.run(verifier.verify(token))


def refused(verifier: BearerVerifier, token: str, reason: str) -> AuthError:
    """The verifier refuses `token` with a message containing `reason`, and the message does not echo the token."""
    with pytest.raises(AuthError) as caught:
        verify(verifier, token)
    message = str(caught.value)
    assert reason in message
    for part in token.split("."):
        assert len(part) < 8 or part not in message
    return caught.value


@pytest.fixture()
def as_verifier(oidc_server: OidcServer) -> BearerVerifier:
    """A verifier for the real AS, its JWKS found by discovery (no JWKS URL configured)."""
    return BearerVerifier(OAuthConfig(issuer=oidc_server.issuer, audience=(GATEWAY,)))


@pytest.fixture()
def keys() -> Iterator[KeyServer]:
    with KeyServer() as server:
        yield server


def key_verifier(server: KeyServer, **config: Any) -> BearerVerifier:
    return BearerVerifier(OAuthConfig(issuer=server.issuer, audience=(GATEWAY,), **config))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- tokens of the real authorization server -------------------------------------------------------------------------

def test_a_client_credentials_token_verifies(oidc_server: OidcServer, as_verifier: BearerVerifier) -> None:
    token = oidc_server.token("system", "system/*.rs system/Observation.rs", resource=GATEWAY)
    principal = verify(as_verifier, token)
    assert principal.client == "system"
    assert principal.via == "jwt"
    assert principal.scopes == ("system/*.rs", "system/Observation.rs")
    assert principal.authenticated
    assert principal.claims["iss"] == oidc_server.issuer
    assert principal.patient is None


def test_an_es384_token_verifies(oidc_server: OidcServer, as_verifier: BearerVerifier) -> None:
    token = oidc_server.token("es384", "system/Observation.rs", resource=GATEWAY)
    assert jwt.get_unverified_header(token)["alg"] == "ES384"
    assert verify(as_verifier, token).client == "es384"


def test_patient_and_fhir_user_claims_reach_the_principal(oidc_server: OidcServer,
                                                           as_verifier: BearerVerifier) -> None:
    principal = verify(as_verifier, oidc_server.token("patient-app", "patient/*.rs", resource=GATEWAY))
    assert principal.patient == "pat-1"
    assert principal.fhir_user == "Practitioner/pr-1"
    assert principal.scopes == ("patient/*.rs",)


def test_a_token_for_another_resource_is_refused(oidc_server: OidcServer, as_verifier: BearerVerifier) -> None:
    token = oidc_server.token("system", "system/*.rs", resource="http://127.0.0.1:9/other-server")
    refused(as_verifier, token, "audience is not this gateway")


def test_an_altered_signature_is_refused(oidc_server: OidcServer, as_verifier: BearerVerifier) -> None:
    header, payload, signature = oidc_server.token("system", "system/*.rs", resource=GATEWAY).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[10] ^= 0x01
    refused(as_verifier, f"{header}.{payload}.{b64(bytes(raw))}", "signature does not verify")


def test_altered_claims_are_refused(oidc_server: OidcServer, as_verifier: BearerVerifier) -> None:
    header, payload, signature = oidc_server.token("system", "system/Observation.rs", resource=GATEWAY).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "system/*.cruds"
    refused(as_verifier, f"{header}.{b64(json.dumps(claims).encode())}.{signature}", "signature does not verify")


def test_a_token_signed_by_another_key_under_the_as_kid_is_refused(oidc_server: OidcServer,
                                                                    as_verifier: BearerVerifier) -> None:
    real = oidc_server.token("system", "system/*.rs", resource=GATEWAY)
    forged = ClientKey.generate("RS256")
    forged.kid = jwt.get_unverified_header(real)["kid"]
    claims = jwt.decode(real, options={"verify_signature": False})
    claims["scope"] = "system/*.cruds"
    refused(as_verifier, forged.sign(claims, {"typ": "at+jwt"}), "signature does not verify")


def test_alg_none_is_refused(oidc_server: OidcServer, as_verifier: BearerVerifier) -> None:
    claims = jwt.decode(oidc_server.token("system", "system/*.rs", resource=GATEWAY),
                        options={"verify_signature": False})
    token = jwt.encode(claims, None, algorithm="none", headers={"typ": "at+jwt"})
    refused(as_verifier, token, "algorithm is not accepted")
    refused(as_verifier, token + "c2ln", "algorithm is not accepted")  # with some signature bytes


def test_hs256_with_the_public_key_as_secret_is_refused(oidc_server: OidcServer,
                                                         as_verifier: BearerVerifier) -> None:
    """Algorithm confusion: an HMAC over the AS's public key (which anyone can fetch) must not verify."""
    real = oidc_server.token("system", "system/*.rs", resource=GATEWAY)
    kid = jwt.get_unverified_header(real)["kid"]
    jwk = next(k for k in oidc_server.http.get(oidc_server.jwks_url).json()["keys"] if k["kid"] == kid)
    from cryptography.hazmat.primitives import serialization

    pem = jwt.algorithms.RSAAlgorithm.from_jwk(jwk).public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(real, options={"verify_signature": False})
    claims["scope"] = "system/*.cruds"
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'at+jwt', 'kid': kid}).encode())}." \
                    f"{b64(json.dumps(claims).encode())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    refused(as_verifier, f"{signing_input}.{b64(mac)}", "algorithm is not accepted")


def test_an_unknown_kid_refetches_once_then_waits_for_the_cooldown(oidc_server: OidcServer) -> None:
    verifier = BearerVerifier(OAuthConfig(issuer=oidc_server.issuer, audience=(GATEWAY,),
                                          jwks_url=oidc_server.jwks_url, jwks_cooldown_s=1))
    good = oidc_server.token("system", "system/*.rs", resource=GATEWAY)
    claims = jwt.decode(good, options={"verify_signature": False})
    before = oidc_server.stats().get("/jwks", 0)
    stranger = ClientKey.generate("RS256")

    async def scenario() -> None:
        await verifier.verify(good)  # first fetch
        await asyncio.sleep(1.1)  # past the cooldown: an unknown kid may mean the AS rotated its keys
        for n in range(20):  # an attacker's random kids: one refetch, then none within the cooldown
            stranger.kid = f"random-{n}"
            with pytest.raises(AuthError, match="signing key is unknown"):
                await verifier.verify(stranger.sign(claims, {"typ": "at+jwt"}))
        await verifier.verify(good)  # the known key still serves

    asyncio.run(scenario())
    assert oidc_server.stats()["/jwks"] - before == 2


def test_a_malformed_token_is_refused(as_verifier: BearerVerifier) -> None:
    refused(as_verifier, "not a token at all", "malformed")
    refused(as_verifier, "a.b.c", "malformed")
    refused(as_verifier, "x" * 20000, "malformed")


# -- crafted tokens against the loopback key server ------------------------------------------------------------------

def test_a_crafted_token_verifies_against_the_key_server(keys: KeyServer) -> None:
    """The control for the tests below: the same minting, nothing altered, is accepted."""
    principal = verify(key_verifier(keys), keys.mint(keys.new_key(), GATEWAY, scp=["system/Patient.rs"]))
    assert principal.client == "crafted"
    assert principal.scopes == ("system/*.rs", "system/Patient.rs")


def test_an_expired_token_is_refused_past_the_leeway(keys: KeyServer) -> None:
    key = keys.new_key()
    now = int(time.time())
    verifier = key_verifier(keys, leeway_s=30)
    assert verify(verifier, keys.mint(key, GATEWAY, iat=now - 400, exp=now - 10)).client == "crafted"  # skew
    refused(verifier, keys.mint(key, GATEWAY, iat=now - 400, exp=now - 40), "expired")


def test_a_token_not_yet_valid_is_refused(keys: KeyServer) -> None:
    key = keys.new_key()
    now = int(time.time())
    verifier = key_verifier(keys, leeway_s=30)
    refused(verifier, keys.mint(key, GATEWAY, nbf=now + 120), "not yet valid")
    refused(verifier, keys.mint(key, GATEWAY, iat=now + 120), "not yet valid")
    assert verify(verifier, keys.mint(key, GATEWAY, nbf=now + 10)).client == "crafted"


def test_a_token_without_exp_or_aud_is_refused(keys: KeyServer) -> None:
    key = keys.new_key()
    verifier = key_verifier(keys)
    refused(verifier, keys.mint(key, GATEWAY, exp=None), "no exp claim")
    refused(verifier, keys.mint(key, None), "no aud claim")  # type: ignore[arg-type]


def test_a_token_of_another_issuer_is_refused(keys: KeyServer) -> None:
    refused(key_verifier(keys), keys.mint(keys.new_key(), GATEWAY, iss="http://127.0.0.1:9/evil"),
            "issuer is not the configured")


def test_a_token_without_a_client_is_refused(keys: KeyServer) -> None:
    refused(key_verifier(keys), keys.mint(keys.new_key(), GATEWAY, sub=None, client_id=None), "names no client")


def test_other_token_types_and_sender_constrained_tokens_are_refused(keys: KeyServer) -> None:
    key = keys.new_key()
    verifier = key_verifier(keys)
    refused(verifier, keys.mint(key, GATEWAY, {"typ": "logout+jwt"}), "not an access token")
    refused(verifier, keys.mint(key, GATEWAY, {"crit": ["exp"]}), "token")  # PyJWT or our own check
    refused(verifier, keys.mint(key, GATEWAY, cnf={"jkt": "abc"}), "sender-constrained")
    assert verify(verifier, keys.mint(key, GATEWAY, {"typ": "JWT"})).client == "crafted"


def test_an_algorithm_outside_the_allow_list_is_refused(keys: KeyServer) -> None:
    key = keys.new_key("PS256")
    token = keys.mint(key, GATEWAY)
    assert verify(key_verifier(keys), token).client == "crafted"
    refused(key_verifier(keys, algorithms=("RS256", "ES384")), token, "algorithm is not accepted")


def test_a_key_bound_to_another_algorithm_is_not_used(keys: KeyServer) -> None:
    """The JWKS says the key is for RS384: a token signed with it under RS256 is refused."""
    key = keys.new_key("RS384")
    token = jwt.encode({"iss": keys.issuer, "aud": GATEWAY, "sub": "s", "exp": int(time.time()) + 60},
                       key.private_key, algorithm="RS256", headers={"kid": key.kid})
    refused(key_verifier(keys), token, "signing key is unknown")


def test_two_keys_with_the_same_kid_and_type_are_ambiguous(keys: KeyServer) -> None:
    key = keys.new_key()
    twin = ClientKey.generate("RS256")
    twin.kid = key.kid
    keys.extra_jwks.append(twin.public_jwk())
    refused(key_verifier(keys), keys.mint(key, GATEWAY), "signing key is unknown")


def test_a_token_without_kid_uses_the_only_key_of_its_type(keys: KeyServer) -> None:
    rsa_key, ec_key = keys.new_key("RS256"), keys.new_key("ES384")
    now = int(time.time())
    claims = {"iss": keys.issuer, "aud": GATEWAY, "client_id": "c", "exp": now + 60}
    no_kid = jwt.encode(claims, rsa_key.private_key, algorithm="RS256")
    assert verify(key_verifier(keys), no_kid).client == "c"
    keys.new_key("RS256")  # a second RSA key: which one is meant is no longer clear
    refused(key_verifier(keys), no_kid, "signing key is unknown")
    assert verify(key_verifier(keys), jwt.encode(claims, ec_key.private_key, algorithm="ES384")).client == "c"


def test_rotated_keys_are_picked_up_after_the_cooldown(keys: KeyServer) -> None:
    old = keys.new_key()
    verifier = key_verifier(keys, jwks_cooldown_s=1)

    async def scenario() -> None:
        assert (await verifier.verify(keys.mint(old, GATEWAY))).client == "crafted"
        new = keys.new_key("ES384")  # the AS publishes a new key and signs with it at once
        token = keys.mint(new, GATEWAY, jti="after-rotation")
        # within the cooldown of the first fetch: not refetched
        with pytest.raises(AuthError, match="signing key is unknown"):
            await verifier.verify(token)
        await asyncio.sleep(1.1)
        assert (await verifier.verify(token)).client == "crafted"

    asyncio.run(scenario())
    assert keys.jwks_fetches == 2


def test_the_jwks_is_refetched_when_its_max_age_ends(keys: KeyServer) -> None:
    key = keys.new_key()
    keys.cache_control = "public, max-age=1"
    verifier = key_verifier(keys, jwks_cooldown_s=1)

    async def scenario() -> None:
        await verifier.verify(keys.mint(key, GATEWAY, jti="1"))
        await verifier.verify(keys.mint(key, GATEWAY, jti="2"))
        assert keys.jwks_fetches == 1
        await asyncio.sleep(1.1)
        await verifier.verify(keys.mint(key, GATEWAY, jti="3"))
        assert keys.jwks_fetches == 2

    asyncio.run(scenario())


def test_an_unreachable_jwks_fails_closed_without_hammering(keys: KeyServer) -> None:
    key = keys.new_key()
    keys.jwks_status = 500
    verifier = key_verifier(keys)

    async def scenario() -> None:
        for n in range(5):
            with pytest.raises(AuthServerUnavailable) as caught:
                await verifier.verify(keys.mint(key, GATEWAY, jti=str(n)))
            assert caught.value.status == 503

    asyncio.run(scenario())
    assert keys.jwks_fetches == 1


def test_held_keys_serve_while_the_jwks_cannot_be_refetched(keys: KeyServer) -> None:
    key = keys.new_key()
    keys.cache_control = "max-age=1"
    verifier = key_verifier(keys, jwks_cooldown_s=1)

    async def scenario() -> None:
        await verifier.verify(keys.mint(key, GATEWAY, jti="1"))
        keys.jwks_status = 503
        await asyncio.sleep(1.1)
        assert (await verifier.verify(keys.mint(key, GATEWAY, jti="2"))).client == "crafted"

    asyncio.run(scenario())
    assert keys.jwks_fetches == 2


def test_metadata_naming_another_issuer_is_not_used(keys: KeyServer) -> None:
    keys.metadata_issuer = "http://127.0.0.1:9/impostor"
    with pytest.raises(AuthServerUnavailable):
        verify(key_verifier(keys), keys.mint(keys.new_key(), GATEWAY))
    assert keys.jwks_fetches == 0


def test_a_verified_token_is_not_verified_again_but_still_expires(keys: KeyServer) -> None:
    key = keys.new_key()
    verifier = key_verifier(keys, leeway_s=0)
    token = keys.mint(key, GATEWAY, exp=int(time.time()) + 2)

    async def scenario() -> None:
        first = await verifier.verify(token)
        keys.keys.clear()  # even with the key gone, the cached answer holds until exp …
        assert await verifier.verify(token) is first
        await asyncio.sleep(2.1)
        with pytest.raises(AuthError):  # … and not after it
            await verifier.verify(token)

    asyncio.run(scenario())
