"""The state of one validation: the issues found so far, where the walk is (the resource, its container, the nearest
Bundle), what references resolve to, and the verdicts remembered for this call. Rule modules and the checks report
through `run.add(...)` and resolve references with `run.resolve(ref)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mappers.exceptions import Issue
from profiles import content, fhirpath
from profiles import references as references_module


@dataclass(slots=True, weakref_slot=True)
class Run:
    """State of one validate() call: the issues found and the Bundle's resources for resolution."""

    root: dict[str, Any]
    issues: list[Issue] = field(default_factory=list)
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    conforms: dict[tuple[int, str], bool] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    container: dict[str, Any] | None = None  # while inside a contained resource: the resource containing it
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # Type/id → the Bundle entries with it
    applied: list[str] = field(default_factory=list)  # while rules run: the profiles the resource was checked against
    full_urls: dict[int, str] = field(default_factory=dict)  # id(entry resource) → its Bundle entry's fullUrl
    extra_profiles: dict[int, list[str]] = field(default_factory=dict)  # id(entry resource) → bundle-param profiles
    type_ids: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # Type/id → (entry no, fullUrl)
    depth: int = 0  # how many JSON objects deep the element walk is
    bundle: dict[str, Any] | None = None  # the nearest Bundle around the element being walked (root or nested)
    validator: Any = None  # the Validator running (its terminology answers memberOf(), conformsTo() validates)
    _scope: fhirpath.Scope | None = None
    # the CPU seconds spent on the FHIRPath engine where compiled invariants could not decide, and the invariants
    # left unchecked past its budget (profiles/invariants.py ENGINE_SECONDS): one budget per validate() call
    engine_seconds: list[float] = field(default_factory=lambda: [0.0])
    unchecked: set[str] = field(default_factory=set)
    declined: int = 0  # values the memo could not vouch for (checkers._remembering): an element's, whole, neither

    def add(self, severity: str, code: str, path: str, message: str, details: str = "validation") -> None:
        self.issues.append(Issue(severity, code, details, message, path))

    def resolve(self, ref: str) -> dict[str, Any] | None:
        if not isinstance(ref, str):
            return None  # a malformed Reference.reference (reported by the type checks) resolves to nothing
        if ref.startswith("#"):
            # inside a contained resource, #id names a sibling: the container holds them all (R4 References 2.3.0.1)
            holder = self.container if self.container is not None else self.resource
            return next((c for c in content.objects(holder.get("contained")) if c.get("id") == ref[1:]), None)
        return references_module.resolve(self, ref)

    def scope(self) -> fhirpath.Scope:
        """What FHIRPath functions need from this validation (resolve(), memberOf(), conformsTo()), made once."""
        if self._scope is None:
            v = self.validator
            self._scope = fhirpath.Scope(self.resolve, lambda url, s, c: v.tx.contains(url, s, c).in_set,
                                         lambda res, url: v.conforms(res, url, self, strict=True))
        return self._scope

    def sub(self, resource: dict[str, Any]) -> Run:
        """A run sharing this one's resolution state, for checking `resource` against a profile on the side (its
        issues stay apart)."""
        return Run(self.root, index=self.index, conforms=self.conforms, resource=resource, full_urls=self.full_urls,
                   type_ids=self.type_ids, depth=self.depth, validator=self.validator,
                   engine_seconds=self.engine_seconds, unchecked=self.unchecked)
