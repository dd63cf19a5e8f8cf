"""Client certificates as identities: what a verified TLS peer certificate says, and which Principal it is.

Contract for the auth middleware:

    clients = MtlsClients.from_env()          # once, at start-up (SettingsError names a bad HELIXGATE_MTLS_CLIENTS)
    principal = clients.principal(client_certificate(scope))   # per request: Principal(via="mtls") or None

`client_certificate(scope)` is the certificate the client presented on this connection *and the TLS handshake
verified* against HELIXGATE_TLS_CLIENT_CA (or None: plain HTTP, no certificate sent, mTLS off). `helixgate serve`
puts it in the scope (gateway.cli.uvicorn_config), beside the ASGI TLS extension `scope["extensions"]["tls"]`; under
another ASGI server that fills that extension, the first certificate of `client_cert_chain` is read instead.
A certificate that is not in HELIXGATE_MTLS_CLIENTS maps to no Principal: a valid certificate proves who the peer
is, the mapping decides what it may do (no scopes by default).

HELIXGATE_MTLS_CLIENTS is JSON, inline or in a file (its path): certificate → scopes, either a list of scopes or
{"client": name, "scopes": [...]}. A certificate is named by its subject as RFC 4514 text (`CN=lab-a,O=Genlab,C=DE`,
as `openssl x509 -noout -subject -nameopt RFC2253` prints it; OpenSSL's default `C = DE, O = Genlab, CN = lab-a`
names the same subject: the attributes are compared, not their order) or by its SHA-256 fingerprint (`sha256:` +
hex, colons allowed, as `openssl x509 -noout -fingerprint -sha256` prints it). The client name defaults to the
subject's CN (else the subject).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from gateway.auth.principal import Principal
from gateway.settings import SettingsError

CERT_KEY = "helixgate.client_cert"  # where the server puts the verified peer's CertIdentity in the ASGI scope


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """A verified client certificate, reduced to what identifies its holder."""

    subject: x509.Name
    subject_text: str  # RFC 4514
    subject_key: tuple[tuple[str, str], ...]  # its attributes (OID, value), sorted: what configuration is matched on
    common_name: str | None
    fingerprint: str  # "sha256:" + lowercase hex of the DER certificate
    dns_names: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    issuer_text: str = ""

    @property
    def name(self) -> str:
        """The CN, or the whole subject when it has none."""
        return self.common_name or self.subject_text


def identity_from_der(der: bytes) -> CertIdentity:
    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        dns, uris = (), ()
    cn = cns[0].value if cns else None
    return CertIdentity(subject=cert.subject, subject_text=cert.subject.rfc4514_string(),
                        subject_key=_subject_key(cert.subject),
                        common_name=cn if isinstance(cn, str) else None,
                        fingerprint="sha256:" + hashlib.sha256(der).hexdigest(), dns_names=dns, uris=uris,
                        issuer_text=cert.issuer.rfc4514_string())


def client_certificate(scope: Any) -> CertIdentity | None:
    """The verified client certificate of the connection an ASGI scope (or Starlette Request) came on, or None.

    Only what the TLS handshake verified counts: request headers (such as a proxy's certificate header) are never
    read."""
    raw = getattr(scope, "scope", scope)
    identity = raw.get(CERT_KEY)
    if identity is not None:
        return identity  # type: ignore[no-any-return]
    tls = (raw.get("extensions") or {}).get("tls")
    if not tls or tls.get("client_cert_error") is not None or not tls.get("client_cert_chain"):
        return None
    import ssl

    return identity_from_der(ssl.PEM_cert_to_DER_cert(next(iter(tls["client_cert_chain"]))))


def _subject_key(name: x509.Name) -> tuple[tuple[str, str], ...]:
    """A subject's attributes in a canonical order: `CN=lab-a,O=Genlab,C=DE` (RFC 4514 order) and OpenSSL's default
    `C = DE, O = Genlab, CN = lab-a` name the same certificate subject."""
    return tuple(sorted((a.oid.dotted_string, str(a.value)) for a in name))


_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


@dataclass(frozen=True, slots=True)
class CertMatch:
    """A certificate named in configuration: by subject (its attributes, in any order) or SHA-256 fingerprint."""

    subject: tuple[tuple[str, str], ...] | None = None
    fingerprint: str | None = None

    @classmethod
    def parse(cls, text: str, setting: str) -> CertMatch:
        text = text.strip()
        if text.lower().startswith("sha256:"):
            digest = text[7:].replace(":", "").lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise SettingsError(f"{setting}: {text!r} is not a SHA-256 fingerprint (sha256: and 64 hex digits)")
            return cls(fingerprint="sha256:" + digest)
        # Spaces around '=' and ',' (as OpenSSL prints subjects by default) are not part of RFC 4514: dropped.
        tidy = ",".join("=".join(p.strip() for p in rdn.split("=", 1)) for rdn in _UNESCAPED_COMMA.split(text))
        try:
            name = x509.Name.from_rfc4514_string(tidy)
        except ValueError:
            raise SettingsError(f"{setting}: {text!r} is not a certificate subject in RFC 4514 form such as "
                                "CN=lab-a,O=Genlab,C=DE") from None
        if not list(name):
            raise SettingsError(f"{setting}: an empty certificate subject matches nothing")
        return cls(subject=_subject_key(name))

    def matches(self, identity: CertIdentity | None) -> bool:
        if identity is None:
            return False
        if self.fingerprint is not None:
            return self.fingerprint == identity.fingerprint
        return self.subject == identity.subject_key


@dataclass(frozen=True, slots=True)
class _Client:
    match: CertMatch
    client: str | None
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MtlsClients:
    """Certificate → client name and scopes (HELIXGATE_MTLS_CLIENTS)."""

    clients: tuple[_Client, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, name: str = "HELIXGATE_MTLS_CLIENTS") -> MtlsClients:
        env = os.environ if env is None else env
        return cls.parse(env.get(name) or "", name)

    @classmethod
    def parse(cls, raw: str, setting: str = "HELIXGATE_MTLS_CLIENTS") -> MtlsClients:
        doc = json_or_file(raw, setting)
        if doc is None:
            return cls()
        if not isinstance(doc, dict):
            raise SettingsError(f"{setting} must be a JSON object of certificate subject → scopes")
        out: list[_Client] = []
        for key, value in doc.items():
            match = CertMatch.parse(key, setting)
            client: str | None = None
            if isinstance(value, dict):
                client = value.get("client")
                if client is not None and (not isinstance(client, str) or not client.strip()):
                    raise SettingsError(f"{setting}[{key!r}].client must be a non-empty string")
                value = value.get("scopes", [])
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise SettingsError(f"{setting}[{key!r}] must be a list of scopes or {{\"client\": name, "
                                    "\"scopes\": [...]}}")
            out.append(_Client(match, client, tuple(value)))
        # Fingerprints first: a pinned certificate wins over a subject another certificate may share.
        out.sort(key=lambda c: c.match.fingerprint is None)
        return cls(tuple(out))

    def __bool__(self) -> bool:
        return bool(self.clients)

    def principal(self, identity: CertIdentity | None) -> Principal | None:
        """The Principal of a verified certificate (via "mtls"), or None: no certificate, or one not configured."""
        if identity is None:
            return None
        for entry in self.clients:
            if entry.match.matches(identity):
                return Principal(client=entry.client or identity.name, via="mtls", scopes=entry.scopes,
                                 claims={"cert_subject": identity.subject_text, "cert_sha256": identity.fingerprint})
        return None


def json_or_file(raw: str, setting: str) -> Any:
    """A setting holding JSON inline (starting with { or [) or the path of a JSON file; None when empty."""
    raw = raw.strip()
    if not raw:
        return None
    if raw[0] in "{[":
        text, where = raw.encode(), setting
    else:
        try:
            with open(raw, "rb") as f:
                text = f.read()
        except OSError as e:
            raise SettingsError(f"{setting}: cannot read {raw}: {e.strerror or e}") from None
        where = f"{setting} ({raw})"
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise SettingsError(f"{where} is not JSON ({e})") from None
