"""Package references and installed packages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from profiles import patterns
from profiles.packages.exceptions import PackageError

# What the gateway validates against: R4 core, the Genomics Reporting IG STU3 and the International Patient Summary.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "hl7.fhir.r4.core#4.0.1",
    "hl7.fhir.uv.genomics-reporting#3.0.0",
    "hl7.fhir.uv.ips#2.0.0",
)

# Names and versions become folder names in the cache, so nothing that could climb out of it is accepted.
_NAME = patterns.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION = patterns.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_*-]*$")


@dataclass(frozen=True, slots=True)
class PackageRef:
    """A package at one version; `str()` gives the FHIR spelling `NAME#VERSION`."""

    name: str
    version: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or not _VERSION.match(self.version):
            raise PackageError(f"{self.name}#{self.version} is not a valid FHIR package reference "
                               "(expected NAME#VERSION, e.g. hl7.fhir.uv.ips#2.0.0)")

    @classmethod
    def parse(cls, spec: str) -> PackageRef:
        """`NAME#VERSION` or `NAME@VERSION`; raises PackageError when the version is missing or either part is
        malformed."""
        spec = spec.strip()
        name, sep, version = spec.partition("#") if "#" in spec else spec.rpartition("@")
        if not sep or not name or not version:
            example = spec.rstrip("#@") or "hl7.fhir.uv.ips"
            raise PackageError(f"{spec!r}: give the package as NAME#VERSION, e.g. {example}#1.0.0")
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}#{self.version}"


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """A package in the cache. `path` is its `.../NAME#VERSION/package` folder; `dependencies` are the pins of its
    package.json. `substituted_from` is the pinned version that was asked for when this other version had to stand
    in (comma-separated when it stands in for several); `missing_dependencies` are pins that no source publishes
    at any version and that the package was installed without."""

    ref: PackageRef
    path: Path
    dependencies: dict[str, str] = field(default_factory=dict, hash=False)
    substituted_from: str | None = None
    fhir_versions: list[str] = field(default_factory=list, hash=False)
    missing_dependencies: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def version(self) -> str:
        return self.ref.version
