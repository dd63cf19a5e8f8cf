"""ConceptMaps shipped as data (mappers/conceptmaps/<id>.json), loaded once and looked up by id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONCEPTMAP_DIR = Path(__file__).parent / "conceptmaps"


@dataclass(frozen=True, slots=True)
class Translation:
    code: str
    display: str
    equivalence: str  # equivalent | wider | narrower | ... ; "unmatched" when group.unmapped supplied it
    system: str


@dataclass(frozen=True, slots=True)
class _Map:
    forward: dict[str, Translation]
    reverse: dict[str, Translation]
    unmapped: dict[str, Any]
    source_system: str
    target_system: str


@cache
def conceptmap(map_id: str) -> dict[str, Any]:
    """The ConceptMap resource with this id. Raises KeyError naming the id when there is no such file."""
    path = CONCEPTMAP_DIR / f"{map_id}.json"
    if not path.is_file():
        raise KeyError(f"no ConceptMap {map_id!r} in {CONCEPTMAP_DIR}")
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _compiled(map_id: str) -> _Map:
    group = conceptmap(map_id)["group"][0]
    fwd: dict[str, Translation] = {}
    rev: dict[str, Translation] = {}
    for el in group["element"]:
        for t in el.get("target", []):
            fwd.setdefault(el["code"], Translation(t["code"], t.get("display", ""), t["equivalence"], group["target"]))
            # Reverse only through exact matches, so a round trip never widens a code.
            if t["equivalence"] in ("equivalent", "equal"):
                back = Translation(el["code"], el.get("display", ""), t["equivalence"], group["source"])
                rev.setdefault(t["code"], back)
    return _Map(fwd, rev, group.get("unmapped", {}), group["source"], group["target"])


def translate(map_id: str, code: str, *, reverse: bool = False) -> Translation | None:
    """Map `code` through ConceptMap `map_id`; None when unmatched and the map's `unmapped` mode is 'provided'.

    An unmatched code with `unmapped.mode = fixed` yields the fixed code with equivalence 'unmatched'.
    """
    m = _compiled(map_id)
    hit = (m.reverse if reverse else m.forward).get(code)
    if hit is not None:
        return hit
    if not reverse and m.unmapped.get("mode") == "fixed":
        return Translation(m.unmapped["code"], m.unmapped.get("display", ""), "unmatched", m.target_system)
    return None
