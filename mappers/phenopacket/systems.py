"""Ontology terms (phenopacket OntologyClass: a CURIE id and a label) ⇄ FHIR Codings, by the table of prefixes
(tables/ontologies.json), and the helixgate URIs this mapper mints (urn:helixgate:phenopacket:…, documented in
README "GA4GH Phenopackets")."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

NS = "urn:helixgate:phenopacket:"
EXT = NS + "ext:"  # extension URLs (StructureDefinitions in profiles/local)
CS = NS + "cs:"  # code systems of phenopacket enums and of this mapper's component codes
ID = NS + "id"  # Bundle.identifier / Provenance source: the phenopacket's id
INDIVIDUAL = NS + "individual"  # Patient.identifier: Individual.id
ALTERNATE_ID = NS + "alternate-id"  # Patient.identifier: Individual.alternateIds
BIOSAMPLE = NS + "biosample"
INTERPRETATION = NS + "interpretation"
VARIATION = NS + "variation-descriptor"
RESOURCE = NS + "resource"  # Provenance.entity: a metaData resource, by its id
EXTERNAL_REFERENCE = NS + "external-reference"
COMPONENT = CS + "component"  # Observation.component codes the IGs do not give


@cache
def table() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "tables" / "ontologies.json").read_text("utf-8"))


@cache
def _by_system() -> dict[str, tuple[str, str]]:
    return {spec["system"]: (prefix, spec["code"]) for prefix, spec in table()["prefixes"].items()}


def coding(term: dict[str, Any]) -> dict[str, str]:
    """A phenopacket OntologyClass {id, label} → a Coding in the ontology's FHIR system."""
    curie = str(term.get("id", ""))
    prefix, sep, local = curie.partition(":")
    spec = table()["prefixes"].get(prefix) if sep else None
    if spec is None:
        out = {"system": table()["fallback"] + (prefix if sep else "none"), "code": curie}
    else:
        out = {"system": spec["system"], "code": curie if spec["code"] == "curie" else local}
    if term.get("label"):
        out["display"] = str(term["label"])
    return out


def concept(term: dict[str, Any]) -> dict[str, Any]:
    return {"coding": [coding(term)]}


def term(coding: dict[str, Any]) -> dict[str, str]:
    """A Coding → a phenopacket OntologyClass (the CURIE rebuilt from the system); a system the table does not
    know keeps its code as the id."""
    system, code = str(coding.get("system", "")), str(coding.get("code", ""))
    known = _by_system().get(system)
    if known is not None:
        prefix, style = known
        curie = code if style == "curie" or code.startswith(prefix + ":") else f"{prefix}:{code}"
    else:
        curie = code
    out = {"id": curie}
    if coding.get("display"):
        out["label"] = str(coding["display"])
    return out


def term_of(cc: Any) -> dict[str, str] | None:
    """The OntologyClass of a CodeableConcept: its first coding (its text as the label when it has none)."""
    if not isinstance(cc, dict):
        return None
    codings = [c for c in cc.get("coding") or [] if isinstance(c, dict) and c.get("code")]
    if not codings:
        return None
    out = term(codings[0])
    if "label" not in out and cc.get("text"):
        out["label"] = str(cc["text"])
    return out


def coding_in(cc: Any, prefix: str) -> dict[str, Any] | None:
    """The first coding of a CodeableConcept in the system of `prefix` (GENO, SO, HGNC, …)."""
    system = table()["prefixes"][prefix]["system"]
    codings = cc.get("coding") if isinstance(cc, dict) else None
    return next((c for c in codings or [] if isinstance(c, dict) and c.get("system") == system), None)


def resource(prefix: str) -> dict[str, str] | None:
    """metaData.resources entry of an ontology prefix (no version: FHIR does not say which was used)."""
    spec = table()["prefixes"].get(prefix)
    if spec is None:
        return None
    return {**spec["resource"], "namespacePrefix": prefix}


def own(code: str, display: str | None = None) -> dict[str, Any]:
    """A CodeableConcept in this mapper's component code system."""
    c = {"system": COMPONENT, "code": code}
    if display:
        c["display"] = display
    return {"coding": [c]}
