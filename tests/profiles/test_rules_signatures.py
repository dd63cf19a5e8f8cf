"""Bundle.signature (JWS): verified against the certificate in its header; the signed content compared with the
Bundle. Keys and certificates are made here, so each verdict is known."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _cert(key: Any) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _bundle() -> dict[str, Any]:
    return {"resourceType": "Bundle", "id": "b1", "type": "collection", "timestamp": "2024-01-01T00:00:00Z",
            "entry": [{"fullUrl": "urn:uuid:6f1c1f0e-0000-4000-8000-000000000001",
                       "resource": {"resourceType": "Patient", "id": "p", "active": True}}]}


def _sign(bundle: dict[str, Any], alg: str = "RS256", detached: bool = True, document: bool = False,
          content: dict[str, Any] | None = None) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg.startswith("RS") else \
        ec.generate_private_key(ec.SECP256R1())
    leave_out = {"id", "meta", "signature"} if document else {"signature"}
    signed = content if content is not None else {k: v for k, v in bundle.items() if k not in leave_out}
    canon = "http://hl7.org/fhir/canonicalization/json" + ("#document" if document else "")
    header = _b64url(orjson.dumps({"alg": alg, "x5c": [_cert(key)], "canon": canon}))
    payload = _b64url(orjson.dumps(signed, option=orjson.OPT_SORT_KEYS))
    data = f"{header}.{payload}".encode()
    if alg.startswith("RS"):
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    jws = f"{header}.{'' if detached else payload}.{_b64url(sig)}"
    bundle = dict(bundle)
    bundle["signature"] = {
        "type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}],
        "when": "2024-01-01T00:00:00Z", "who": {"display": "Signer"}, "sigFormat": "application/jose",
        "data": base64.b64encode(jws.encode()).decode()}
    return bundle


def _issues(validator, bundle: dict[str, Any]) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(i.severity, i.message) for i in validator.validate(bundle) if (i.expression or "") == "Bundle.signature"]


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_detached_signature_verifies(validator, alg: str) -> None:  # type: ignore[no-untyped-def]
    issues = _issues(validator, _sign(_bundle(), alg))
    assert [s for s, _ in issues] == ["information"], issues
    assert "verified" in issues[0][1]


def test_changed_content_fails_verification(validator) -> None:  # type: ignore[no-untyped-def]
    bundle = _sign(_bundle())
    bundle["entry"][0]["resource"]["active"] = False
    issues = _issues(validator, bundle)
    assert ("error", "The signature did not verify against the certificate in its header") in issues


def test_document_canonicalization_leaves_out_id_and_meta(validator) -> None:  # type: ignore[no-untyped-def]
    bundle = _sign(_bundle(), document=True)
    bundle["id"] = "renamed"
    bundle["meta"] = {"versionId": "2"}
    assert [s for s, _ in _issues(validator, bundle)] == ["information"]


def test_embedded_payload_must_be_the_bundle_content(validator) -> None:  # type: ignore[no-untyped-def]
    ok = _issues(validator, _sign(_bundle(), detached=False))
    assert [s for s, _ in ok] == ["warning", "information"]  # a payload should be detached
    other = json.loads(json.dumps(_bundle()))
    other["type"] = "document"
    bad = _issues(validator, _sign(_bundle(), detached=False, content={k: v for k, v in other.items()
                                                                        if k != "signature"}))
    assert any(s == "error" and "not the same as the Bundle's content" in m for s, m in bad), bad


def test_not_a_jws(validator) -> None:  # type: ignore[no-untyped-def]
    bundle = _sign(_bundle())
    bundle["signature"]["data"] = base64.b64encode(b"not a signature").decode()
    assert any(s == "error" and "not a JWS" in m for s, m in _issues(validator, bundle))


def test_signature_without_certificate_or_with_unsupported_algorithm(validator) -> None:  # type: ignore[no-untyped-def]
    bundle = _sign(_bundle())
    header, payload, sig = base64.b64decode(bundle["signature"]["data"]).decode().split(".")
    x5c = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["x5c"]
    for changed, fragment in (({"alg": "RS256"}, "no usable certificate"),
                              ({"alg": "HS256", "x5c": x5c}, "'HS256' is not supported")):
        jws = f"{_b64url(orjson.dumps(changed))}.{payload}.{sig}"
        bundle["signature"]["data"] = base64.b64encode(jws.encode()).decode()
        issues = _issues(validator, bundle)
        assert [s for s, _ in issues] == ["warning"] and fragment in issues[0][1], issues


def test_content_that_cannot_be_canonicalized_is_reported(validator) -> None:  # type: ignore[no-untyped-def]
    bundle = _sign(_bundle())
    bundle["entry"][0]["resource"] = {"resourceType": "Basic", "code": {"text": "x"}, "extension": [
        {"url": "http://example.org/big", "valueDecimal": 10**30}]}  # a Python int JSON in FHIR cannot carry
    issues = _issues(validator, bundle)
    assert any(s == "error" and "cannot be canonicalized" in m for s, m in issues), issues
