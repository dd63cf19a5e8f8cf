"""TLS for the HTTP and MLLP listeners: settings, the server SSLContext, and what a connection tells the app.

Both listeners take the same settings under their own prefix (HELIXGATE_TLS_* for HTTP, HELIXGATE_MLLP_TLS_* for
MLLP): a certificate chain and key (PEM), and optionally the CA(s) whose client certificates are accepted (mutual
TLS, `optional` or `required`). TLS 1.2 is the lowest version offered and TLS 1.2 suites are limited to ECDHE with
AEAD ciphers (BCP 195, RFC 9325 §4.1-4.2); TLS 1.3 suites are OpenSSL's defaults, all AEAD.

`check` reads the files before anything listens, so an unreadable file, one that is not PEM, or a key that does not
belong to the certificate stops `helixgate serve` with a message naming the file.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.settings import SettingsError

# RFC 9325 §4.2: TLS 1.2 with forward secrecy and authenticated encryption only.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
CLIENT_CERT_MODES = ("none", "optional", "required")
HANDSHAKE_TIMEOUT = 10.0  # seconds; asyncio's default (60 s) lets a silent peer hold a socket far longer


class TlsError(ValueError):
    """A certificate, key or CA file cannot be used; the message names the file and says why."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """One listener's TLS settings (picklable: `--workers` processes build their SSLContext from it)."""

    cert: str  # PEM: the server certificate, then any intermediates
    key: str = ""  # PEM private key, unencrypted; "": the key is in the cert file
    client_ca: str = ""  # PEM CA certificate(s) that issue client certificates; "": no client certificates asked
    client_cert: str = "none"  # none | optional | required (a client CA without a mode means required)
    handshake_timeout: float = HANDSHAKE_TIMEOUT  # seconds a connection may take to finish the handshake (MLLP)

    @classmethod
    def from_env(cls, prefix: str, env: Mapping[str, str] | None = None) -> TlsConfig | None:
        """`{prefix}_CERT`, `_KEY`, `_CLIENT_CA`, `_CLIENT_CERT` (optional|required), `_HANDSHAKE_TIMEOUT_MS`;
        None when `{prefix}_CERT` is not set. Raises SettingsError for a key or CA without a certificate."""
        env = os.environ if env is None else env
        cert = env.get(f"{prefix}_CERT") or ""
        key = env.get(f"{prefix}_KEY") or ""
        client_ca = env.get(f"{prefix}_CLIENT_CA") or ""
        mode = (env.get(f"{prefix}_CLIENT_CERT") or "").strip().lower()
        if not cert:
            for name, value in ((f"{prefix}_KEY", key), (f"{prefix}_CLIENT_CA", client_ca),
                                (f"{prefix}_CLIENT_CERT", mode)):
                if value:
                    raise SettingsError(f"{name} is set but {prefix}_CERT is not: TLS needs a server certificate")
            return None
        raw_timeout = env.get(f"{prefix}_HANDSHAKE_TIMEOUT_MS") or ""
        try:
            timeout = int(raw_timeout) / 1000 if raw_timeout else HANDSHAKE_TIMEOUT
        except ValueError:
            raise SettingsError(f"{prefix}_HANDSHAKE_TIMEOUT_MS={raw_timeout!r} is not an integer") from None
        if timeout <= 0:
            raise SettingsError(f"{prefix}_HANDSHAKE_TIMEOUT_MS must be positive")
        return cls.build(cert, key, client_ca, mode, timeout, f"{prefix}_CLIENT_CERT")

    @classmethod
    def build(cls, cert: str, key: str = "", client_ca: str = "", mode: str = "",
              handshake_timeout: float = HANDSHAKE_TIMEOUT, mode_name: str = "client certificate mode") -> TlsConfig:
        """A config from explicit values (`mode` "" → required with a client CA, none without)."""
        mode = mode or ("required" if client_ca else "none")
        if mode not in CLIENT_CERT_MODES:
            raise SettingsError(f"{mode_name}={mode!r}: use optional or required")
        if mode != "none" and not client_ca:
            raise SettingsError(f"{mode_name}={mode} needs the CA that issues client certificates (…_CLIENT_CA)")
        if client_ca and mode == "none":
            raise SettingsError(f"{mode_name}=none contradicts a client CA; use optional or required")
        return cls(cert, key, client_ca, mode, handshake_timeout)

    @property
    def mutual(self) -> bool:
        return self.client_cert != "none"


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """The server SSLContext for `config`; raises TlsError naming the file that cannot be used."""
    check(config)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(config.cert, config.key or None)
    except ssl.SSLError as e:
        raise TlsError(f"the TLS key {config.key or config.cert} does not belong to the certificate {config.cert} "
                       f"({e.reason or e})") from None
    if config.mutual:
        try:
            ctx.load_verify_locations(cafile=config.client_ca)
        except ssl.SSLError as e:
            raise TlsError(f"the client CA file {config.client_ca} cannot be used ({e.reason or e})") from None
        ctx.verify_mode = ssl.CERT_REQUIRED if config.client_cert == "required" else ssl.CERT_OPTIONAL
    return ctx


def check(config: TlsConfig) -> None:
    """Read each file and say which one is unusable (TlsError): missing or unreadable, not PEM, an encrypted or
    unreadable key, a certificate that is not the key's."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    cert_pem = _read(config.cert, "certificate")
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TlsError(f"the TLS certificate {config.cert} holds no PEM certificate") from None
    key_path = config.key or config.cert
    key_pem = cert_pem if not config.key else _read(config.key, "key")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise TlsError(f"the TLS key {key_path} is encrypted; give an unencrypted key (readable by this user "
                       "only)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsError(f"the TLS key {key_path} holds no PEM private key") from None
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != certs[0].public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo):
        raise TlsError(f"the TLS key {key_path} does not belong to the certificate {config.cert} (the first "
                       "certificate in the file must be the server's)")
    if config.client_ca:
        try:
            x509.load_pem_x509_certificates(_read(config.client_ca, "client CA"))
        except ValueError:
            raise TlsError(f"the client CA file {config.client_ca} holds no PEM certificate") from None


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TlsError(f"cannot read the TLS {what} {path}: {e.strerror or e}") from None


_suite_ids: dict[str, int] = {}


def _cipher_suite(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> int | None:
    """The IANA number of the negotiated suite (OpenSSL's cipher id carries it in its low 16 bits)."""
    cipher = ssl_object.cipher()
    if cipher is None:
        return None
    if not _suite_ids:
        _suite_ids.update((c["name"], c["id"] & 0xFFFF) for c in ssl_object.context.get_ciphers())
    return _suite_ids.get(cipher[0])


_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket, client_der: bytes | None = None,
                  client_name: str | None = None) -> dict[str, Any]:
    """The ASGI TLS extension (`scope["extensions"]["tls"]`, asgiref "TLS Extension") of a finished handshake.
    `client_der`/`client_name`: the verified client certificate and its subject (RFC 4514); only the peer's own
    certificate, as Python < 3.13 does not expose the verified chain."""
    chain = [ssl.DER_cert_to_PEM_cert(client_der)] if client_der else []
    return {"server_cert": None, "client_cert_chain": chain, "client_cert_name": client_name,
            "client_cert_error": None,
            "tls_version": _VERSIONS.get(ssl_object.version() or ""), "cipher_suite": _cipher_suite(ssl_object)}
