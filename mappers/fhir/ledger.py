"""What a writer from FHIR carried over: it marks the elements it wrote, and everything else of the input is listed
in the conversion report, so nothing is lost in silence."""

from __future__ import annotations

from mappers.exceptions import Issue
from mappers.fhir.genomics import Entry, first_code

# Elements that are not content: the resource's own identity and metadata, and the narrative generated from it.
NOT_CONTENT = {"resourceType", "id", "meta", "text"}


class Ledger:
    """Per input entry, the top-level elements (or `component[i]`) a writer used."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._used: dict[int, set[str]] = {}

    def use(self, entry: Entry, *elements: str) -> None:
        self._used.setdefault(entry.index, set()).update(elements)

    def used(self, entry: Entry) -> bool:
        return entry.index in self._used

    def unmapped(self, entries: list[Entry]) -> list[Issue]:
        """A warning per resource no writer used, and per element (or component) of a used one left behind."""
        out: list[Issue] = []
        for e in entries:
            used = self._used.get(e.index)
            if used is None:
                out.append(Issue("warning", "informational", "fhir-resource-not-carried",
                                 f"{e.label} has no place in the {self.target}; not carried over", e.where))
                continue
            for name, value in e.resource.items():
                if name in NOT_CONTENT or name in used:
                    continue
                if name == "component" and isinstance(value, list):
                    for i, comp in enumerate(value):
                        if f"component[{i}]" not in used:
                            code = first_code(comp.get("code")) if isinstance(comp, dict) else ""
                            out.append(Issue("warning", "informational", "fhir-element-not-carried",
                                             f"{e.label}: component {code or i} was not carried over to the "
                                             f"{self.target}", f"{e.where}.component[{i}]"))
                    continue
                what = f"the extension of {name[1:]}" if name.startswith("_") else name
                out.append(Issue("warning", "informational", "fhir-element-not-carried",
                                 f"{e.label}: {what} has no place in the {self.target}; not carried over",
                                 f"{e.where}.{name}"))
        return out
