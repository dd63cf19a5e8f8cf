"""What one conversion to FHIR keeps while it runs: the resources made, the report, the origins, and which
phenopacket fields were used (everything else is reported as not mapped: unmapped.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mappers.exceptions import Issue
from mappers.ids import resource_id
from mappers.phenopacket.systems import EXT


@dataclass(slots=True)
class Context:
    kind: str  # Phenopacket | Family | Cohort: the root of every source expression
    key: tuple[str, ...] = ()
    resources: list[dict[str, Any]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def rid(self, rtype: str, *parts: str) -> str:
        return resource_id(rtype, "phenopacket", *self.key, *parts)

    def add(self, res: dict[str, Any], where: str) -> dict[str, str]:
        """Keep `res` (from the source path `where`); its Reference."""
        self.resources.append(res)
        self.origins[res["id"]] = self.where(where)
        return {"reference": f"urn:uuid:{res['id']}"}

    def use(self, *paths: str) -> None:
        self.used.update(paths)

    def where(self, path: str) -> str:
        return f"{self.kind}.{path}" if path else self.kind

    def warn(self, details: str, message: str, path: str) -> None:
        self.issues.append(Issue("warning", "informational", details, message, self.where(path)))


def ext(name: str, kind: str, value: Any) -> dict[str, Any]:
    """One of this mapper's extensions (profiles/local/StructureDefinition-phenopacket-*.json)."""
    return {"url": EXT + name, f"value{kind}": value}
