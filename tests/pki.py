"""A throw-away PKI for the TLS tests, made with `cryptography`: a CA, a server certificate for 127.0.0.1 and
localhost, and client certificates (good ones, one from another CA, an expired one)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    cert: str  # PEM file paths
    key: str
    subject: str  # RFC 4514
    fingerprint: str  # sha256:hex


@dataclass(frozen=True)
class Pki:
    ca: str  # the CA certificate (PEM) that issued the server and the good client certificates
    other_ca: str
    server: Pair
    lab_a: Pair  # CN=lab-a,O=Genlab,C=DE
    lab_b: Pair  # CN=lab-b,O=Genlab,C=DE
    stranger: Pair  # CN=lab-a,O=Genlab,C=DE as well, but issued by the other CA
    expired: Pair  # CN=lab-a,O=Genlab,C=DE from the CA, no longer valid


def _name(cn: str, org: str = "Genlab") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return Pair(str(cert_path), str(key_path), cert.subject.rfc4514_string(),
                "sha256:" + cert.fingerprint(hashes.SHA256()).hex())


def _ca(cn: str, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn, "Helixgate Test")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], subject: x509.Name, *, server: bool,
          not_before: datetime.datetime, not_after: datetime.datetime) -> tuple[x509.Certificate,
                                                                               ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert, ca_key = ca
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName(f"{subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value}.example")]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = {"not_before": now - datetime.timedelta(hours=1), "not_after": now + datetime.timedelta(days=7)}
    ca, other = _ca("Helixgate Test CA", now), _ca("Some Other CA", now)
    (folder / "ca.crt").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    (folder / "other-ca.crt").write_bytes(other[0].public_bytes(serialization.Encoding.PEM))
    return Pki(
        ca=str(folder / "ca.crt"), other_ca=str(folder / "other-ca.crt"),
        server=_write(folder, "server", *_leaf(ca, _name("helixgate.test"), server=True, **valid)),
        lab_a=_write(folder, "lab-a", *_leaf(ca, _name("lab-a"), server=False, **valid)),
        lab_b=_write(folder, "lab-b", *_leaf(ca, _name("lab-b"), server=False, **valid)),
        stranger=_write(folder, "stranger", *_leaf(other, _name("lab-a"), server=False, **valid)),
        expired=_write(folder, "expired", *_leaf(ca, _name("lab-a"), server=False,
                                                 not_before=now - datetime.timedelta(days=10),
                                                 not_after=now - datetime.timedelta(days=1))),
    )
