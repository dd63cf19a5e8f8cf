"""Definitions read on first use: a validation touches a few hundred of the ~8,900 conformance resources the default
packages hold (100 MB of JSON, ~2 s to parse), so a new process indexes them by canonical URL and parses each file
when something first asks for it.

    entries = package_entries(closure(DEFAULT_PACKAGES), CONFORMANCE_TYPES)   # from the disk cache when it can
    defs = Definitions(label=...); defs.defer(entries)                         # profiles/definitions.py

The entries (resource type, url, version, the base type a core definition defines, its kind, and the file) come from
reading every file once; they are kept in the disk cache (profiles/diskcache.py) keyed by the packages' files, so
the next process reads one small index instead. A LazyTable answers like a dict; iterating its values loads all.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from profiles import diskcache

_MISSING: Any = object()
FORMAT = "1"  # bump when Entry or the way entries are derived changes


class Entry(NamedTuple):
    """One conformance resource of a package, known without parsing it."""

    resource_type: str
    url: str
    version: str
    base_type: str  # the type a core base definition defines (Observation, string), else ""
    kind: str  # StructureDefinition.kind, else ""
    file: str  # absolute path


class FileLoader:
    """Parses each file once per process (a resource is reachable as url and url|version), thread-safe."""

    def __init__(self) -> None:
        self._files: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, file: str) -> dict[str, Any]:
        hit = self._files.get(file)
        if hit is None:
            from profiles.packages.exceptions import PackageError

            try:
                hit = orjson.loads(Path(file).read_bytes())
            except (OSError, orjson.JSONDecodeError) as e:
                raise PackageError(f"{file} cannot be read ({e}); reinstall its package with "
                                   "helixgate packages install") from None
            with self._lock:
                hit = self._files.setdefault(file, hit)
        return hit


class LazyTable(MutableMapping[str, dict[str, Any]]):
    """key → resource, where a key may be deferred (a file to parse on first access). Reads are safe from several
    threads: a value is stored before its deferral is dropped, so a reader always finds one of the two."""

    __slots__ = ("data", "loader", "pending")

    def __init__(self, loader: FileLoader | None = None) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, str] = {}
        self.loader = loader or FileLoader()

    def defer(self, key: str, file: str) -> None:
        """`key` is the resource in `file`, replacing what the key held (later definitions win, as in add())."""
        self.pending[key] = file
        self.data.pop(key, None)

    def get(self, key: str, default: Any = None) -> Any:
        hit = self.data.get(key, _MISSING)
        if hit is not _MISSING:
            return hit
        file = self.pending.get(key)
        if file is None:
            return self.data.get(key, default)  # loaded by another thread between the two lookups
        value = self.data[key] = self.loader(file)
        self.pending.pop(key, None)
        return value

    def __getitem__(self, key: str) -> dict[str, Any]:
        hit = self.get(key, _MISSING)
        if hit is _MISSING:
            raise KeyError(key)
        return hit

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = value
        self.pending.pop(key, None)

    def __delitem__(self, key: str) -> None:
        found = self.data.pop(key, _MISSING) is not _MISSING
        found = self.pending.pop(key, None) is not None or found
        if not found:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self.data or key in self.pending

    def __iter__(self) -> Iterator[str]:
        return iter([*self.data, *(k for k in self.pending if k not in self.data)])

    def __len__(self) -> int:
        return len(self.data) + sum(1 for k in self.pending if k not in self.data)

    def load_all(self) -> None:
        for key in list(self.pending):
            self.get(key)

    def values(self) -> Any:  # every value: loads what is deferred
        self.load_all()
        return self.data.values()

    def items(self) -> Any:
        self.load_all()
        return self.data.items()

    def __repr__(self) -> str:
        return f"LazyTable({len(self.data)} loaded, {len(self.pending)} deferred)"


def package_entries(packages: list[Any], types: Collection[str]) -> list[Entry]:
    """The conformance resources of `types` in the installed `packages` (closure() order, so an IG's resources come
    after those it builds on), from the disk cache when it has them, else by reading every listed file once."""
    wanted = sorted(set(types))

    def cache_key() -> str:
        return diskcache.key(FORMAT, diskcache.packages_key(packages), ",".join(wanted))

    cached = diskcache.read("definitions", cache_key())
    if cached is not None:
        try:
            return [Entry(*e) for e in orjson.loads(cached)]
        except (orjson.JSONDecodeError, TypeError):
            pass  # cut short, or from another build of this format: rebuilt below
    entries = list(_read_entries(packages, wanted))
    # keyed by the files as they are now: reading may have written a package's missing .index.json
    diskcache.write("definitions", cache_key(), orjson.dumps([list(e) for e in entries]))
    return entries


def _read_entries(packages: Iterable[Any], types: Collection[str]) -> Iterator[Entry]:
    """Every listed file of `types`, read once (what conformance_resources() yields, with where it came from)."""
    from profiles.definitions import CORE_PREFIX
    from profiles.packages.exceptions import PackageError
    from profiles.packages.index import read_index

    for package in packages:
        folder = Path(package.path)
        for item in read_index(folder)["files"]:
            name = item.get("filename")
            if item.get("resourceType") not in types or not isinstance(name, str) or "/" in name \
                    or name.startswith("."):
                continue
            try:
                res = orjson.loads((folder / name).read_bytes())
            except (OSError, orjson.JSONDecodeError) as e:
                raise PackageError(f"{folder / name} cannot be read ({e}); delete {folder.parent} and run: "
                                   f"helixgate packages install {package.ref}") from None
            url = res.get("url") if isinstance(res, dict) else None
            if not isinstance(url, str) or not url:
                continue
            rtype = str(res.get("resourceType", ""))
            version = str(res.get("version") or "")
            base = ""
            if rtype == "StructureDefinition" and res.get("derivation") != "constraint" and url.startswith(
                    CORE_PREFIX) and res.get("kind") != "logical" and isinstance(res.get("type"), str):
                base = res["type"]
            kind = res.get("kind") if isinstance(res.get("kind"), str) else ""
            yield Entry(rtype, url, version, base, kind, str(folder / name))
