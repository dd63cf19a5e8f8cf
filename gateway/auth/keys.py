"""API keys for system-to-system clients without an authorization server (HELIXGATE_API_KEYS_FILE).

A key is `hgk_<id>_<secret>`: a public 12-character id that finds its record, and 256 random bits. Only the
SHA-256 of the whole key is stored: with 256 bits of entropy a fast hash cannot be brute-forced, and a slow
password KDF would cost milliseconds on every request. Hashes are compared in constant time.

The file is JSON, created 0600, rewritten atomically (temporary file + rename) under an advisory lock, and read
again by the server whenever its inode, size or mtime changes: a `helixgate keys revoke` reaches every server
process on its next request. Each key has a name (the client the gateway logs, audits and rate-limits; unique), its
scopes and an expiry; revoked keys stay listed with the time they were revoked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.auth.principal import AuthError, Principal
from gateway.auth.scopes import parse

log = logging.getLogger("helixgate.auth")
PREFIX = "hgk_"
_KEY = re.compile(r"hgk_([a-z2-7]{12})_([A-Za-z0-9_-]{43})\Z")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
_PATIENT = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
_DUMMY = hashlib.sha256(b"helixgate: no such key").hexdigest()


class KeyStoreError(ValueError):
    """A key cannot be created or revoked as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    hash: str  # sha256 hex of the whole key
    scopes: tuple[str, ...]
    created: str  # ISO 8601, UTC
    expires: str
    revoked: str | None = None
    patient: str | None = None  # the Patient id its patient/ scopes are limited to (the launch context of a token)

    def state(self, now: datetime | None = None) -> str:
        if self.revoked:
            return "revoked"
        return "expired" if _time(self.expires) <= (now or datetime.now(UTC)) else "active"

    def public(self) -> dict[str, Any]:
        """The record without its hash, for listings."""
        out = asdict(self)
        out.pop("hash")
        out["scopes"] = list(self.scopes)
        out["state"] = self.state()
        return out


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The keys in one file: created and revoked by the CLI, verified by the server (thread- and process-safe)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._seen: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}
        # Keys verified while the file was as `_seen` says: (that state, expiry, Principal), by the key's SHA-256.
        # A revoke or any other change of the file changes the state, so nothing here outlives it.
        self._verified: dict[str, tuple[tuple[int, int, int] | None, datetime, Principal]] = {}
        self._lock = threading.Lock()
        self._complained = False

    # --- the server side ---------------------------------------------------------------------------------------

    def verify(self, presented: str, now: datetime | None = None) -> Principal:
        """The Principal of a presented key; AuthError (not echoing the key) when it is malformed, unknown, wrong,
        revoked or expired."""
        text = presented.strip()
        hashed = digest(text)
        keys = self._current()
        when = now or datetime.now(UTC)
        hit = self._verified.get(hashed)
        if hit is not None and hit[0] == self._seen and when < hit[1]:  # the file unchanged, the key unexpired
            return hit[2]
        m = _KEY.match(text)
        if not m:
            raise AuthError("the API key is malformed (expected hgk_<id>_<secret>)")
        record = keys.get(m.group(1))
        # Compare against a dummy for unknown ids too, so both paths cost the same.
        if not hmac.compare_digest(hashed, record.hash if record else _DUMMY) or record is None:
            raise AuthError("the API key is not valid")
        state = record.state(now)
        if state != "active":
            raise AuthError(f"the API key {record.name!r} is {state}")
        principal = Principal(client=record.name, via="api-key", scopes=record.scopes, patient=record.patient,
                              claims={"key_id": record.id})
        if len(self._verified) >= 1024:
            self._verified.clear()
        self._verified[hashed] = (self._seen, _time(record.expires), principal)
        return principal

    def _current(self) -> dict[str, ApiKey]:
        """The keys as the file holds them now (re-read when it changed; none when it is missing or unreadable)."""
        try:
            st = os.stat(self.path)
        except OSError:
            if not self._complained:
                log.warning("API keys file %s is missing: no API key is valid until `helixgate keys create` makes "
                            "one", self.path)
                self._complained = True
            self._seen, self._keys = None, {}
            return self._keys
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            with self._lock:
                if seen != self._seen:
                    try:
                        self._keys = {k.id: k for k in self._read()}
                        self._complained = False
                    except (OSError, ValueError) as e:
                        log.error("API keys file %s cannot be read (%s): no API key is valid", self.path, e)
                        self._keys = {}
                    self._seen = seen
        return self._keys

    def _read(self) -> list[ApiKey]:
        doc = orjson.loads(self.path.read_bytes())
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise ValueError("not a helixgate API keys file ({'keys': [...]})")
        fields = set(ApiKey.__dataclass_fields__)
        return [ApiKey(**{**{f: v for f, v in k.items() if f in fields}, "scopes": tuple(k["scopes"])})
                for k in doc["keys"]]

    # --- the CLI side ------------------------------------------------------------------------------------------

    def list(self) -> list[ApiKey]:
        return self._read() if self.path.exists() else []

    def create(self, name: str, scopes: list[str], expires: datetime, now: datetime | None = None,
               patient: str | None = None) -> tuple[str, ApiKey]:
        """A new key: (the key, shown once; its stored record). KeyStoreError for a bad or taken name, a scope that
        grants nothing, or an expiry in the past. `patient`: the Patient id patient/ scopes are limited to."""
        now = now or datetime.now(UTC)
        if patient is not None and not _PATIENT.match(patient):
            raise KeyStoreError(f"patient {patient!r} is not a FHIR id ([A-Za-z0-9-.]{{1,64}})")
        if not _NAME.match(name):
            raise KeyStoreError(f"name {name!r}: 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit")
        bad = [s for s in scopes if parse(s) is None]
        if bad:
            raise KeyStoreError(f"scope(s) {', '.join(bad)} grant nothing (SMART v2 e.g. system/Observation.rs, or an "
                            "operation: system/$convert, system/$validate, system/$translate)")
        if not scopes:
            raise KeyStoreError("a key needs at least one scope")
        if expires <= now:
            raise KeyStoreError(f"expiry {_iso(expires)} is not in the future")
        with self._locked():
            keys = self.list()
            if any(k.name == name and k.state(now) == "active" for k in keys):
                raise KeyStoreError(f"an active key named {name!r} exists; revoke it first or choose another name")
            key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(12))
            key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            record = ApiKey(key_id, name, digest(key), tuple(scopes), _iso(now), _iso(expires), patient=patient)
            self._write([*keys, record])
        return key, record

    def revoke(self, name_or_id: str, now: datetime | None = None) -> list[ApiKey]:
        """Revokes the active keys with that name (or id); returns them. KeyStoreError when there is none."""
        now = now or datetime.now(UTC)
        with self._locked():
            keys = self.list()
            hit = [k for k in keys if name_or_id in (k.name, k.id) and not k.revoked]
            if not hit:
                raise KeyStoreError(f"no unrevoked key named {name_or_id!r} in {self.path}")
            ids = {k.id for k in hit}
            self._write([replace(k, revoked=_iso(now)) if k.id in ids else k for k in keys])
        return hit

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, keys: list[ApiKey]) -> None:
        doc = {"keys": [{**asdict(k), "scopes": list(k.scopes)} for k in keys]}
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
