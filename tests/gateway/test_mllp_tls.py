"""MLLP over TLS and mutual TLS with a test CA made here, against the real listener and a real Redis: ACK after XADD
over TLS, client certificates refused (none, other CA, expired), the partner allow-list (MSH-4 and certificate
subject → AR, nothing queued), and handshakes that never finish do not hold up other senders."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.mllp.framing import Frame, Framer, frame
from gateway.mllp.partners import Partners
from gateway.settings import SettingsError
from gateway.tls import TlsConfig
from gateway.workers.streams import INBOUND
from tests.conftest import RedisServer
from tests.gateway.test_mllp import Listener
from tests.pki import Pair, Pki, make_pki
from tests.upstream.engine import segments, unique_message
from tests.upstream.fixtures import wait_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def stream(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(INBOUND)
    yield client
    client.delete(INBOUND)
    client.close()


class TlsMllpClient:
    """A blocking MLLP client over TLS (verifying the listener against the test CA), optionally with a client
    certificate. Construction does the handshake."""

    def __init__(self, port: int, pki: Pki, cert: Pair | None = None, timeout: float = 10.0) -> None:
        ctx = ssl.create_default_context(cafile=pki.ca)
        if cert is not None:
            ctx.load_cert_chain(cert.cert, cert.key)
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.framer = Framer()

    def send(self, message: bytes) -> bytes:
        self.sock.sendall(frame(message))
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            got = [e.data for e in self.framer.feed(chunk) if isinstance(e, Frame)]
            if got:
                return got[0]

    def close(self) -> None:
        self.sock.close()


def _from(facility: str, n: int) -> bytes:
    """Sample 01 in original mode (AA/AE/AR) with MSH-4's namespace id replaced by `facility`."""
    return unique_message(n, tag=facility[:4], original_mode=True).replace(b"|GENLAB-A^", f"|{facility}^".encode(), 1)


def _refused(port: int, pki: Pki, cert: Pair | None) -> bool:
    """Whether the listener refuses a TLS connection with `cert` (at the handshake or, under TLS 1.3, on the first
    read: the server checks the client certificate after the client has finished its part)."""
    try:
        client = TlsMllpClient(port, pki, cert, timeout=5)
        try:
            client.send(_from("GENLAB-A", 999))
        finally:
            client.close()
    except (ssl.SSLError, ConnectionError):
        return True
    return False


def test_mllp_over_tls_acknowledges_after_the_message_is_stored(redis_server: RedisServer, stream, pki: Pki) -> None:
    listener = Listener(redis_server.url, tls=TlsConfig.build(pki.server.cert, pki.server.key))
    try:
        client = TlsMllpClient(listener.port, pki)
        for n in range(3):
            ack = segments(client.send(_from("GENLAB-A", n)))
            assert ack["MSA"][1] == "AA"
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        client.close()
        entries = stream.xrange(INBOUND)
        assert len(entries) == 3 and entries[0][1][b"facility"] == b"GENLAB-A"
        # Plain MLLP to the TLS port gets no ACK and stores nothing.
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as plain:
            plain.sendall(frame(_from("GENLAB-A", 9)))
            with contextlib.suppress(OSError):
                assert b"MSA" not in plain.recv(65536)
        assert stream.xlen(INBOUND) == 3
    finally:
        listener.close()


def test_mutual_tls_takes_only_certificates_of_the_configured_ca(redis_server: RedisServer, stream, pki: Pki) -> None:
    listener = Listener(redis_server.url, tls=TlsConfig.build(pki.server.cert, pki.server.key, pki.ca, "required"))
    try:
        assert _refused(listener.port, pki, None)  # no certificate
        assert _refused(listener.port, pki, pki.stranger)  # same subject, another CA
        assert _refused(listener.port, pki, pki.expired)
        assert stream.xlen(INBOUND) == 0
        assert listener.server.stats["connections"] == 0  # refused at the handshake: never counted as open
        client = TlsMllpClient(listener.port, pki, pki.lab_a)
        assert segments(client.send(_from("GENLAB-A", 1)))["MSA"][1] == "AA"
        client.close()
        assert stream.xlen(INBOUND) == 1
    finally:
        listener.close()


def test_partner_allow_list_answers_ar_to_unknown_senders_and_queues_nothing(redis_server: RedisServer, stream,
                                                                             pki: Pki) -> None:
    partners = Partners.parse(f'{{"GENLAB-A": "{pki.lab_a.subject}", "HOSP-B": null, '
                              f'"*": ["{pki.lab_b.fingerprint}"]}}')
    listener = Listener(redis_server.url, tls=TlsConfig.build(pki.server.cert, pki.server.key, pki.ca, "optional"),
                        partners=partners)
    try:
        lab_a = TlsMllpClient(listener.port, pki, pki.lab_a)
        assert segments(lab_a.send(_from("GENLAB-A", 1)))["MSA"][1] == "AA"
        assert segments(lab_a.send(_from("HOSP-B", 2)))["MSA"][1] == "AA"  # HOSP-B is bound to no certificate
        ack = segments(lab_a.send(_from("UNKNOWN-LAB", 3)))  # a facility not in the list
        assert ack["MSA"][1] == "AR" and ack["ERR"][2] == "MSH^1^4" and ack["ERR"][3].startswith("103^")
        assert "not accepted" in ack["MSA"][3]
        assert "CN=" not in ack["MSA"][3]  # the sender is not told which certificate it would need
        lab_a.close()
        anonymous = TlsMllpClient(listener.port, pki)  # no certificate: GENLAB-A is bound to lab-a's
        assert segments(anonymous.send(_from("GENLAB-A", 4)))["MSA"][1] == "AR"
        assert segments(anonymous.send(_from("HOSP-B", 5)))["MSA"][1] == "AA"
        anonymous.close()
        hub = TlsMllpClient(listener.port, pki, pki.lab_b)  # pinned by fingerprint under "*": any facility
        assert segments(hub.send(_from("UNKNOWN-LAB", 6)))["MSA"][1] == "AA"
        assert segments(hub.send(_from("GENLAB-A", 7)))["MSA"][1] == "AA"
        hub.close()
        stored = [e[1][b"control"].decode() for e in stream.xrange(INBOUND)]
        assert len(stored) == 5 and not any(c.endswith(("00003", "00004")) for c in stored)
        assert listener.server.stats["unknown_sender"] == 2
        # Enhanced mode: the refusal is a commit reject (CR), as for any other AR.
        anonymous = TlsMllpClient(listener.port, pki)
        assert segments(anonymous.send(unique_message(8, tag="ENH")))["MSA"][1] == "CR"
        anonymous.close()
        assert stream.xlen(INBOUND) == 5
    finally:
        listener.close()


def test_facility_allow_list_works_without_tls_and_no_list_changes_nothing(redis_server: RedisServer, stream) -> None:
    from tests.upstream.engine import MllpClient

    listener = Listener(redis_server.url, partners=Partners.parse('{"GENLAB-A": null}'))
    try:
        client = MllpClient(listener.port)
        assert segments(client.send(_from("GENLAB-A", 1)))["MSA"][1] == "AA"
        assert segments(client.send(_from("OTHER-LAB", 2)))["MSA"][1] == "AR"
        client.close()
    finally:
        listener.close()
    open_listener = Listener(redis_server.url)
    try:
        client = MllpClient(open_listener.port)
        assert segments(client.send(_from("OTHER-LAB", 3)))["MSA"][1] == "AA"
        client.close()
    finally:
        open_listener.close()
    assert stream.xlen(INBOUND) == 2


def test_handshakes_that_never_finish_do_not_hold_up_senders_and_are_cut_off(redis_server: RedisServer, stream,
                                                                           pki: Pki) -> None:
    tls = TlsConfig.build(pki.server.cert, pki.server.key, pki.ca, "required", handshake_timeout=0.5)
    listener = Listener(redis_server.url, tls=tls, max_connections=5, max_connections_per_peer=2)
    silent: list[socket.socket] = []
    try:
        for _ in range(20):  # more than the connection caps: a handshake in progress holds no slot
            silent.append(socket.create_connection(("127.0.0.1", listener.port), timeout=5))
        junk = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        junk.sendall(frame(_from("GENLAB-A", 1)))  # plain MLLP where a ClientHello belongs
        silent.append(junk)
        started = time.monotonic()
        for n in range(3):  # one sender after another, each in its own connection, while those hang
            client = TlsMllpClient(listener.port, pki, pki.lab_a)
            assert segments(client.send(_from("GENLAB-A", 10 + n)))["MSA"][1] == "AA"
            client.close()
        assert time.monotonic() - started < 2.0

        def all_closed() -> bool:
            for s in silent:
                s.settimeout(0.05)
                try:
                    if s.recv(1024) != b"":
                        return False
                except TimeoutError:
                    return False
                except OSError:
                    pass
            return True

        wait_for(all_closed, 10, what="the listener to close connections stuck in the handshake")
        assert time.monotonic() - started < 8
        assert stream.xlen(INBOUND) == 3
    finally:
        for s in silent:
            s.close()
        listener.close()


def test_partner_and_tls_settings_are_checked(tmp_path: Path, pki: Pki) -> None:
    for raw, says in (('["GENLAB-A"]', "JSON object"), ('{"*": null}', "allow everyone"),
                      ('{"A": "not a subject"}', "RFC 4514"), ('{"A": "sha256:12ab"}', "SHA-256"),
                      ('{"A": 5}', "certificate subject"), ("{oops", "not JSON"),
                      (str(tmp_path / "missing.json"), "cannot read")):
        with pytest.raises(SettingsError, match=says):
            Partners.parse(raw)
    path = tmp_path / "partners.json"
    pinned = "sha256:" + ":".join(pki.lab_b.fingerprint[7:][i:i + 2] for i in range(0, 64, 2)).upper()
    path.write_text(f'{{"GENLAB-A": ["{pki.lab_a.subject}", "{pinned}"]}}')
    partners = Partners.from_env({"HELIXGATE_MLLP_PARTNERS": str(path)})
    assert partners is not None and len(partners.facilities["GENLAB-A"]) == 2
    assert Partners.from_env({}) is None
    env = {"HELIXGATE_MLLP_TLS_CERT": pki.server.cert, "HELIXGATE_MLLP_TLS_KEY": pki.server.key,
           "HELIXGATE_MLLP_TLS_CLIENT_CA": pki.ca, "HELIXGATE_MLLP_TLS_HANDSHAKE_TIMEOUT_MS": "2500"}
    config = TlsConfig.from_env("HELIXGATE_MLLP_TLS", env)
    assert config is not None and config.client_cert == "required" and config.handshake_timeout == 2.5
    with pytest.raises(SettingsError, match="HELIXGATE_MLLP_TLS_CERT is not"):
        TlsConfig.from_env("HELIXGATE_MLLP_TLS", {"HELIXGATE_MLLP_TLS_KEY": pki.server.key})
    with pytest.raises(SettingsError, match="optional or required"):
        TlsConfig.from_env("HELIXGATE_MLLP_TLS", {**env, "HELIXGATE_MLLP_TLS_CLIENT_CERT": "sometimes"})
    with pytest.raises(SettingsError, match="needs the CA"):
        TlsConfig.build(pki.server.cert, pki.server.key, "", "required")
