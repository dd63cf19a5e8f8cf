"""The China mappers' data tables (tables/*.json), loaded once."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

TABLES = Path(__file__).parent / "tables"


@cache
def table(name: str) -> dict[str, Any]:
    return json.loads((TABLES / f"{name}.json").read_text(encoding="utf-8"))


def document_types() -> dict[str, dict[str, Any]]:
    return table("document-types")["types"]


def document_type_by_template(template_id: str) -> tuple[str, dict[str, Any]] | None:
    return next(((c, t) for c, t in document_types().items() if t["templateId"] == template_id), None)


def identifier_oids() -> dict[str, dict[str, Any]]:
    return table("identifier-oids")["identifiers"]


def ucum(unit: str) -> str | None:
    return table("units")["units"].get(unit.strip())


def ucum_reverse(code: str) -> str:
    """A display string for a UCUM code when a FHIR Quantity has no `unit` text."""
    units = table("units")["units"]
    return next((k for k, v in units.items() if v == code), code)


def data_element(de: str) -> dict[str, str]:
    return table("data-elements")["elements"].get(de, {})


def results_section(loinc: str, title: str) -> bool:
    """True for a body section that holds results (tables/sections.json)."""
    spec = table("sections")["results"]
    return loinc in spec["loinc"] or any(w in title for w in spec["words"])
