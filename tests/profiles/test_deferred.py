"""Definitions read on first use (profiles/deferred.py) and their index in the disk cache (profiles/diskcache.py):
the same definitions, fingerprint and verdicts as reading every file up front; the index is reused, rebuilt when a
package changes on disk, and never needed (a cache that is off, unwritable or corrupt only costs time)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from profiles import diskcache
from profiles.context import LOCAL, load, read_folder
from profiles.deferred import FileLoader, LazyTable, package_entries
from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.packages import DEFAULT_PACKAGES, PackageError, closure, conformance_resources, fingerprint
from profiles.validator import Validator


def test_deferred_definitions_are_the_eager_ones(validator: Any) -> None:
    installed = closure(DEFAULT_PACKAGES)
    eager = Definitions(conformance_resources(installed, CONFORMANCE_TYPES), label=fingerprint(installed) + "|")
    eager.add(read_folder(LOCAL))
    lazy = load()
    assert lazy.fingerprint == eager.fingerprint  # validation cache keys do not change
    assert lazy.structures.pending  # nothing read yet but what load() itself needs
    for table in ("structures", "value_sets", "code_systems", "others", "types"):
        mine, theirs = getattr(lazy, table), getattr(eager, table)
        assert set(mine) == set(theirs), table
        assert all(mine[k] == theirs[k] for k in list(theirs)[::37]), table
    assert lazy.kinds == {t: sd.get("kind") for t, sd in eager.types.items()}
    assert sorted(lazy.types_of_kind("primitive-type")) == sorted(
        t for t, sd in eager.types.items() if sd["kind"] == "primitive-type")
    ig = Path(installed[-1].path)
    examples = sorted((ig / "example").glob("*.json"))[:12]
    fresh, old = Validator(load()), Validator(eager)
    for f in examples:
        resource = json.loads(f.read_bytes())
        assert fresh.outcome(resource) == old.outcome(resource), f.name


def package(root: Path, name: str, resources: list[dict[str, Any]]) -> Path:
    folder = root / f"{name}#1.0.0" / "package"
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", "fhirVersions": ["4.0.1"]}))
    for r in resources:
        (folder / f"{r['resourceType']}-{r['id']}.json").write_text(json.dumps(r))
    return folder


def sd(id_: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "id": id_, "url": f"http://example.org/fhir/StructureDefinition/{id_}",
            "version": "1.0.0", "kind": "resource", "type": "Observation", "derivation": "constraint", **extra}


def test_the_index_is_reused_and_rebuilt_when_a_package_changes(package_cache: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(diskcache.ENV, raising=False)
    folder = package(package_cache, "example.pkg", [sd("one"), {"resourceType": "Patient", "id": "p"}])
    entries = package_entries(closure(["example.pkg#1.0.0"]), CONFORMANCE_TYPES)
    assert [(e.url, e.version, Path(e.file).name) for e in entries] == [
        ("http://example.org/fhir/StructureDefinition/one", "1.0.0", "StructureDefinition-one.json")]
    kept = list((package_cache.parent / "helixgate-cache" / "definitions").iterdir())
    assert len(kept) == 1  # beside the package cache
    (folder / "StructureDefinition-one.json").unlink()  # the next process reads the index, not the files
    assert package_entries(closure(["example.pkg#1.0.0"]), CONFORMANCE_TYPES) == entries
    (folder / "StructureDefinition-two.json").write_text(json.dumps(sd("two")))
    (folder / ".index.json").unlink()  # a reinstall: new files, new index
    (folder / "package.json").write_text(json.dumps({"name": "example.pkg", "version": "1.0.0", "x": 1}))
    rebuilt = package_entries(closure(["example.pkg#1.0.0"]), CONFORMANCE_TYPES)
    assert [e.url.rsplit("/", 1)[1] for e in rebuilt] == ["two"]
    defs = Definitions()
    defs.defer(rebuilt)
    assert defs.structure("http://example.org/fhir/StructureDefinition/two|1.0.0")["id"] == "two"


def test_a_cache_that_is_off_unwritable_or_corrupt_costs_only_time(package_cache: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    package(package_cache, "example.pkg", [sd("one")])
    monkeypatch.setenv(diskcache.ENV, "off")
    assert len(package_entries(closure(["example.pkg#1.0.0"]), CONFORMANCE_TYPES)) == 1
    assert not (package_cache.parent / "helixgate-cache").exists()
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        monkeypatch.setenv(diskcache.ENV, str(locked / "cache"))
        assert len(package_entries(closure(["example.pkg#1.0.0"]), CONFORMANCE_TYPES)) == 1
    monkeypatch.setenv(diskcache.ENV, str(tmp_path / "cache"))
    assert diskcache.write("definitions", "x1", b"data") and diskcache.read("definitions", "x1") == b"data"
    package_entries(closure(["example.pkg#1.0.0"]), CONFORMANCE_TYPES)
    for entry in (tmp_path / "cache" / "definitions").iterdir():
        entry.write_bytes(b"[[1, 2")  # cut short
    assert [e.url for e in package_entries(closure(["example.pkg#1.0.0"]), CONFORMANCE_TYPES)] == [sd("one")["url"]]
    with pytest.raises(ValueError):
        diskcache.read("../outside", "x")
    for n in range(diskcache.KEEP + 3):
        diskcache.write("pruned", f"k{n}", b"x")
    assert len(list((tmp_path / "cache" / "pruned").iterdir())) == diskcache.KEEP


def test_lazy_table_answers_like_a_dict(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"id": "a"}')
    b.write_text('{"id": "b"}')
    table = LazyTable(FileLoader())
    table.defer("x", str(a))
    table.defer("x|1", str(a))
    table["y"] = {"id": "y"}
    assert "x" in table and len(table) == 3 and sorted(table) == ["x", "x|1", "y"] and table.pending
    assert table.get("x") is table.get("x|1")  # one file, parsed once
    assert table.get("nope") is None and "nope" not in table
    with pytest.raises(KeyError):
        table["nope"]
    table.defer("y", str(b))  # later definitions win, deferred or not
    table["x"] = {"id": "local"}
    assert table["y"] == {"id": "b"} and table["x"] == {"id": "local"}
    del table["x|1"]
    assert sorted(v["id"] for v in table.values()) == ["b", "local"] and not table.pending
    table.defer("gone", str(tmp_path / "gone.json"))
    with pytest.raises(PackageError, match="helixgate packages install"):
        table.get("gone")


def test_definitions_defer_keeps_precedence_and_answers_without_reading(tmp_path: Path) -> None:
    from profiles.deferred import Entry

    guide = tmp_path / "ig.json"
    guide.write_text(json.dumps({"resourceType": "ImplementationGuide", "url": "http://example.org/ig",
                                 "version": "1", "global": []}))
    base = tmp_path / "string.json"
    base.write_text(json.dumps({"resourceType": "StructureDefinition", "url": "http://hl7.org/fhir/StructureDefinition/"
                                "string", "kind": "primitive-type", "type": "string"}))
    defs = Definitions()
    defs.defer([Entry("ImplementationGuide", "http://example.org/ig", "1", "", "", str(guide)),
                Entry("StructureDefinition", "http://hl7.org/fhir/StructureDefinition/string", "", "string",
                      "primitive-type", str(base))])
    assert defs.types_of_kind("primitive-type") == ["string"] and not defs.types.data  # nothing read for that
    assert [g["url"] for g in defs.canonicals("ImplementationGuide")] == ["http://example.org/ig"]  # once
    assert defs.canonicals("Questionnaire") == []
    defs.add([{"resourceType": "ImplementationGuide", "url": "http://example.org/ig", "id": "local"}])
    assert defs.canonical("http://example.org/ig")["id"] == "local"
    assert defs.type_definition("string")["kind"] == "primitive-type"
