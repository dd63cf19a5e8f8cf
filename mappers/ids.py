"""Deterministic resource ids: UUIDv5 of business keys, so the same input always yields the same ids."""

from __future__ import annotations

import uuid
from hashlib import sha1

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:helixgate")
_NAMESPACE = NAMESPACE.bytes
# RFC 4122 §4.1.1: the variant bits 10 over the first hex digit of clock_seq_hi (digit 16 of the hash)
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def resource_id(resource_type: str, *key: str) -> str:
    """UUIDv5 of the resource type and its business key parts (joined with '|').

    RFC 4122 §4.3 written out (SHA-1 of namespace and name; version digit 5, variant bits 10): what uuid.uuid5
    gives, without building a UUID object for each of a conversion's many ids."""
    h = sha1(_NAMESPACE + "|".join((resource_type, *key)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
