"""An on-disk cache beside the FHIR package cache, for what a new process would otherwise rebuild from the installed
packages before its first verdict (the definitions' index; compiled checkers).

    key = diskcache.key(diskcache.packages_key(installed), "StructureDefinition,ValueSet")
    data = diskcache.read("definitions", key)          # bytes, or None (missing, unreadable, cache off)
    diskcache.write("definitions", key, data)          # atomic; False when the cache cannot be written

An entry is keyed by what it was built from: packages_key() hashes each package's NAME#VERSION, folder and the
size and mtime of its package.json and .index.json, so a reinstalled or changed package never reads an entry built
from the old files. Entries are written to a temporary file and renamed into place, so a concurrent reader sees a
whole entry or none; each kind keeps its KEEP most recently written entries. A cache that cannot be written (a
read-only home) only costs speed: every function here fails soft.

Location: HELIXGATE_CACHE_DIR, else `helixgate-cache/` beside the package cache (`~/.fhir/helixgate-cache`, or
beside HELIXGATE_FHIR_PACKAGE_CACHE); HELIXGATE_CACHE_DIR=off turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ENV = "HELIXGATE_CACHE_DIR"
KEEP = 8  # entries per kind: one per package set in use is typical; old ones go
_KIND_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def root() -> Path | None:
    """The cache folder, or None when HELIXGATE_CACHE_DIR is `off`."""
    configured = os.environ.get(ENV, "").strip()
    if configured.lower() in ("off", "0", "none", "false"):
        return None
    if configured:
        return Path(configured).expanduser()
    from profiles.packages.cache import cache_dir  # the package cache's own setting decides where "beside" is

    return cache_dir().parent / "helixgate-cache"


def key(*parts: str) -> str:
    """A file-name-safe key for the parts (order matters)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def packages_key(packages: Iterable[Any]) -> str:
    """A key for a list of installed packages (profiles.packages.InstalledPackage, in the order they are read) that
    changes when any of them is replaced on disk."""
    parts = []
    for p in packages:
        stamp = [str(p.ref), str(p.path)]
        for name in ("package.json", ".index.json"):
            try:
                st = (Path(p.path) / name).stat()
                stamp.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
            except OSError:
                stamp.append(f"{name}:-")
        parts.append("|".join(stamp))
    return key(*parts)


def _entry(kind: str, entry_key: str) -> Path | None:
    if not kind or not set(kind) <= _KIND_CHARS or not set(entry_key) <= _KIND_CHARS:
        raise ValueError(f"diskcache kind and key are lower-case names, got {kind!r} / {entry_key!r}")
    base = root()
    return None if base is None else base / kind / entry_key


def read(kind: str, entry_key: str) -> bytes | None:
    """The bytes stored under (kind, key), or None."""
    path = _entry(kind, entry_key)
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def write(kind: str, entry_key: str, data: bytes) -> bool:
    """Store `data` under (kind, key) atomically; False (and nothing raised) when the cache cannot be written."""
    path = _entry(kind, entry_key)
    if path is None:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{entry_key}.", suffix=".part", dir=path.parent)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    _prune(path.parent)
    return True


def _prune(folder: Path) -> None:
    """Keep the KEEP newest entries of a kind (a package set no longer used leaves no growing pile behind)."""
    with contextlib.suppress(OSError):
        entries = [(e.stat().st_mtime_ns, e) for e in folder.iterdir() if not e.name.startswith(".")]
        for _, old in sorted(entries, reverse=True)[KEEP:]:
            with contextlib.suppress(OSError):
                old.unlink()
