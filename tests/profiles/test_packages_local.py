"""Packages installed from a file: a tarball or a package folder (HL7 Europe's IGs are on no npm registry), their
dependencies from the registry as usual, through the library and `helixgate packages install FILE`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from profiles.packages import PackageError, install_local, installed
from tests.conftest import ROOT
from tests.profiles.conftest import FakeNpm, Registry, package_tgz, seed_core, tarball

EU = "helixgate.test.eu"


def write_tgz(path: Path, name: str = EU, version: str = "2.0.0", dependencies: dict[str, str] | None = None) -> Path:
    path.write_bytes(package_tgz(name, version, dependencies))
    return path


def test_a_tarball_installs_with_its_dependencies_from_the_registry(package_cache: Path, registry: Registry,
                                                                   fake_npm: FakeNpm, tmp_path: Path) -> None:
    seed_core(package_cache)
    registry.add("helixgate.test.base", "1.0.0")
    file = write_tgz(tmp_path / "eu.tgz", dependencies={"hl7.fhir.r4.core": "4.0.1", "helixgate.test.base": "1.0.0"})
    lines: list[str] = []
    result = install_local(file, registry=registry.url, log=lines.append)
    assert [str(p.ref) for p in result] == ["hl7.fhir.r4.core#4.0.1", "helixgate.test.base#1.0.0", f"{EU}#2.0.0"]
    assert f"{EU}#2.0.0: installed from {file}" in lines
    package = result[-1]
    assert (package.path / ".index.json").is_file() and (package.path / "StructureDefinition-thing.json").is_file()
    assert not list(package_cache.glob(".helixgate-*"))
    lines.clear()
    assert install_local(file, registry=registry.url, offline=True, log=lines.append) == result  # no second copy
    assert f"{EU}#2.0.0: in the cache" in lines


def test_a_package_folder_installs_without_following_links(package_cache: Path, tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(package_tgz(EU, "2.0.1")), mode="r:gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    secret = tmp_path / "secret.txt"
    secret.write_text("not a package file")
    os.symlink(secret, tmp_path / "unpacked" / "package" / "link.json")
    for source in (tmp_path / "unpacked", tmp_path / "unpacked" / "package"):  # the folder, or its package/
        result = install_local(source, offline=True)
        assert [str(p.ref) for p in result] == [f"{EU}#2.0.1"]
    path = result[-1].path
    assert (path / "ValueSet-codes.json").is_file() and not (path / "link.json").exists()
    assert f"{EU}#2.0.1" in {str(p.ref) for p in installed()}


@pytest.mark.parametrize(("content", "says"), [
    (None, "no such file or folder"),
    (b"not gzip", "is not a FHIR package tarball"),
    (b"", "is not a FHIR package tarball"),
    (tarball({"readme.txt": b"a tarball of something else"}), "is not a FHIR package tarball"),
])
def test_what_is_not_a_package_is_named(package_cache: Path, tmp_path: Path, content: bytes | None,
                                        says: str) -> None:
    file = tmp_path / "thing.tgz"
    if content is not None:
        file.write_bytes(content)
    with pytest.raises(PackageError, match=says):
        install_local(file, offline=True)


def test_the_cli_takes_files_beside_names(package_cache: Path, tmp_path: Path) -> None:
    file = write_tgz(tmp_path / "eu.tgz", version="2.0.2")
    env = {**os.environ, "HELIXGATE_FHIR_PACKAGE_CACHE": str(package_cache)}
    proc = subprocess.run([sys.executable, "-m", "gateway.cli.main", "packages", "install", str(file), "--offline"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"{EU}#2.0.2: installed from {file}" in proc.stderr
    listed = subprocess.run([sys.executable, "-m", "gateway.cli.main", "packages", "list"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120, env=env)
    assert f"{EU}#2.0.2" in listed.stdout
    missing = subprocess.run([sys.executable, "-m", "gateway.cli.main", "packages", "install", "./nothing.tgz"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
