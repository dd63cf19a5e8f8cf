"""The API key store: what is kept (hash only, 0600), what verifies, and that it fails closed."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.auth.keys import KeyStore, KeyStoreError, digest
from gateway.auth.principal import AuthError
from gateway.cli.keys import expiry

LATER = datetime.now(UTC) + timedelta(days=1)


def test_a_key_verifies_to_its_principal_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, record = store.create("lab-a", ["system/$convert", "patient/*.rs"], LATER, patient="p-1")
    principal = store.verify(key)
    assert (principal.client, principal.via, principal.scopes, principal.patient) == (
        "lab-a", "api-key", ("system/$convert", "patient/*.rs"), "p-1")
    assert key not in repr(principal) and principal.claims == {"key_id": record.id}
    text = store.path.read_text()
    assert key not in text and key.split("_", 2)[2] not in text and digest(key) in text  # the secret may hold "_"
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(f"{store.path}.lock").st_mode) == 0o600
    assert len(key) == len("hgk_") + 12 + 1 + 43  # 256 random bits after the id


def test_wrong_revoked_expired_and_malformed_keys_are_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, _ = store.create("lab-a", ["system/$convert"], LATER)
    for wrong in (key[:-2] + ("xy" if not key.endswith("xy") else "zz"), "hgk_" + "a" * 12 + "_" + "B" * 43,
                  key + "x", "", "Bearer " + key):
        with pytest.raises(AuthError):
            store.verify(wrong)
    past = datetime.now(UTC) - timedelta(days=3)
    old, _ = store.create("lab-old", ["system/$convert"], past + timedelta(days=1), now=past)
    with pytest.raises(AuthError, match="expired"):
        store.verify(old)
    other = KeyStore(store.path)  # another server process reading the same file
    assert other.verify(key).client == "lab-a"
    store.revoke("lab-a")
    with pytest.raises(AuthError, match="revoked"):
        other.verify(key)


def test_an_unreadable_or_missing_file_makes_no_key_valid(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, _ = store.create("lab-a", ["system/$convert"], LATER)
    store.path.write_text("{not json")
    with pytest.raises(AuthError):
        store.verify(key)
    store.path.unlink()
    with pytest.raises(AuthError):
        store.verify(key)


def test_what_create_refuses(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.create("lab-a", ["system/$convert"], LATER)
    with pytest.raises(KeyStoreError, match="active key named"):
        store.create("lab-a", ["system/$convert"], LATER)
    for name, scopes, when, patient in (("bad name", ["system/$convert"], LATER, None),
                                        ("x", ["system/Observation.all"], LATER, None),
                                        ("x", [], LATER, None),
                                        ("x", ["system/$convert"], datetime.now(UTC) - timedelta(seconds=1), None),
                                        ("x", ["patient/*.rs"], LATER, "../1")):
        with pytest.raises(KeyStoreError):
            store.create(name, scopes, when, patient=patient)
    with pytest.raises(KeyStoreError):
        store.revoke("nobody")
    store.revoke("lab-a")
    store.create("lab-a", ["system/$convert"], LATER)  # the name is free again once revoked
    assert [k.state() for k in store.list()] == ["revoked", "active"]


def test_expiry_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert expiry("90d", now) == now + timedelta(days=90)
    assert expiry("12h", now) == now + timedelta(hours=12)
    assert expiry("30m", now) == now + timedelta(minutes=30)
    assert expiry("2027-01-31", now) == datetime(2027, 1, 31, tzinfo=UTC)
    assert expiry("2027-01-31T12:00Z", now) == datetime(2027, 1, 31, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="Nd, Nh, Nm"):
        expiry("soon", now)


def test_a_verified_key_is_remembered_until_the_file_changes(tmp_path: Path) -> None:
    """The server remembers keys it verified (no re-parse per request), but a revoke from another process (here:
    another store on the same file) is seen on the next request."""
    server, cli_store = KeyStore(tmp_path / "keys.json"), KeyStore(tmp_path / "keys.json")
    key, _ = cli_store.create("lab-c", ["system/$convert"], datetime.now(UTC) + timedelta(days=1))
    first = server.verify(key)
    assert server.verify(key) is first  # remembered
    cli_store.revoke("lab-c")
    with pytest.raises(AuthError, match="revoked"):
        server.verify(key)
    short, _ = cli_store.create("lab-d", ["system/$convert"], datetime.now(UTC) + timedelta(seconds=30))
    server.verify(short)
    assert server.verify(short).client == "lab-d"  # remembered
    with pytest.raises(AuthError, match="expired"):  # and still expires
        server.verify(short, now=datetime.now(UTC) + timedelta(minutes=1))
