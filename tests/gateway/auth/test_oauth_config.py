"""HELIXGATE_OAUTH_* settings: what turns OAuth on, and what is refused before the gateway starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.oauth import DEFAULT_ALGORITHMS, OAuthConfig, verifier_from_env
from gateway.settings import SettingsError
from tests.auth.oidc import ClientKey

BASE = {"HELIXGATE_OAUTH_ISSUER": "https://as.example.org/", "HELIXGATE_OAUTH_AUDIENCE": "https://gw.example.org/fhir"}


def config(**env: str) -> OAuthConfig:
    result = OAuthConfig.from_env({**BASE, **{f"HELIXGATE_OAUTH_{k}": v for k, v in env.items()}})
    assert result is not None
    return result


def test_off_without_an_issuer() -> None:
    assert OAuthConfig.from_env({}) is None
    assert verifier_from_env({"HELIXGATE_OAUTH_AUDIENCE": "https://gw.example.org"}) is None


def test_defaults() -> None:
    c = config()
    assert c.issuer == "https://as.example.org"
    assert c.audience == ("https://gw.example.org/fhir",)
    assert c.algorithms == DEFAULT_ALGORITHMS
    assert c.leeway_s == 30
    assert c.jwks_url is None and c.introspection is None
    assert verifier_from_env(BASE) is not None


def test_an_audience_is_required() -> None:
    with pytest.raises(SettingsError, match="HELIXGATE_OAUTH_AUDIENCE"):
        OAuthConfig.from_env({"HELIXGATE_OAUTH_ISSUER": "https://as.example.org"})


def test_several_audiences() -> None:
    assert config(AUDIENCE="https://a.example.org, https://b.example.org").audience == (
        "https://a.example.org", "https://b.example.org")


@pytest.mark.parametrize("algs", ["none", "HS256", "RS256,HS512", "", "RS1"])
def test_symmetric_and_none_algorithms_are_refused(algs: str) -> None:
    if algs == "":
        assert config(ALGORITHMS=algs).algorithms == DEFAULT_ALGORITHMS  # empty: the default
        return
    with pytest.raises(SettingsError, match="never none or HS"):
        config(ALGORITHMS=algs)


def test_an_algorithm_list() -> None:
    assert config(ALGORITHMS="ES384, EdDSA").algorithms == ("ES384", "EdDSA")


@pytest.mark.parametrize(("name", "value"), [("LEEWAY_S", "61"), ("LEEWAY_S", "-1"), ("LEEWAY_S", "soon"),
                                             ("INTROSPECTION_CACHE_S", "301"), ("JWKS_COOLDOWN_S", "0")])
def test_bounded_numbers(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"HELIXGATE_OAUTH_{name}"):
        config(**{name: value})


def test_leeway_within_bounds() -> None:
    assert config(LEEWAY_S="60").leeway_s == 60
    assert config(LEEWAY_S="0").leeway_s == 0


@pytest.mark.parametrize(("name", "value"), [("ISSUER", "http://as.example.org"),
                                             ("JWKS_URL", "http://10.0.0.5/jwks"),
                                             ("INTROSPECTION_URL", "ftp://as.example.org/i")])
def test_plain_http_only_on_loopback(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"HELIXGATE_OAUTH_{name}.*https"):
        config(**{name: value})


def test_loopback_http_is_allowed() -> None:
    assert config(ISSUER="http://127.0.0.1:9000", JWKS_URL="http://localhost:9000/jwks").jwks_url == \
        "http://localhost:9000/jwks"


def test_introspection_credentials(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="_CLIENT_SECRET"):
        config(INTROSPECTION_CLIENT_ID="gw")
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    c = config(INTROSPECTION_CLIENT_ID="gw", INTROSPECTION_CLIENT_SECRET_FILE=str(secret))
    assert c.introspection is not None and c.introspection.secret == "s3cret"
    assert "s3cret" not in repr(c)
    pem = tmp_path / "key.pem"
    pem.write_bytes(ClientKey.generate("RS384").private_pem())
    c = config(INTROSPECTION_CLIENT_ID="gw", INTROSPECTION_KEY_FILE=str(pem))
    assert c.introspection is not None and c.introspection.key_alg == "RS384"
    pem.write_text("not a key")
    with pytest.raises(SettingsError, match="KEY_FILE: not an unencrypted PEM"):
        config(INTROSPECTION_CLIENT_ID="gw", INTROSPECTION_KEY_FILE=str(pem))
    with pytest.raises(SettingsError, match="KEY_ALG"):
        config(INTROSPECTION_CLIENT_ID="gw", INTROSPECTION_KEY_FILE=str(pem), INTROSPECTION_KEY_ALG="HS256")
