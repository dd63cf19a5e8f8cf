"""Deterministic resource ids: UUIDv5 of business keys, so the same input always yields the same ids."""

from __future__ import annotations

import uuid
from hashlib import sha1

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:helixgate")
_NAMESPACE = NAMESPACE.bytes


def resource_id(resource_type: str, *key: str) -> str:
    """UUIDv5 of the resource type and its business key parts (joined with '|').

    RFC 4122 §4.3 written out (SHA-1 of namespace and name, version and variant bits set): what uuid.uuid5 gives,
    without building a UUID object for each of a conversion's many ids."""
    digest = bytearray(sha1(_NAMESPACE + "|".join((resource_type, *key)).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
