"""A real OAuth 2.0 authorization server for the tests: npm `oidc-provider` (tests/auth/oidc_server.mjs) on loopback.

It issues SMART Backend Services style `client_credentials` access tokens to clients that authenticate with a
`private_key_jwt` assertion (RS384/ES384 …) signed here with PyJWT, supports RFC 7662 introspection, RFC 7009
revocation, RFC 8707 resource indicators (any resource becomes the token's `aud`) and RFC 7591 registration.

Usage (the `oidc_server` session fixture is registered in tests/conftest.py):

    def test_something(oidc_server):
        token = oidc_server.token("system", "system/*.rs", resource="http://127.0.0.1:8080")  # a JWT access token
        oidc_server.issuer, oidc_server.token_url, oidc_server.jwks_url, oidc_server.introspection_url

    # the clients of the session server (see default_clients()):
    #   "system"       RS384 assertion, JWT access tokens (RS256)     "es384"  ES384 assertion, ES384 access tokens
    #   "opaque"       RS384 assertion, opaque access tokens           "patient-app"  tokens carry patient/fhirUser
    #   "introspector" client_secret_basic (INTROSPECTOR_SECRET): the resource server's credentials for introspection

    # a client of your own (e.g. the gateway's upstream login), registered at runtime (RFC 7591):
    key = ClientKey.generate("RS384")
    client_id = oidc_server.register(OidcClient("my-gateway", key))   # returns the server-assigned client_id
    # the private key in PEM for a settings file: key.private_pem(); its JWKS: key.jwks()

    # or a server of your own (its own clients, scopes, audience, signing keys):
    with OidcServer.start(clients=[OidcClient("c1", ClientKey.generate("ES384"))], scopes=["system/*.rs"]) as s:
        ...

`assertion()` builds the client assertion (iss = sub = client_id, aud = token URL, exp ≤ 5 min, unique jti) so a test
can replay or alter it; `token_response()` returns the raw httpx.Response; `stats()` counts requests per path (e.g.
how often /jwks was fetched). The npm packages live in tests/upstream/node_modules (`npm ci` there on first use).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.upstream.fixtures import first_line, stop_process

HERE = Path(__file__).resolve().parent
NODE_PACKAGES = HERE.parent / "upstream"
SERVER = HERE / "oidc_server.mjs"

DEFAULT_AUDIENCE = "http://helixgate.test"
INTROSPECTOR_SECRET = "introspector-secret-for-tests-only"
# The AS drops any scope it does not know, so every scope a test asks for must be here (or passed to start()).
DEFAULT_SCOPES = [
    f"{context}/{kind}.{perm}"
    for context in ("system", "user", "patient")
    for kind in ("*", "Observation", "Patient", "DiagnosticReport", "Bundle", "Parameters")
    for perm in ("cruds", "rs", "r", "s", "c", "cu", "cud", "read", "write", "*")
] + [f"{context}/${op}" for context in ("system", "user", "patient") for op in ("convert", "validate", "translate")
     ] + ["launch/patient", "fhirUser", "openid"]

_install_lock = threading.Lock()


def ensure_node_modules() -> None:
    """Install the pinned npm packages of the tests (tests/upstream) once, when oidc-provider is missing."""
    with _install_lock:
        if (NODE_PACKAGES / "node_modules" / "oidc-provider" / "package.json").is_file():
            return
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            pytest.fail("node and npm are needed for the test authorization server; install Node.js 20+")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_PACKAGES,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"npm ci in {NODE_PACKAGES} failed: {done.stderr.strip()[-2000:]}")


@dataclass
class ClientKey:
    """A client's signing key pair; `alg` is the JWS algorithm it signs assertions with."""

    alg: str
    private_key: Any
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def generate(cls, alg: str = "RS384") -> ClientKey:
        if alg.startswith(("RS", "PS")):
            return cls(alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        return cls(alg, ec.generate_private_key(curves[alg]))

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def private_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        return {**algorithm.to_jwk(self.private_key, as_dict=True), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers={"kid": self.kid, **(headers or {})})


@dataclass
class OidcClient:
    """A client of the test AS. `key` → private_key_jwt; else `secret` → client_secret_basic."""

    client_id: str
    key: ClientKey | None = None
    secret: str | None = None
    token_format: str = "jwt"  # or "opaque"
    token_alg: str = "RS256"  # alg of its JWT access tokens (signed by the AS)
    claims: dict[str, Any] = field(default_factory=dict)  # extra token claims (patient, fhirUser …)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"client_id": self.client_id, "grant_types": ["client_credentials"],
                                "response_types": [], "redirect_uris": [], "x_token_format": self.token_format,
                                "x_token_alg": self.token_alg}
        if self.claims:
            meta["x_claims"] = self.claims
        if self.key is not None:
            meta.update(token_endpoint_auth_method="private_key_jwt", token_endpoint_auth_signing_alg=self.key.alg,
                        jwks=self.key.jwks())
        else:
            meta.update(token_endpoint_auth_method="client_secret_basic", client_secret=self.secret)
        return meta


def default_clients() -> list[OidcClient]:
    return [
        OidcClient("system", ClientKey.generate("RS384")),
        OidcClient("es384", ClientKey.generate("ES384"), token_alg="ES384"),
        OidcClient("opaque", ClientKey.generate("RS384"), token_format="opaque"),
        OidcClient("patient-app", ClientKey.generate("RS384"),
                   claims={"patient": "pat-1", "fhirUser": "Practitioner/pr-1"}),
        OidcClient("introspector", secret=INTROSPECTOR_SECRET),
    ]


class OidcServer:
    """One running oidc_server.mjs. Start with `OidcServer.start(...)` (a context manager) or the fixture."""

    def __init__(self, clients: list[OidcClient], scopes: list[str], resource: str, ttl: int = 300,
                 signing_keys: list[dict[str, Any]] | None = None, port: int = 0) -> None:
        ensure_node_modules()
        self.clients = {c.client_id: c for c in clients}
        self.resource = resource
        self.registration_token = uuid.uuid4().hex
        config = {"port": port, "resource": resource, "scopes": scopes, "access_token_ttl": ttl,
                  "clients": [c.metadata() for c in clients], "registration_token": self.registration_token}
        if signing_keys:
            config["signing_keys"] = signing_keys
        self._config = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="oidc-", delete=False)  # noqa: SIM115
        json.dump(config, self._config)
        self._config.close()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop(); a pipe could fill up
        self.proc = subprocess.Popen(["node", str(SERVER), self._config.name], cwd=HERE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True)
        line = self._first_line(timeout=60)
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"test authorization server did not start: {line!r}")
        self.issuer = line.split(" ", 1)[1].strip()
        self.http = httpx.Client(timeout=10)

    @classmethod
    @contextlib.contextmanager
    def start(cls, clients: list[OidcClient] | None = None, scopes: list[str] | None = None,
              resource: str = DEFAULT_AUDIENCE, **kwargs: Any) -> Iterator[OidcServer]:
        server = cls(default_clients() if clients is None else clients, DEFAULT_SCOPES if scopes is None else scopes,
                     resource, **kwargs)
        try:
            yield server
        finally:
            server.stop()

    def _first_line(self, timeout: float) -> str:
        return first_line(self.proc, timeout)

    def stop(self) -> None:
        stop_process(self.proc)
        self._stderr.close()
        Path(self._config.name).unlink(missing_ok=True)
        if hasattr(self, "http"):
            self.http.close()

    @property
    def port(self) -> int:
        return int(self.issuer.rsplit(":", 1)[1])

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def introspection_url(self) -> str:
        return f"{self.issuer}/token/introspection"

    @property
    def revocation_url(self) -> str:
        return f"{self.issuer}/token/revocation"

    def stats(self) -> dict[str, int]:
        """Requests served per path since start (e.g. stats().get('/jwks', 0))."""
        return self.http.get(f"{self.issuer}/_admin/stats").json()["requests"]

    def register(self, client: OidcClient) -> str:
        """Register a client at runtime (RFC 7591); returns and records the client_id the server assigned."""
        meta = {k: v for k, v in client.metadata().items() if k not in ("client_id", "client_secret")}
        r = self.http.post(f"{self.issuer}/reg", json=meta,
                           headers={"Authorization": f"Bearer {self.registration_token}"})
        r.raise_for_status()
        body = r.json()
        client.client_id = body["client_id"]
        if client.key is None:
            client.secret = body["client_secret"]
        self.clients[client.client_id] = client
        return client.client_id

    def assertion(self, client_id: str, **claims: Any) -> str:
        """A private_key_jwt client assertion for `client_id` (claims override the defaults: exp, jti, aud …)."""
        key = self.clients[client_id].key
        if key is None:
            raise ValueError(f"client {client_id} authenticates with a secret, not a key")
        now = int(time.time())
        body = {"iss": client_id, "sub": client_id, "aud": self.token_url, "iat": now, "exp": now + 240,
                "jti": uuid.uuid4().hex, **claims}
        return key.sign(body)

    def _client_auth(self, client_id: str) -> tuple[dict[str, str], tuple[str, str] | None]:
        client = self.clients[client_id]
        if client.key is not None:
            return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": self.assertion(client_id)}, None
        return {}, (client_id, client.secret or "")

    def token_response(self, client_id: str, scope: str, resource: str | None = None,
                       assertion: str | None = None) -> httpx.Response:
        """POST /token (grant client_credentials) and return the response as is."""
        form, basic = self._client_auth(client_id)
        if assertion is not None:
            form["client_assertion"] = assertion
        form.update(grant_type="client_credentials", scope=scope)
        if resource:
            form["resource"] = resource
        return self.http.post(self.token_url, data=form, auth=basic) if basic else self.http.post(self.token_url,
                                                                                                    data=form)

    def token(self, client_id: str, scope: str, resource: str | None = None) -> str:
        """An access token for `client_id` (the AS grants only the scopes it knows)."""
        r = self.token_response(client_id, scope, resource)
        if r.status_code != 200:
            raise AssertionError(f"token request for {client_id} failed: {r.status_code} {r.text}")
        return r.json()["access_token"]

    def revoke(self, token: str, client_id: str) -> None:
        """Revoke a token (RFC 7009) as the client it was issued to; an opaque token then introspects inactive."""
        form, basic = self._client_auth(client_id)
        form.update(token=token, token_type_hint="access_token")
        r = self.http.post(self.revocation_url, data=form, auth=basic) if basic else self.http.post(
            self.revocation_url, data=form)
        r.raise_for_status()

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 introspection as the "introspector" client (what a resource server sees)."""
        r = self.http.post(self.introspection_url, data={"token": token},
                           auth=("introspector", INTROSPECTOR_SECRET))
        r.raise_for_status()
        return r.json()

    def log(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")


@pytest.fixture(scope="session")
def oidc_server() -> Iterator[OidcServer]:
    """The test authorization server (default_clients(), DEFAULT_SCOPES, default audience DEFAULT_AUDIENCE)."""
    with OidcServer.start() as server:
        yield server
