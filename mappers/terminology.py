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


# --- Every match, rule-based unmapped handling and map lookup (the $translate operation builds on these) ---

# group.unmapped {mode: other-map, url: <rule>} names a rule implemented in code, for maps that cannot list every
# code (e.g. national ICD-10 extensions truncated to WHO ICD-10). Value: "module:function" returning Translations.
RULES = {"urn:helixgate:conceptmap-rule:icd-10-cn-truncate": "mappers.cda_cn.icd10:to_who"}
# R4 equivalence is read from target to source; turning a map around turns these round.
_INVERSE = {"wider": "narrower", "narrower": "wider", "subsumes": "specializes", "specializes": "subsumes"}


def _rule(url: str) -> Any:
    import importlib

    module, func = RULES[url].split(":")
    return getattr(importlib.import_module(module), func)


def translate_all(map_id: str, code: str, *, reverse: bool = False) -> list[Translation]:
    """Every match for `code` in ConceptMap `map_id` (all groups, all targets), equivalences as the map states.

    Unlisted codes follow group.unmapped: 'fixed' gives the fixed code with equivalence 'unmatched', 'provided' the
    code itself, 'other-map' a rule from RULES or another ConceptMap (by url or id). Reversed, listed elements
    match by target code with the equivalence inverted (wider ⇄ narrower, subsumes ⇄ specializes); unmapped
    handling does not apply in reverse.
    """
    out: list[Translation] = []
    for group in conceptmap(map_id).get("group", []):
        for el in group.get("element", []):
            for t in el.get("target", []):
                if not reverse and el.get("code") == code:
                    out.append(Translation(t["code"], t.get("display", ""), t["equivalence"], group["target"]))
                elif reverse and t.get("code") == code:
                    eq = _INVERSE.get(t["equivalence"], t["equivalence"])
                    out.append(Translation(el["code"], el.get("display", ""), eq, group["source"]))
    if out or reverse:
        return out
    for group in conceptmap(map_id).get("group", []):
        unmapped = group.get("unmapped", {})
        mode = unmapped.get("mode")
        if mode == "fixed":
            out.append(Translation(unmapped["code"], unmapped.get("display", ""), "unmatched", group["target"]))
        elif mode == "provided":
            out.append(Translation(code, "", "equal", group["target"]))
        elif mode == "other-map" and unmapped.get("url") in RULES:
            out.extend(_rule(unmapped["url"])(code))
        elif mode == "other-map":
            other = find_conceptmap(unmapped.get("url", ""))
            if other is not None and other["id"] != map_id:
                out.extend(translate_all(other["id"], code))
    return out


@cache
def conceptmap_ids() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in CONCEPTMAP_DIR.glob("*.json")))


def find_conceptmap(url_or_id: str) -> dict[str, Any] | None:
    """The ConceptMap whose canonical url (or id) is `url_or_id`, else None."""
    for map_id in conceptmap_ids():
        cm = conceptmap(map_id)
        if url_or_id in (cm.get("url"), cm["id"]):
            return cm
    return None


def conceptmaps_for(system: str | None, target_system: str | None = None, target_valueset: str | None = None,
                    *, reverse: bool = False) -> list[dict[str, Any]]:
    """ConceptMaps with a group from `system` (to `target_system`; both turned round when reversing) and, when
    given, whose targetUri (sourceUri when reversing) is `target_valueset`."""
    found = []
    for map_id in conceptmap_ids():
        cm = conceptmap(map_id)
        frm, to, vs = ("target", "source", "sourceUri") if reverse else ("source", "target", "targetUri")
        if target_valueset and cm.get(vs) != target_valueset:
            continue
        if any((system is None or g.get(frm) == system) and (target_system is None or g.get(to) == target_system)
               for g in cm.get("group", [])):
            found.append(cm)
    return found


@cache
def conceptmaps_digest() -> str:
    """A hash of every ConceptMap file: part of translation cache keys, so editing a map invalidates them."""
    import hashlib

    h = hashlib.sha256()
    for map_id in conceptmap_ids():
        h.update((CONCEPTMAP_DIR / f"{map_id}.json").read_bytes())
    return h.hexdigest()[:16]
