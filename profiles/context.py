"""Loading the definitions a validation runs against: installed FHIR packages plus `--ig` sources."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from profiles.deferred import package_entries
from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.packages import DEFAULT_PACKAGES, PackageError, closure, fingerprint
from profiles.validator import Validator

# Definitions helixgate itself publishes: the extensions its mappers emit (e.g. the China CDA mapper's).
LOCAL = Path(__file__).parent / "local"


def read_folder(path: Path) -> Iterator[dict[str, Any]]:
    """Conformance resources in a file or folder (JSON, or FHIR XML); Bundles are opened."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    for f in files:
        if f.suffix not in (".json", ".xml") or not f.is_file():
            continue
        try:
            data = f.read_bytes()
            if f.suffix == ".json":
                doc = orjson.loads(data)
            else:
                from profiles.xml import xml_to_json  # reads XML through the core definitions

                doc = xml_to_json(data, None)
        except Exception as e:  # one unreadable file must not stop the others; say which
            raise PackageError(f"cannot read conformance resource {f}: {e}") from None
        yield from _conformance(doc)


def _conformance(doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict):
        return
    if doc.get("resourceType") == "Bundle":
        for e in doc.get("entry") or []:
            yield from _conformance((e or {}).get("resource"))
    elif doc.get("resourceType") in CONFORMANCE_TYPES:
        yield doc


def split_igs(igs: Iterable[str]) -> tuple[list[str], list[Path]]:
    """`--ig` values: NAME#VERSION packages, or paths to files/folders of conformance resources."""
    specs, paths = [], []
    for ig in igs:
        p = Path(ig)
        if p.exists():
            paths.append(p)
        elif "#" in ig or "@" in ig:
            specs.append(ig)
        else:
            raise PackageError(f"--ig {ig!r} is neither an existing file/folder nor NAME#VERSION")
    return specs, paths


def load(packages: Sequence[str] = DEFAULT_PACKAGES, paths: Sequence[Path] = ()) -> Definitions:
    """Definitions from the installed `packages` (with dependencies) then `paths`, which override them.

    Raises PackageError (naming what is missing and how to install it).
    """
    installed = closure(packages)
    label = fingerprint(installed) + "|" + "|".join(str(p) for p in paths)
    defs = Definitions(label=label)
    defs.defer(package_entries(installed, CONFORMANCE_TYPES))  # parsed on first use; the index is cached on disk
    defs.add(read_folder(LOCAL))
    for p in paths:
        defs.add(read_folder(p))
    return defs


# Validated against when installed with their dependencies, never installed by default: packages no npm registry
# publishes, which users install from a FHIR package registry or a file (the eu-lab writer's target).
OPTIONAL_PACKAGES: tuple[str, ...] = ("hl7.fhir.eu.laboratory#2.0.0",)


def usable_optional() -> tuple[str, ...]:
    """The optional packages whose whole closure is installed (one with a missing dependency is left out, so it
    never stops the default validator)."""
    out = []
    for spec in OPTIONAL_PACKAGES:
        try:
            closure([spec])
        except PackageError:
            continue
        out.append(spec)
    return tuple(out)


@lru_cache(maxsize=4)
def default_validator(packages: tuple[str, ...] = DEFAULT_PACKAGES) -> Validator:
    """A validator over the default package set (and the optional packages installed), built once per process."""
    if packages == DEFAULT_PACKAGES:
        packages = (*packages, *usable_optional())
    return Validator(load(packages))
