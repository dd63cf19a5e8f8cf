"""Bundle.signature in JWS form (sigFormat application/jose): the signature is verified against the certificate in
its header, and the content it signs is compared with the Bundle (R4 Signature datatype and
http://hl7.org/fhir/R4/signatures.html; JSON canonicalization per http://hl7.org/fhir/R4/json.html#canonical:
properties in sorted order, no whitespace; the `#document` variant also leaves out Bundle.id and Bundle.meta)."""

from __future__ import annotations

import base64
import binascii
import warnings
from typing import Any

import orjson

from profiles.rules import rule

_HASHES = {"256": "SHA256", "384": "SHA384", "512": "SHA512"}


@rule("Bundle")
def bundle_signature(validator: Any, bundle: dict[str, Any], path: str, run: Any) -> None:
    sig = bundle.get("signature")
    if not isinstance(sig, dict) or sig.get("sigFormat") != "application/jose" or not isinstance(sig.get("data"), str):
        return
    where = f"{path}.signature"
    jws = _jws(sig["data"])
    if jws is None:
        run.add("error", "value", where, "The signature data is not a JWS (header.payload.signature)")
        return
    header_b64, payload_b64, signature_b64 = jws
    try:
        header = orjson.loads(_b64url(header_b64))
        signature = _b64url(signature_b64)
        payload = _b64url(payload_b64) if payload_b64 else None
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        run.add("error", "value", where, "The signature's JWS header, payload or signature is not base64url JSON")
        return
    if not isinstance(header, dict):
        run.add("error", "value", where, "The signature's JWS header is not a JSON object")
        return
    canon = str(header.get("canon") or _target_canonicalization(sig.get("targetFormat")) or "")
    leave_out = {"signature", "id", "meta"} if canon.endswith("#document") else {"signature"}
    content = {k: v for k, v in bundle.items() if k not in leave_out}
    if payload is not None:
        run.add("warning", "value", where, "The signature has a payload, but the signature should be a detached "
                "signature with no payload")
        try:
            signed = orjson.loads(payload)
        except orjson.JSONDecodeError:
            signed = None
        if signed != content:
            run.add("error", "value", where, "The signature cannot be valid because the content it signs is not the "
                    f"same as the Bundle's content (canonicalization {canon or 'json'})")
    key = _certificate_key(header)
    if key is None:
        run.add("warning", "value", where, "The signature's header has no usable certificate (x5c), so the signature "
                "cannot be verified")
        return
    if payload_b64:
        signed_part = payload_b64
    else:  # detached (RFC 7515 appendix F): what was signed is the Bundle's canonical JSON
        try:
            signed_part = _b64url_encode(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits, which JSON numbers in FHIR cannot carry
            run.add("error", "value", where, "The Bundle's content cannot be canonicalized as JSON, so the "
                    "signature cannot be verified")
            return
    signing_input = f"{header_b64}.{signed_part}".encode()
    verified = _verify(key, str(header.get("alg", "")), signature, signing_input)
    if verified is None:
        run.add("warning", "not-supported", where, f"The signature algorithm {header.get('alg')!r} is not supported, "
                "so the signature was not verified")
    elif not verified:
        run.add("error", "value", where, "The signature did not verify against the certificate in its header")
    else:
        run.add("information", "informational", where, "The signature verified against the certificate in its header "
                "(the certificate's trust was not checked)")


def _jws(data: str) -> tuple[str, str, str] | None:
    text = data.strip()
    if text.count(".") != 2:  # not native JWS: base64 of it, as Signature.data (base64Binary) requires
        try:
            text = base64.b64decode(text, validate=True).decode("ascii").strip()
        except (binascii.Error, ValueError):
            return None
    parts = text.split(".")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def _target_canonicalization(target_format: Any) -> str | None:
    for param in str(target_format or "").split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name == "canonicalization":
            return value
    return None


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _certificate_key(header: dict[str, Any]) -> Any:
    chain = header.get("x5c")
    if isinstance(chain, str):
        chain = [chain]
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        return None
    from cryptography import x509  # only Bundles with signatures pay for the import

    try:
        with warnings.catch_warnings():  # e.g. a non-positive serial number: still a usable key
            warnings.simplefilter("ignore")
            return x509.load_der_x509_certificate(base64.b64decode(chain[0])).public_key()
    except (ValueError, binascii.Error):
        return None


def _verify(key: Any, alg: str, signature: bytes, signing_input: bytes) -> bool | None:
    """True/False for RS*, PS* and ES* JWS algorithms (RFC 7518 §3); None for others."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    digest = _HASHES.get(alg[2:])
    if digest is None:
        return None
    algorithm = getattr(hashes, digest)()
    try:
        if alg.startswith(("RS", "PS")) and isinstance(key, rsa.RSAPublicKey):
            pad = padding.PKCS1v15() if alg.startswith("RS") else padding.PSS(
                mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
            key.verify(signature, signing_input, pad, algorithm)
        elif alg.startswith("ES") and isinstance(key, ec.EllipticCurvePublicKey):
            half = len(signature) // 2  # JWS carries r||s; the library wants DER
            der = utils.encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                             int.from_bytes(signature[half:], "big"))
            key.verify(der, signing_input, ec.ECDSA(algorithm))
        else:
            return None
    except InvalidSignature:
        return False
    return True
