"""The conformance resources a validation runs against: StructureDefinitions, ValueSets and CodeSystems,
indexed by canonical URL (and `url|version`), and the other canonical resources instances point to
(Questionnaire, Measure, Library, SearchParameter, ImplementationGuide, ...)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from profiles.deferred import Entry, FileLoader, LazyTable

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
        # Tables answer like dicts; entries given to defer() are parsed on first access (profiles/deferred.py).
        loader = FileLoader()
        self.structures = LazyTable(loader)
        self.value_sets = LazyTable(loader)
        self.code_systems = LazyTable(loader)
        self.others = LazyTable(loader)  # any other canonical resource
        self.types = LazyTable(loader)  # base definitions by type name (Observation, CodeableConcept)
        self.kinds: dict[str, str] = {}  # type name → StructureDefinition.kind of its base definition
        self._other_types: dict[str, str] = {}  # url of each other canonical resource → its resourceType
        self._hash = hashlib.sha256(label.encode())
        self.generation = 0  # counts add() and defer() calls: what was absent before one may be there after it
        self.add(resources)

    def add(self, resources: Iterable[dict[str, Any]]) -> None:
        self.generation += 1
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
            if table is self.others:
                self._other_types[url] = str(rtype)
            if rtype == "StructureDefinition" and res.get("derivation") != "constraint" and url.startswith(
                    CORE_PREFIX) and res.get("kind") != "logical":
                self.types[res["type"]] = res
                self.kinds[res["type"]] = str(res.get("kind", ""))

    def defer(self, entries: Iterable[Entry]) -> None:
        """Add resources known by their index entries (profiles/deferred.py), each parsed when first asked for;
        the same tables, precedence and fingerprint as add() with the parsed resources."""
        self.generation += 1
        tables = {"StructureDefinition": self.structures, "ValueSet": self.value_sets,
                  "CodeSystem": self.code_systems}
        for e in entries:
            table = tables.get(e.resource_type, self.others)
            table.defer(e.url, e.file)
            if e.version:
                table.defer(f"{e.url}|{e.version}", e.file)
            self._hash.update(f"{e.resource_type}|{e.url}|{e.version}".encode())
            if table is self.others:
                self._other_types[e.url] = e.resource_type
            if e.base_type:
                self.types.defer(e.base_type, e.file)
                self.kinds[e.base_type] = e.kind

    def types_of_kind(self, kind: str) -> list[str]:
        """The type names whose base definition has this kind (primitive-type, complex-type, resource), without
        reading the definitions."""
        return [name for name, k in self.kinds.items() if k == kind]

    def canonicals(self, rtype: str) -> list[dict[str, Any]]:
        """Every other canonical resource of `rtype` (ImplementationGuide, ...), once each, reading only those."""
        found = (self.others.get(url) for url, t in self._other_types.items() if t == rtype)
        return list({id(r): r for r in found if r is not None and r.get("resourceType") == rtype}.values())

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
