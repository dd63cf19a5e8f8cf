"""Rules for StructureDefinitions of logical models and specialisations (R4 StructureDefinition: `type` is a FHIR
type or, for logical models, an absolute URL; a specialisation defines a new type; element paths start with the
type's name, sdf-19 and the element path rules of http://hl7.org/fhir/R4/elementdefinition.html#path)."""

from __future__ import annotations

from typing import Any

from profiles.definitions import CORE_PREFIX
from profiles.rules import rule
from profiles.rules.structure_definition import elements


@rule("StructureDefinition")
def type_and_paths(validator: Any, sd: dict[str, Any], path: str, run: Any) -> None:
    typ, url = sd.get("type"), sd.get("url")
    if not isinstance(typ, str) or not typ:
        return
    absolute = "://" in typ or typ.startswith("urn:")
    if sd.get("kind") == "logical":
        if not absolute and validator.defs.structure(CORE_PREFIX + typ) is None:
            run.add("error", "invalid", f"{path}.type", f"The type {typ} is not legal because it is not defined in "
                    "the FHIR specification. Other types must have a namespace on them")
        elif absolute and isinstance(url, str) and _namespace(typ) != _namespace(url):
            run.add("warning", "invalid", f"{path}.type", f"The type namespace {typ} SHOULD match the url namespace "
                    f"{url} for the definition of the type")
    if sd.get("derivation") == "specialization" and isinstance(sd.get("baseDefinition"), str):
        base = validator.defs.structure(sd["baseDefinition"])
        if base is not None and base.get("type") == typ and base.get("url") != url:
            run.add("error", "not-found", path, f"The type {typ} must not be the same as the type in the base "
                    f"structure {sd['baseDefinition']} that is being specialised")
    name = typ.rstrip("/").rsplit("/", 1)[-1] if absolute else typ
    for part in ("differential", "snapshot"):
        for i, element in elements(sd, part):
            epath = element.get("path")
            if isinstance(epath, str) and epath.split(".", 1)[0] != name:
                run.add("error", "not-found", f"{path}.{part}.element[{i}]", f"The path {epath} must start with the "
                        f"type of the structure {name}")


def _namespace(url: str) -> str:
    """The part of a URL before its StructureDefinition/ segment (or before its last segment)."""
    head, sep, _ = url.partition("/StructureDefinition/")
    return head if sep else url.rstrip("/").rsplit("/", 1)[0]
