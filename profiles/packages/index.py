"""A package's `.index.json` (the FHIR package index) and reading its conformance resources through it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from profiles.packages.exceptions import PackageError
from profiles.packages.model import InstalledPackage

INDEX = ".index.json"
DEFINITION_TYPES = ("StructureDefinition", "ValueSet", "CodeSystem")
_FIELDS = ("id", "url", "version", "kind", "type")


def index_entry(filename: str, resource: dict[str, Any]) -> dict[str, Any]:
    entry = {"filename": filename, "resourceType": resource["resourceType"]}
    entry.update({k: resource[k] for k in _FIELDS if isinstance(resource.get(k), str)})
    return entry


def build_index(path: Path) -> dict[str, Any]:
    """Parses every `*.json` resource directly in `path` (one package folder, not its example/ or other/)."""
    files = []
    for file in sorted(path.glob("*.json")):
        if file.name in ("package.json", INDEX):
            continue
        try:
            resource = orjson.loads(file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue  # not a resource; the index lists resources only
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            files.append(index_entry(file.name, resource))
    return {"index-version": 1, "files": files}


def write_index(path: Path, index: dict[str, Any]) -> None:
    """Atomically, so a concurrent reader never sees half an index."""
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=path)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(index))
        os.replace(tmp, path / INDEX)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_index(path: Path) -> dict[str, Any]:
    """The package's `.index.json`; built (and saved when the folder is writable) when absent or unreadable."""
    try:
        index = orjson.loads((path / INDEX).read_bytes())
        if isinstance(index, dict) and isinstance(index.get("files"), list):
            return index
    except (OSError, orjson.JSONDecodeError):
        pass
    index = build_index(path)
    with contextlib.suppress(OSError):  # a read-only cache still works, only slower
        write_index(path, index)
    return index


def conformance_resources(packages: Iterable[InstalledPackage],
                          types: Collection[str] = DEFINITION_TYPES) -> Iterator[dict[str, Any]]:
    """The resources of `types` in each package folder, package by package in the order given (pass closure()'s
    dependency order so an IG's resources come after, and can override, those it builds on). Only files the index
    lists with a wanted resourceType are parsed. Raises PackageError for a listed file that cannot be read."""
    wanted = set(types)
    for package in packages:
        for entry in read_index(package.path)["files"]:
            filename = entry.get("filename")
            if entry.get("resourceType") not in wanted or not isinstance(filename, str) or "/" in filename \
                    or filename.startswith("."):
                continue
            file = package.path / filename
            try:
                resource = orjson.loads(file.read_bytes())
            except (OSError, orjson.JSONDecodeError) as e:
                raise PackageError(f"{file} cannot be read ({e}); delete {package.path.parent} and run: "
                                   f"helixgate packages install {package.ref}") from None
            yield resource


def resource_count(package: InstalledPackage) -> int:
    return len(read_index(package.path)["files"])
