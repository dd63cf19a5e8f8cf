"""The conformance resources a validation runs against: StructureDefinitions, ValueSets and CodeSystems,
indexed by canonical URL (and `url|version`), and the other canonical resources instances point to
(Questionnaire, Measure, Library, SearchParameter, ImplementationGuide, ...)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
# Resource types loaded from packages and `--ig` sources.
CONFORMANCE_TYPES = ("StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter", "Questionnaire", "Measure",
                     "Library", "ImplementationGuide", "CapabilityStatement", "OperationDefinition")


def unversioned(url: str) -> str:
    """A canonical without its `|version` (R4 datatypes, canonical: `url|version` pins a version)."""
    return url.split("|", 1)[0]


def same_canonical(a: str, b: str) -> bool:
    """Whether two canonicals name the same resource: the same URL, and the same version where both pin one
    (`…/Organization|4.0.1` is `…/Organization`)."""
    if a == b:
        return True
    url_a, _, version_a = a.partition("|")
    url_b, _, version_b = b.partition("|")
    return url_a == url_b and not (version_a and version_b)


class Definitions:
    """An immutable-once-built index of conformance resources. Later resources win over earlier ones for the
    same URL, so an `--ig` folder can override a package."""

    def __init__(self, resources: Iterable[dict[str, Any]] = (), label: str = "") -> None:
        self.structures: dict[str, dict[str, Any]] = {}
        self.value_sets: dict[str, dict[str, Any]] = {}
        self.code_systems: dict[str, dict[str, Any]] = {}
        self.others: dict[str, dict[str, Any]] = {}  # any other canonical resource
        self.types: dict[str, dict[str, Any]] = {}  # base definitions by type name (Observation, CodeableConcept)
        self._hash = hashlib.sha256(label.encode())
        self.add(resources)

    def add(self, resources: Iterable[dict[str, Any]]) -> None:
        for res in resources:
            rtype = res.get("resourceType")
            table = {"StructureDefinition": self.structures, "ValueSet": self.value_sets,
                     "CodeSystem": self.code_systems}.get(rtype or "", self.others)
            url = res.get("url")
            if not url:
                continue
            table[url] = res
            if res.get("version"):
                table[f"{url}|{res['version']}"] = res
            self._hash.update(f"{rtype}|{url}|{res.get('version', '')}".encode())
            if rtype == "StructureDefinition" and res.get("derivation") != "constraint" and url.startswith(
                    CORE_PREFIX) and res.get("kind") != "logical":
                self.types[res["type"]] = res

    @property
    def fingerprint(self) -> str:
        """Identifies this set of definitions (for validation cache keys)."""
        return self._hash.hexdigest()[:32]

    def structure(self, url: str) -> dict[str, Any] | None:
        return self.structures.get(url) or self.structures.get(url.split("|", 1)[0])

    def value_set(self, url: str) -> dict[str, Any] | None:
        return self.value_sets.get(url) or self.value_sets.get(url.split("|", 1)[0])

    def code_system(self, url: str) -> dict[str, Any] | None:
        return self.code_systems.get(url) or self.code_systems.get(url.split("|", 1)[0])

    def canonical(self, url: str, rtype: str | None = None) -> dict[str, Any] | None:
        """Any other canonical resource (Questionnaire, Measure, ...) by url or url|version, of `rtype` if given."""
        hit = self.others.get(url) or self.others.get(url.split("|", 1)[0])
        return hit if hit is not None and (rtype is None or hit.get("resourceType") == rtype) else None

    def type_definition(self, type_name: str) -> dict[str, Any] | None:
        return self.types.get(type_name)

    def type_of(self, url: str) -> str | None:
        """The resource or datatype a StructureDefinition canonical (versioned or not) is about: its `type`, so that
        `…/vitalsigns` is an Observation and `…/Organization|4.0.1` an Organization. A core URL naming no known
        definition is taken for the type of that name; any other unknown URL gives None."""
        sd = self.structure(url)
        if sd is not None:
            return sd.get("type")
        bare = unversioned(url)
        return bare[len(CORE_PREFIX):] if bare.startswith(CORE_PREFIX) else None

    def is_base(self, url: str) -> bool:
        """Whether a canonical names a base definition (Observation, Resource), not a profile of one (vitalsigns):
        a base definition constrains nothing a resource of its type has to be checked against. A core URL naming no
        known definition is taken for a type name, as type_of() takes it."""
        bare = unversioned(url)
        if not bare.startswith(CORE_PREFIX):
            return False
        return bare[len(CORE_PREFIX):] in self.types or self.structure(bare) is None
