"""The gateway's own credentials for the upstream: client credentials with a private_key_jwt assertion from the real
authorization server (oidc-provider, tests/auth), a static token file, one retry with a fresh credential after a
401; the caller's Authorization never reaches the upstream. What the upstream receives is recorded by a loopback
proxy in front of Medplum's FHIR router (which does not check tokens itself)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.settings import Settings, SettingsError
from gateway.upstream import Upstream, UpstreamAuthError, UpstreamUnauthorized, UpstreamUnavailable
from gateway.upstream.credentials import (
    ASSERTION_TYPE,
    ClientCredentials,
    TokenFile,
    load_private_key,
    public_jwk,
    thumbprint,
)
from tests.auth.oidc import ClientKey, OidcClient, OidcServer
from tests.conftest import RedisServer, ServedApp, free_port
from tests.upstream.engine import unique_message
from tests.upstream.fixtures import UpstreamControl

FHIR = {"Content-Type": "application/fhir+json"}
CALLER = {"Authorization": "Bearer the-callers-own-token"}
PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:test:mrn", "value": "CRED-1"}],
           "name": [{"family": "Credtest", "given": ["Ada"]}], "gender": "female", "birthDate": "1970-01-01"}


class RecordingUpstream:
    """A loopback proxy to the real upstream that records each request's Authorization and can answer 401 to
    tokens it is told to refuse (once each, or always)."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.seen: list[str | None] = []
        self.refuse_once: set[str] = set()
        self.refuse_always = False
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir/R4"
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        app = Starlette(routes=[Route("/fhir/R4", self.forward, methods=methods),  # transactions go to the base
                                Route("/fhir/R4/{rest:path}", self.forward, methods=methods)])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def forward(self, request: Request) -> Response:
        auth = request.headers.get("authorization")
        metadata = request.path_params.get("rest") == "metadata"  # the facade's look at what the upstream calls
        if not metadata:  # itself, on first use: not one of the requests these tests count
            self.seen.append(auth)
        if not metadata and (self.refuse_always or auth in self.refuse_once):
            self.refuse_once.discard(auth or "")
            return Response(b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login"}]}',
                            status_code=401, media_type="application/fhir+json",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        rest = request.path_params.get("rest", "")
        url = f"{self.target}/{rest}" if rest else self.target
        headers = {k: v for k, v in request.headers.items() if k in ("content-type", "accept", "if-none-match",
                                                                     "if-match", "prefer")}
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.request(request.method, url, params=request.query_params.multi_items(),
                                     content=await request.body(), headers=headers)
        body = r.content.replace(self.target.encode(), self.base.encode())
        passed = {k: v.replace(self.target, self.base) for k, v in r.headers.items()
                  if k in ("etag", "location", "content-location", "last-modified")}
        return Response(body, status_code=r.status_code, headers=passed,
                        media_type=r.headers.get("content-type", "application/fhir+json"))

    def __enter__(self) -> RecordingUpstream:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("recording upstream did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture()
def recorder(medplum_upstream: str, upstream_control: UpstreamControl) -> Iterator[RecordingUpstream]:
    with RecordingUpstream(medplum_upstream) as proxy:
        yield proxy


class GatewayLogin:
    """The gateway's client at the test authorization server: its key (RS384 or ES384), registered with the key's
    RFC 7638 thumbprint as kid (the gateway's default), and the key as a 0600 PEM file."""

    def __init__(self, server: OidcServer, folder: Path, alg: str = "RS384") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS384" else \
            ec.generate_private_key(ec.SECP384R1())
        self.kid = public_jwk(self.key)["kid"]
        client = ClientKey(alg, self.key, kid=self.kid)
        self.client_id = server.register(OidcClient(f"helixgate-{alg.lower()}", client))
        self.pem = folder / f"upstream-{alg.lower()}.pem"
        self.pem.write_bytes(client.private_pem())
        os.chmod(self.pem, 0o600)
        self.server = server

    def settings(self, **extra: Any) -> Settings:
        return Settings(upstream_client_id=self.client_id, upstream_token_url=self.server.token_url,
                        upstream_private_key=str(self.pem), upstream_scope="system/*.rs system/*.cruds", **extra)

    def claims(self, token: str, audience: str) -> dict[str, Any]:
        """The access token verified against the AS's JWKS (what a real upstream would check)."""
        key = jwt.PyJWKClient(self.server.jwks_url).get_signing_key_from_jwt(token)
        return jwt.decode(token, key, algorithms=["RS256", "ES384"], audience=audience, issuer=self.server.issuer)


@pytest.fixture(scope="module")
def login(oidc_server: OidcServer, tmp_path_factory: pytest.TempPathFactory) -> GatewayLogin:
    return GatewayLogin(oidc_server, tmp_path_factory.mktemp("upstream-key"))


def bearer(value: str | None) -> str:
    assert value is not None and value.startswith("Bearer ")
    return value.removeprefix("Bearer ")


def test_the_client_assertion_is_what_smart_backend_services_asks_for(login: GatewayLogin) -> None:
    creds = ClientCredentials(login.server.token_url, login.client_id, login.key)
    first, second = creds.assertion(), creds.assertion()
    header = jwt.get_unverified_header(first)
    assert header["alg"] == "RS384" and header["kid"] == login.kid == thumbprint(public_jwk(login.key))
    claims = jwt.decode(first, login.key.public_key(), algorithms=["RS384"], audience=login.server.token_url)
    assert claims["iss"] == claims["sub"] == login.client_id
    assert claims["aud"] == login.server.token_url
    assert 0 < claims["exp"] - time.time() <= 300  # at most five minutes ahead
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]  # unique
    asyncio.run(creds.aclose())


def test_client_credentials_from_the_real_authorization_server_are_cached(login: GatewayLogin) -> None:
    async def go() -> tuple[str, str, int]:
        creds = ClientCredentials(login.server.token_url, login.client_id, login.key, scope="system/*.rs",
                                  resource="http://upstream.test/fhir")
        try:
            one = await creds.authorization()
            two = await creds.authorization()
            return one, two, creds.fetched
        finally:
            await creds.aclose()

    before = login.server.stats().get("/token", 0)
    one, two, fetched = asyncio.run(go())
    assert one == two and fetched == 1  # kept, not fetched per request
    assert login.server.stats().get("/token", 0) == before + 1
    claims = login.claims(bearer(one), "http://upstream.test/fhir")
    assert claims["client_id"] == login.client_id and claims["scope"] == "system/*.rs"


def test_an_es384_key_works_as_well(oidc_server: OidcServer, tmp_path: Path) -> None:
    es = GatewayLogin(oidc_server, tmp_path, "ES384")

    async def go() -> str:
        creds = ClientCredentials(oidc_server.token_url, es.client_id, es.key, scope="system/*.rs")
        assert creds.alg == "ES384"
        try:
            return await creds.authorization()
        finally:
            await creds.aclose()

    assert bearer(asyncio.run(go()))


def test_a_refused_or_unreachable_token_endpoint_is_an_upstream_auth_error(login: GatewayLogin) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not the registered key

    async def go(url: str, key: Any) -> UpstreamAuthError:
        creds = ClientCredentials(url, login.client_id, key)
        try:
            with pytest.raises(UpstreamAuthError) as caught:
                await creds.authorization()
            return caught.value
        finally:
            await creds.aclose()

    refused = asyncio.run(go(login.server.token_url, stranger))
    assert "refused the gateway's client (invalid_client)" in str(refused) and refused.status == 401
    down = asyncio.run(go(f"http://127.0.0.1:{free_port()}/token", login.key))
    assert "unreachable" in str(down)


def test_the_facade_sends_the_gateways_token_never_the_callers(login: GatewayLogin, recorder: RecordingUpstream,
                                                               redis_server: RedisServer) -> None:
    with ServedApp(login.settings(redis_url=redis_server.url, upstream_url=recorder.base,
                                  upstream_resource=recorder.base, upstream_retries=0)) as app:
        created = httpx.post(f"{app.url}/fhir/Patient", json=PATIENT, headers={**FHIR, **CALLER}, timeout=30)
        assert created.status_code == 201, created.text
        path = created.headers["location"].split("/fhir/", 1)[1].split("/_history")[0]
        read = httpx.get(f"{app.url}/fhir/{path}", headers=CALLER, timeout=10)
        assert read.status_code == 200 and read.json()["name"][0]["family"] == "Credtest"
    assert len(recorder.seen) == 2 and recorder.seen[0] == recorder.seen[1]  # one token, kept for both
    assert all("the-callers-own-token" not in (seen or "") for seen in recorder.seen)
    claims = login.claims(bearer(recorder.seen[0]), recorder.base)  # a valid AS token for the upstream
    assert claims["client_id"] == login.client_id


def test_a_401_from_the_upstream_gets_one_retry_with_a_fresh_token(login: GatewayLogin,
                                                                   recorder: RecordingUpstream) -> None:
    async def go() -> tuple[int, int]:
        creds = ClientCredentials(login.server.token_url, login.client_id, login.key, scope="system/*.rs")
        upstream = Upstream(recorder.base, retries=0, credentials=creds)
        try:
            first = await creds.authorization()
            recorder.refuse_once.add(first)  # e.g. revoked early, or the upstream's key rotated
            r = await upstream.send("GET", "Patient")
            return r.status_code, creds.fetched
        finally:
            await upstream.aclose()

    status, fetched = asyncio.run(go())
    assert status == 200 and fetched == 2
    assert len(recorder.seen) == 2 and recorder.seen[0] != recorder.seen[1]


def test_an_upstream_that_keeps_refusing_is_a_502_after_one_retry(login: GatewayLogin, recorder: RecordingUpstream,
                                                                  redis_server: RedisServer) -> None:
    recorder.refuse_always = True
    with ServedApp(login.settings(redis_url=redis_server.url, upstream_url=recorder.base, upstream_retries=2)) as app:
        r = httpx.get(f"{app.url}/fhir/Patient", headers=CALLER, timeout=10)
    assert r.status_code == 502  # not the upstream's 401: the caller's own credentials were fine
    issue = r.json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "upstream-unauthorized"
    assert len(recorder.seen) == 2  # the first token, then one fresh one; no more


def test_a_static_token_file_is_read_again_when_it_changes(tmp_path: Path, recorder: RecordingUpstream,
                                                           redis_server: RedisServer) -> None:
    token_file = tmp_path / "upstream.token"
    token_file.write_text("first-static-token\n")
    os.chmod(token_file, 0o600)
    settings = Settings(redis_url=redis_server.url, upstream_url=recorder.base, upstream_token_file=str(token_file),
                        upstream_retries=0)
    with ServedApp(settings) as app:
        assert httpx.get(f"{app.url}/fhir/Patient", headers=CALLER, timeout=10).status_code == 200
        token_file.write_text("second-static-token-rotated\n")
        assert httpx.get(f"{app.url}/fhir/Patient", headers=CALLER, timeout=10).status_code == 200
        recorder.refuse_once.add("Bearer second-static-token-rotated")
        refused = httpx.get(f"{app.url}/fhir/Patient", timeout=10)  # nothing new to offer: no retry
        assert refused.status_code == 502
    assert recorder.seen == ["Bearer first-static-token", "Bearer second-static-token-rotated",
                             "Bearer second-static-token-rotated"]


def test_an_unreadable_token_file_is_a_503_for_the_caller(tmp_path: Path, redis_server: RedisServer,
                                                          recorder: RecordingUpstream) -> None:
    settings = Settings(redis_url=redis_server.url, upstream_url=recorder.base,
                        upstream_token_file=str(tmp_path / "missing.token"), upstream_retries=0)
    with ServedApp(settings) as app:
        r = httpx.get(f"{app.url}/fhir/Patient", timeout=10)
    assert r.status_code == 503 and "token file cannot be read" in r.json()["issue"][0]["details"]["text"]
    assert recorder.seen == []


def test_without_credentials_nothing_is_forwarded_as_authorization(recorder: RecordingUpstream,
                                                                   redis_server: RedisServer) -> None:
    with ServedApp(Settings(redis_url=redis_server.url, upstream_url=recorder.base, upstream_retries=0)) as app:
        assert httpx.get(f"{app.url}/fhir/Patient", headers=CALLER, timeout=10).status_code == 200
    assert recorder.seen == [None]


def test_credential_settings_fit_together(tmp_path: Path) -> None:
    ok = {"HELIXGATE_UPSTREAM_CLIENT_ID": "gw", "HELIXGATE_UPSTREAM_TOKEN_URL": "https://as.test/token",
          "HELIXGATE_UPSTREAM_PRIVATE_KEY": "/etc/helixgate/upstream.pem", "HELIXGATE_UPSTREAM_SCOPE": "system/*.rs"}
    assert Settings.from_env(ok).upstream_scope == "system/*.rs"
    for env, text in (({**ok, "HELIXGATE_UPSTREAM_TOKEN_FILE": "/t"}, "not both"),
                      ({"HELIXGATE_UPSTREAM_CLIENT_ID": "gw"}, "HELIXGATE_UPSTREAM_TOKEN_URL"),
                      ({"HELIXGATE_UPSTREAM_SCOPE": "system/*.rs"}, "applies to client credentials")):
        with pytest.raises(SettingsError, match=text):
            Settings.from_env(env)
    weak = tmp_path / "weak.pem"
    weak.write_bytes(ClientKey("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024)).private_pem())
    p256 = tmp_path / "p256.pem"
    p256.write_bytes(ClientKey("ES256", ec.generate_private_key(ec.SECP256R1())).private_pem())
    with pytest.raises(SettingsError, match="at least 2048 bits"):
        load_private_key(weak)
    with pytest.raises(SettingsError, match="RSA \\(RS384\\) or EC P-384"):
        load_private_key(p256)
    with pytest.raises(SettingsError, match="cannot read it"):
        load_private_key(tmp_path / "absent.pem")


def test_a_token_file_is_trimmed_and_must_hold_one_token(tmp_path: Path) -> None:
    path = tmp_path / "t"
    creds = TokenFile(path)
    path.write_text("  abc.def  \n")
    assert asyncio.run(creds.authorization()) == "Bearer abc.def"
    path.write_text("two tokens\n")
    with pytest.raises(UpstreamAuthError, match="one token"):
        asyncio.run(creds.authorization())
    assert ASSERTION_TYPE.endswith("jwt-bearer")


def test_upstream_jwks_prints_the_public_key_to_register(login: GatewayLogin, tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway.cli.main", "upstream-jwks", *args], text=True,
                              capture_output=True, timeout=60,
                              env={k: v for k, v in os.environ.items() if not k.startswith("HELIXGATE_")} | (env or {}))

    done = cli(env={"HELIXGATE_UPSTREAM_PRIVATE_KEY": str(login.pem)})
    assert done.returncode == 0, done.stderr
    (jwk,) = json.loads(done.stdout)["keys"]
    assert jwk == public_jwk(login.key) and jwk["kid"] == login.kid and jwk["alg"] == "RS384"
    assert "d" not in jwk and "p" not in jwk  # public members only
    assert json.loads(cli("--key", str(login.pem), "--kid", "gw-2026").stdout)["keys"][0]["kid"] == "gw-2026"
    missing = cli()
    assert missing.returncode == 2 and "HELIXGATE_UPSTREAM_PRIVATE_KEY" in missing.stderr
    bad = tmp_path / "not.pem"
    bad.write_text("hello")
    refused = cli("--key", str(bad))
    assert refused.returncode == 1 and "not an unencrypted PEM private key" in refused.stderr


def test_a_refused_delivery_is_transient_for_workers_and_a_502_for_callers(recorder: RecordingUpstream,
                                                                          redis_server: RedisServer) -> None:
    recorder.refuse_always = True

    async def go() -> UpstreamUnavailable:
        upstream = Upstream(recorder.base, retries=0)  # no credentials at all: the upstream wants some
        try:
            with pytest.raises(UpstreamUnauthorized) as caught:
                await upstream.json("POST", "", body={"resourceType": "Bundle", "type": "transaction", "entry": []})
            return caught.value
        finally:
            await upstream.aclose()

    refused = asyncio.run(go())
    assert isinstance(refused, UpstreamUnavailable)  # workers retry it (Transient), they do not dead-letter it
    assert "HELIXGATE_UPSTREAM_TOKEN_FILE" in str(refused) and refused.status == 401
    with ServedApp(Settings(redis_url=redis_server.url, upstream_url=recorder.base, upstream_retries=0)) as app:
        r = httpx.post(f"{app.url}/fhir", content=unique_message(1, "CR"),
                       headers={"Content-Type": "x-application/hl7-v2+er7", **CALLER}, timeout=120)
    assert r.status_code == 502, r.text
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "upstream-unauthorized"
