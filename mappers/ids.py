"""Deterministic resource ids: UUIDv5 of business keys, so the same input always yields the same ids."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:helixgate")


def resource_id(resource_type: str, *key: str) -> str:
    """UUIDv5 of the resource type and its business key parts (joined with '|')."""
    return str(uuid.uuid5(NAMESPACE, "|".join((resource_type, *key))))
