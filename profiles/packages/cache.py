"""The local package cache (FHIR's standard layout), what is installed in it, and dependency closure.

Layout: `ROOT/NAME#VERSION/package/package.json` and the package's files beside it, as the FHIR tooling (the Java
validator, SUSHI, Firely) lays it out, so one cache serves them all. When a pinned dependency had to be replaced,
the dependent's folder also holds `helixgate.json` (beside `package/`, which stays as published):

    {"dependencies": {"hl7.terminology.r4": {"pinned": "6.1.0", "used": "7.0.1"},
                      "hl7.fhir.uv.ipa": {"pinned": "1.1.0", "used": null}}}     # null: published nowhere
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from profiles.packages.exceptions import PackageError
from profiles.packages.model import InstalledPackage, PackageRef

CACHE_ENV = "HELIXGATE_FHIR_PACKAGE_CACHE"
RECORD = "helixgate.json"

PackageLike = InstalledPackage | PackageRef | str


def cache_dir() -> Path:
    """HELIXGATE_FHIR_PACKAGE_CACHE, else FHIR's standard `~/.fhir/packages`."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".fhir" / "packages"


def to_ref(item: PackageLike) -> PackageRef:
    if isinstance(item, InstalledPackage):
        return item.ref
    return item if isinstance(item, PackageRef) else PackageRef.parse(item)


def folder(ref: PackageRef, root: Path) -> Path:
    """`ROOT/NAME#VERSION`; the package's files are in its `package/` subfolder."""
    return root / str(ref)


def is_installed(ref: PackageRef, root: Path) -> bool:
    return (folder(ref, root) / "package" / "package.json").is_file()


def read_record(ref: PackageRef, root: Path) -> dict[str, dict[str, Any]]:
    """The dependency substitutions recorded for `ref`: {name: {"pinned": v, "used": v | None}}."""
    try:
        data = orjson.loads((folder(ref, root) / RECORD).read_bytes())
        return {k: v for k, v in data.get("dependencies", {}).items() if isinstance(v, dict) and "pinned" in v}
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return {}


def write_record(ref: PackageRef, root: Path, edges: dict[str, dict[str, Any]]) -> None:
    note = "written by helixgate: the versions used for dependencies whose pinned version is not published"
    path = folder(ref, root) / RECORD
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"note": note, "dependencies": edges}, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def load(ref: PackageRef, root: Path, substituted_from: str | None = None) -> InstalledPackage:
    """Reads `ROOT/NAME#VERSION/package/package.json`; raises PackageError when it is missing or unreadable."""
    path = folder(ref, root) / "package"
    try:
        manifest = orjson.loads((path / "package.json").read_bytes())
    except FileNotFoundError:
        raise PackageError(f"{ref} is not installed in {root}; run: helixgate packages install {ref}") from None
    except (OSError, orjson.JSONDecodeError) as e:
        raise PackageError(f"{path / 'package.json'} cannot be read ({e}); delete {path.parent} and run: "
                           f"helixgate packages install {ref}") from None
    fhir_versions = manifest.get("fhirVersions") or manifest.get("fhir-version-list") or []
    missing = {k: v["pinned"] for k, v in read_record(ref, root).items() if v.get("used") is None}
    return InstalledPackage(ref=ref, path=path, dependencies=dict(manifest.get("dependencies") or {}),
                            substituted_from=substituted_from, fhir_versions=list(fhir_versions),
                            missing_dependencies=missing)


def resolve_dependency(parent: PackageRef, name: str, pinned: str, root: Path) -> tuple[PackageRef | None, bool]:
    """The installed package that serves `parent`'s pin `name#pinned`: (ref, substituted). (None, False) when the
    pin is neither installed nor recorded; (None, True) when it is recorded as published nowhere."""
    exact = PackageRef(name, pinned)
    if is_installed(exact, root):
        return exact, False
    edge = read_record(parent, root).get(name)
    if edge and edge["pinned"] == pinned:
        if edge.get("used") is None:
            return None, True
        used = PackageRef(name, edge["used"])
        if is_installed(used, root):
            return used, True
    return None, False


def installed() -> list[InstalledPackage]:
    """Every package in cache_dir(), sorted by name and version. `substituted_from` lists the pins each one stands
    in for, as recorded by helixgate installs."""
    root = cache_dir()
    if not root.is_dir():
        return []
    refs: list[PackageRef] = []
    for entry in root.iterdir():
        name, sep, version = entry.name.partition("#")
        if sep and (entry / "package" / "package.json").is_file():
            try:
                refs.append(PackageRef(name, version))
            except PackageError:
                continue  # a folder some other tool named; not ours to judge
    stands_in: dict[PackageRef, set[str]] = {}
    for ref in refs:
        for name, edge in read_record(ref, root).items():
            if edge.get("used"):
                stands_in.setdefault(PackageRef(name, edge["used"]), set()).add(edge["pinned"])
    result = []
    for ref in sorted(refs, key=lambda r: (r.name, r.version)):
        pins = stands_in.get(ref)
        try:
            result.append(load(ref, root, ", ".join(sorted(pins)) if pins else None))
        except PackageError:
            continue  # unreadable package.json: closure() reports it when something needs it
    return result


def closure(specs: Iterable[PackageLike]) -> list[InstalledPackage]:
    """The given installed packages and, transitively, their dependencies as resolved in the cache (honouring the
    substitutions recorded at install time), dependencies first, each once. Raises PackageError naming every
    missing package and the install command that fetches them."""
    root = cache_dir()
    roots = [to_ref(s) for s in specs]
    order: list[InstalledPackage] = []
    pins: dict[PackageRef, set[str]] = {}
    seen: set[PackageRef] = set()
    missing: list[str] = []

    def visit(ref: PackageRef) -> None:
        seen.add(ref)  # before the dependencies, so cycles (terminology <-> extensions) end here
        manifest = load(ref, root)
        for name, pinned in manifest.dependencies.items():
            try:
                dep, substituted = resolve_dependency(ref, name, pinned, root)
            except PackageError:
                missing.append(f"{name}#{pinned} (an unusable pin in {ref})")
                continue
            if dep is None:
                if not substituted:
                    missing.append(f"{name}#{pinned} (needed by {ref})")
                continue
            if substituted:
                pins.setdefault(dep, set()).add(pinned)
            if dep not in seen:
                visit(dep)
        order.append(manifest)

    for ref in roots:
        if ref in seen:
            continue
        if not is_installed(ref, root):
            missing.append(str(ref))
            continue
        visit(ref)
    if missing:
        raise PackageError(f"FHIR packages missing from {root}: {', '.join(dict.fromkeys(missing))}; run: "
                           f"helixgate packages install {' '.join(str(r) for r in roots)}")
    return [replace(p, substituted_from=", ".join(sorted(pins[p.ref]))) if p.ref in pins else p for p in order]


def fingerprint(packages: Iterable[PackageLike]) -> str:
    """A stable hash of the set of NAME#VERSION (order and duplicates do not matter), for validation cache keys."""
    names = sorted({str(to_ref(p)) for p in packages})
    return hashlib.sha256("\n".join(names).encode()).hexdigest()
