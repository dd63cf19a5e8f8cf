"""HTTPS and mutual TLS for the HTTP listener, with a test CA made here: a real `helixgate serve --workers 2`
subprocess (HTTPS with client certificates required, MLLP over mTLS with a partner allow-list, real Redis), uvicorn
serving through the gateway's TLS protocol hook (the verified client certificate reaches the ASGI scope), TLS 1.1
refused, and unusable certificate/key files stopping `helixgate serve` before anything listens."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.auth.certs import CERT_KEY, MtlsClients, client_certificate, identity_from_der
from gateway.cli.main import main
from gateway.cli.uvicorn_config import GatewayConfig
from gateway.settings import SettingsError
from gateway.tls import TlsConfig
from gateway.workers.streams import INBOUND
from tests.conftest import ROOT, RedisServer, free_port
from tests.gateway.test_mllp_tls import TlsMllpClient, _from, _refused
from tests.pki import Pair, Pki, make_pki
from tests.upstream.engine import segments
from tests.upstream.fixtures import wait_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _client_context(pki: Pki, cert: Pair | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.ca)
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    return ctx


def _tls11_context(pki: Pki) -> ssl.SSLContext:
    """A client that offers TLS 1.1 only (OpenSSL 3 needs security level 0 for it)."""
    ctx = _client_context(pki)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    """The TLS version a handshake with 127.0.0.1:port settles on; raises ssl.SSLError/OSError when refused."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        return tls.version() or ""


def _assert_tls11_refused(port: int, pki: Pki) -> None:
    """TLS 1.1 fails against `port`, and the same client does complete TLS 1.1 with a server that allows it (so the
    refusal is the gateway's, not the client's inability)."""
    lax = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    lax.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        lax.minimum_version = ssl.TLSVersion.TLSv1_1
    lax.load_cert_chain(pki.server.cert, pki.server.key)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()

        def accept_one() -> None:
            conn, _ = listening.accept()
            with contextlib.suppress(OSError), lax.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

        threading.Thread(target=accept_one, daemon=True).start()
        assert _handshake(listening.getsockname()[1], _tls11_context(pki)) == "TLSv1.1"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(port, _tls11_context(pki))


# -- the verified client certificate in the ASGI scope (uvicorn through GatewayConfig) ----------------------------


async def whoami(request: Request) -> JSONResponse:
    identity = client_certificate(request)
    tls = request.scope.get("extensions", {}).get("tls")
    clients: MtlsClients = request.app.state.clients
    principal = clients.principal(identity)
    return JSONResponse({
        "scheme": request.url.scheme,
        "subject": identity.subject_text if identity else None, "cn": identity.common_name if identity else None,
        "fingerprint": identity.fingerprint if identity else None, "dns": list(identity.dns_names) if identity else [],
        "tls": {k: v for k, v in tls.items() if k != "client_cert_chain"} if tls else None,
        "chain": len(tls["client_cert_chain"]) if tls else 0,
        "principal": {"client": principal.client, "via": principal.via, "scopes": list(principal.scopes)}
        if principal else None})


class ServedTls:
    """A tiny app that reports what the scope says about the connection, served by uvicorn through the gateway's
    GatewayConfig (its SSLContext and TLS protocol hook) on a loopback port."""

    def __init__(self, tls: TlsConfig, clients: MtlsClients, http: str = "auto") -> None:
        app = Starlette(routes=[Route("/whoami", whoami)])
        app.state.clients = clients
        self.port = free_port()
        self.server = uvicorn.Server(GatewayConfig(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                   lifespan="off", tls=tls, http=http))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedTls:
        self.thread.start()
        wait_for(lambda: self.server.started, 10, what="uvicorn")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def get(self, pki: Pki, cert: Pair | None = None) -> dict[str, Any]:
        with httpx.Client(verify=_client_context(pki, cert)) as client:
            response = client.get(f"https://localhost:{self.port}/whoami")
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_the_verified_client_certificate_reaches_the_scope_and_maps_to_a_principal(pki: Pki, http: str) -> None:
    clients = MtlsClients.parse(json.dumps({pki.lab_a.subject: {"client": "genlab-a", "scopes": ["system/*.rs"]}}))
    tls = TlsConfig.build(pki.server.cert, pki.server.key, pki.ca, "optional")
    with ServedTls(tls, clients, http) as served:
        got = served.get(pki, pki.lab_a)
        assert got["scheme"] == "https"
        assert got["subject"] == pki.lab_a.subject == "CN=lab-a,O=Genlab,C=DE" and got["cn"] == "lab-a"
        assert got["fingerprint"] == pki.lab_a.fingerprint and got["dns"] == ["lab-a.example"]
        assert got["principal"] == {"client": "genlab-a", "via": "mtls", "scopes": ["system/*.rs"]}
        assert got["tls"]["client_cert_name"] == pki.lab_a.subject and got["chain"] == 1
        assert got["tls"]["tls_version"] == 0x0304 and got["tls"]["client_cert_error"] is None
        # A valid certificate not in HELIXGATE_MTLS_CLIENTS is an identity without a principal.
        other = served.get(pki, pki.lab_b)
        assert other["subject"] == pki.lab_b.subject and other["principal"] is None
        # No certificate (optional): TLS facts, no identity.
        anonymous = served.get(pki)
        assert anonymous["subject"] is None and anonymous["principal"] is None
        assert anonymous["tls"]["tls_version"] == 0x0304 and anonymous["chain"] == 0
        # TLS 1.2 is offered with ECDHE + AEAD suites only (the test server key is ECDSA).
        ctx = _client_context(pki, pki.lab_a)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with httpx.Client(verify=ctx) as client:
            tls12 = client.get(f"https://localhost:{served.port}/whoami").json()["tls"]
        assert tls12["tls_version"] == 0x0303 and tls12["cipher_suite"] in (0xC02B, 0xC02C, 0xCCA9)
        # Certificates the CA did not issue, or that expired, end at the handshake.
        for bad in (pki.stranger, pki.expired):
            with pytest.raises(httpx.TransportError):
                served.get(pki, bad)
        _assert_tls11_refused(served.port, pki)


def test_client_certificate_reads_the_asgi_tls_extension_of_other_servers(pki: Pki) -> None:
    der = ssl.PEM_cert_to_DER_cert(Path(pki.lab_a.cert).read_text())
    pem = ssl.DER_cert_to_PEM_cert(der)
    scope: dict[str, Any] = {"type": "http", "extensions": {"tls": {"client_cert_chain": [pem],
                                                                     "client_cert_error": None}}}
    assert client_certificate(scope).fingerprint == pki.lab_a.fingerprint  # type: ignore[union-attr]
    scope["extensions"]["tls"]["client_cert_error"] = "certificate has expired"  # not verified: no identity
    assert client_certificate(scope) is None
    assert client_certificate({"type": "http", "headers": [(b"x-ssl-client-cert", pem.encode())]}) is None
    assert client_certificate({CERT_KEY: identity_from_der(der)}).subject_text == pki.lab_a.subject  # type: ignore[union-attr]


def test_mtls_client_mapping_by_subject_or_fingerprint(tmp_path: Path, pki: Pki) -> None:
    lab_a = identity_from_der(ssl.PEM_cert_to_DER_cert(Path(pki.lab_a.cert).read_text()))
    lab_b = identity_from_der(ssl.PEM_cert_to_DER_cert(Path(pki.lab_b.cert).read_text()))
    path = tmp_path / "clients.json"
    # lab-a as OpenSSL prints a subject by default (other order, spaces): the attributes are what is compared.
    path.write_text(json.dumps({"C = DE, O = Genlab, CN = lab-a": ["system/Observation.rs"],
                                pki.lab_b.fingerprint.upper().replace("SHA256:", "sha256:"): {"client": "hub"}}))
    clients = MtlsClients.from_env({"HELIXGATE_MTLS_CLIENTS": str(path)})
    a = clients.principal(lab_a)
    assert a is not None and (a.client, a.via, a.scopes) == ("lab-a", "mtls", ("system/Observation.rs",))
    assert a.claims == {"cert_subject": pki.lab_a.subject, "cert_sha256": pki.lab_a.fingerprint}
    b = clients.principal(lab_b)
    assert b is not None and b.client == "hub" and b.scopes == ()
    assert clients.principal(None) is None and MtlsClients().principal(lab_a) is None
    assert MtlsClients.parse('{"CN=lab-a,O=Other,C=DE": []}').principal(lab_a) is None  # one attribute differs
    assert MtlsClients.parse('{"CN=lab-a,O=Genlab": []}').principal(lab_a) is None  # one attribute missing
    for raw, says in (('["CN=x"]', "JSON object"), ('{"CN=x": "system/*.rs"}', "list of scopes"),
                      ('{"CN=x": {"client": ""}}', "non-empty"), ('{"=x": []}', "RFC 4514"),
                      ('{"sha256:zz": []}', "SHA-256")):
        with pytest.raises(SettingsError, match=says):
            MtlsClients.parse(raw)


# -- helixgate serve: unusable files stop it before anything listens ----------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_serve_names_an_unusable_certificate_or_key_and_starts_nothing(tmp_path: Path, pki: Pki,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives import serialization

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    encrypted = tmp_path / "encrypted.key"
    key = serialization.load_pem_private_key(Path(pki.server.key).read_bytes(), None)
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"secret")))
    missing = str(tmp_path / "missing.crt")
    port = free_port()
    cases = [
        (["--tls-cert", missing, "--tls-key", pki.server.key], [f"cannot read the TLS certificate {missing}"]),
        (["--tls-cert", pki.server.cert, "--tls-key", str(tmp_path)], [f"cannot read the TLS key {tmp_path}"]),
        (["--tls-cert", str(garbage), "--tls-key", pki.server.key], [f"{garbage} holds no PEM certificate"]),
        (["--tls-cert", pki.server.cert, "--tls-key", str(garbage)], [f"{garbage} holds no PEM private key"]),
        (["--tls-cert", pki.server.cert, "--tls-key", str(encrypted)], [f"{encrypted} is encrypted"]),
        (["--tls-cert", pki.server.cert, "--tls-key", pki.lab_a.key],
         [f"key {pki.lab_a.key} does not belong to the certificate {pki.server.cert}"]),
        (["--tls-cert", pki.server.cert, "--tls-key", pki.server.key, "--tls-client-ca", str(garbage)],
         [f"client CA file {garbage} holds no PEM certificate"]),
    ]
    for extra, says in cases:
        assert main(["serve", "--port", str(port), *extra]) == 1
        out = capsys.readouterr().out
        assert all(s in out for s in says) and "nothing was started" in out, out
        assert _port_free(port)
    # A mode without a CA is a usage error (2), also before anything listens.
    assert main(["serve", "--port", str(port), "--tls-cert", pki.server.cert, "--tls-key", pki.server.key,
                 "--tls-client-cert", "required"]) == 2
    assert "needs the CA" in capsys.readouterr().out


# -- a real helixgate serve --workers 2: HTTPS with mTLS required, MLLP over mTLS with partners --------------------


@pytest.fixture(scope="module")
def served(pki: Pki, redis_server: RedisServer) -> Iterator[tuple[int, int]]:
    port, mllp = free_port(), free_port()
    env = {**os.environ, "HELIXGATE_REDIS_URL": redis_server.url, "PYTHONPATH": str(ROOT),
           "HELIXGATE_MLLP_PARTNERS": json.dumps({"GENLAB-A": pki.lab_a.subject}),
           # Auth on, by client certificate only: lab-a may translate codes and do nothing else.
           "HELIXGATE_MTLS_CLIENTS": json.dumps({pki.lab_a.subject: {"client": "genlab-a",
                                                                     "scopes": ["system/$translate"]}}),
           "HELIXGATE_MLLP_TLS_HANDSHAKE_TIMEOUT_MS": "2000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--mllp-port", str(mllp),
         "--workers", "2", "--log-level", "warning",
         "--tls-cert", pki.server.cert, "--tls-key", pki.server.key, "--tls-client-ca", pki.ca,
         "--mllp-tls-cert", pki.server.cert, "--mllp-tls-key", pki.server.key, "--mllp-tls-client-ca", pki.ca],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def healthy() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"helixgate serve exited: {proc.communicate()[0]}")
        try:
            with httpx.Client(verify=_client_context(pki, pki.lab_a)) as client:
                return client.get(f"https://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 60, interval=0.2, what="helixgate serve over HTTPS")
        yield port, mllp
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_serve_answers_https_only_to_clients_with_a_certificate_of_its_ca(served: tuple[int, int], pki: Pki) -> None:
    port, _ = served
    with httpx.Client(verify=_client_context(pki, pki.lab_a)) as client:
        for _ in range(6):  # new connections each time: both worker processes serve them
            response = client.get(f"https://localhost:{port}/healthz", headers={"Connection": "close"})
            assert response.status_code == 200 and response.json()["status"] == "ok"
    for cert in (None, pki.stranger, pki.expired):
        with pytest.raises(httpx.TransportError), httpx.Client(verify=_client_context(pki, cert)) as client:
            client.get(f"https://localhost:{port}/healthz")
    with pytest.raises(httpx.TransportError):  # the server is not trusted without the test CA
        httpx.get(f"https://localhost:{port}/healthz")
    with pytest.raises(httpx.TransportError):  # plain HTTP on the HTTPS port
        httpx.get(f"http://127.0.0.1:{port}/healthz")
    _assert_tls11_refused(port, pki)


def test_the_client_certificate_is_the_credential_through_the_auth_middleware(served: tuple[int, int],
                                                                               pki: Pki) -> None:
    port, _ = served
    translate = f"https://localhost:{port}/fhir/ConceptMap/$translate"
    params = {"system": "urn:oid:2.16.156.10011.2.3.3.11", "code": "K35.800x001"}
    with httpx.Client(verify=_client_context(pki, pki.lab_a)) as client:
        ok = client.get(translate, params=params)
        assert ok.status_code == 200, ok.text  # lab-a's certificate, mapped to system/$translate
        assert ok.json()["resourceType"] == "Parameters"
        refused = client.post(f"https://localhost:{port}/fhir/$validate", content=b"{}",
                              headers={"Content-Type": "application/fhir+json"})
        assert refused.status_code == 403 and "$validate" in refused.text  # the mapping's scopes, no more
    with httpx.Client(verify=_client_context(pki, pki.lab_b)) as client:  # valid, but not in HELIXGATE_MTLS_CLIENTS
        unknown = client.get(translate, params=params)
        assert unknown.status_code == 401 and "WWW-Authenticate" in unknown.headers


def test_serve_refuses_a_certificate_mapping_without_client_certificates(pki: Pki,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELIXGATE_MTLS_CLIENTS", json.dumps({pki.lab_a.subject: []}))
    port = free_port()
    assert main(["serve", "--port", str(port), "--tls-cert", pki.server.cert, "--tls-key", pki.server.key]) == 2
    assert "asks for none" in capsys.readouterr().out and _port_free(port)


def test_serve_takes_mllp_over_mutual_tls_from_allowed_partners_only(served: tuple[int, int], pki: Pki,
                                                                     redis_server: RedisServer) -> None:
    _, mllp = served
    stream = redis.Redis.from_url(redis_server.url)
    before = stream.xlen(INBOUND)
    lab_a = TlsMllpClient(mllp, pki, pki.lab_a)
    assert segments(lab_a.send(_from("GENLAB-A", 1)))["MSA"][1] == "AA"
    lab_a.close()
    lab_b = TlsMllpClient(mllp, pki, pki.lab_b)  # a valid certificate, but GENLAB-A is bound to lab-a's
    ack = segments(lab_b.send(_from("GENLAB-A", 2)))
    assert ack["MSA"][1] == "AR" and ack["ERR"][2] == "MSH^1^4"
    lab_b.close()
    assert _refused(mllp, pki, None)  # mTLS required: no certificate, no conversation
    assert stream.xlen(INBOUND) == before + 1
    # A peer that opens a connection and never says hello is cut off after the handshake timeout (2 s here).
    with socket.create_connection(("127.0.0.1", mllp), timeout=10) as silent:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            assert silent.recv(1024) == b""
        assert time.monotonic() - started < 8
    stream.close()
