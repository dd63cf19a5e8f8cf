"""Pseudonymisation keys from a file (a KMS-style provider: the key material never leaves this module's objects,
is never logged or shown, and is rotated by adding a key and moving `current`).

The file: `{"current": "2026-01", "keys": {"2026-01": "<base64, at least 32 bytes>", "2025-07": "…"}}`. New
pseudonyms use the current key; its id is part of the pseudonym's system, so a pseudonym made under an older key is
still re-identified with that key after a rotation.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import orjson

log = logging.getLogger("helixgate.exchange")
MIN_KEY_BYTES = 32


class KeyError_(Exception):
    """The key file cannot be used (the message names the file and why, never key material)."""


@dataclass(frozen=True)
class KeyRing:
    path: str
    current: str
    _keys: dict[str, bytes] = field(repr=False)

    def key(self, key_id: str | None = None) -> bytes:
        kid = key_id or self.current
        if kid not in self._keys:
            raise KeyError_(f"{self.path}: no key {kid!r} (ids: {', '.join(sorted(self._keys))})")
        return self._keys[kid]

    @property
    def ids(self) -> list[str]:
        return sorted(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({self.path!r}, current={self.current!r}, ids={self.ids})"


def load(path: str | os.PathLike[str]) -> KeyRing:
    p = Path(path)
    try:
        raw = p.read_bytes()
        mode = p.stat().st_mode
    except OSError as e:
        raise KeyError_(f"{p}: cannot read the pseudonymisation key file ({e.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("pseudonymisation key file %s is readable by other users; make it 0600", p)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise KeyError_(f"{p}: not JSON (expected {{\"current\": id, \"keys\": {{id: base64}}}})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict) or not isinstance(doc.get("current"), str):
        raise KeyError_(f"{p}: expected {{\"current\": id, \"keys\": {{id: base64}}}}")
    keys: dict[str, bytes] = {}
    for kid, value in doc["keys"].items():
        try:
            material = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except (binascii.Error, ValueError):
            raise KeyError_(f"{p}: key {kid!r} is not base64") from None
        if len(material) < MIN_KEY_BYTES:
            raise KeyError_(f"{p}: key {kid!r} has {len(material)} bytes; at least {MIN_KEY_BYTES} are needed")
        keys[kid] = material
    if doc["current"] not in keys:
        raise KeyError_(f"{p}: current key {doc['current']!r} is not among the keys")
    return KeyRing(str(p), doc["current"], keys)


def new_key_file(path: str | os.PathLike[str], key_id: str) -> None:
    """Write a key file holding one fresh random key (0600), or add a key to an existing one and make it current."""
    p = Path(path)
    doc = orjson.loads(p.read_bytes()) if p.exists() else {"keys": {}}
    doc["keys"][key_id] = base64.b64encode(os.urandom(MIN_KEY_BYTES)).decode()
    doc["current"] = key_id
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    os.replace(tmp, p)
