"""Bundle helpers the rules share: naming resources, resolving references (R4 Bundle rules: fullUrl, or
`Type/id` relative to the Bundle), copying, and withdrawing resources with every reference to them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

WITHHELD = "withheld by the exchange route"
_WITHHELD_DIV = f'<div xmlns="http://www.w3.org/1999/xhtml">{WITHHELD}</div>'
_EMPTY_REASON = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "withheld",
                             "display": "Information Withheld"}]}


def copied(bundle: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(bundle)


def resources(bundle: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(entry index, resource) of each entry that holds a resource."""
    for i, entry in enumerate(bundle.get("entry") or []):
        res = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(res, dict) and isinstance(res.get("resourceType"), str):
            yield i, res


def name_of(res: dict[str, Any], index: int) -> str:
    """`Type/id` (or `Type#entry[i]` without an id): how changes name a resource."""
    rid = res.get("id")
    return f"{res['resourceType']}/{rid}" if isinstance(rid, str) else f"{res['resourceType']}#entry[{index}]"


def aliases(bundle: dict[str, Any]) -> dict[str, int]:
    """Every way a reference may name an entry (its fullUrl, `Type/id`) → the entry's index."""
    out: dict[str, int] = {}
    for i, res in resources(bundle):
        full = (bundle["entry"][i] or {}).get("fullUrl")
        if isinstance(full, str):
            out[full] = i
        if isinstance(res.get("id"), str):
            out[f"{res['resourceType']}/{res['id']}"] = i
    return out


def target(ref: Any, names: dict[str, int]) -> int | None:
    """The entry index a Reference dict points to within the Bundle, if any (a full URL ending in Type/id too)."""
    if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
        return None
    text = ref["reference"]
    if text in names:
        return names[text]
    parts = text.rsplit("/", 3)
    if len(parts) >= 2:
        tail = "/".join(parts[-2:])
        if parts[-2] == "_history" and len(parts) == 4:
            tail = "/".join(parts[:2][-2:])
        return names.get(tail)
    return None


def patients(bundle: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, r) for i, r in resources(bundle) if r["resourceType"] == "Patient"]


def withdraw(bundle: dict[str, Any], drop: set[int]) -> list[tuple[str, str]]:
    """Remove the entries `drop` from `bundle` (in place) and every reference to them: an item of a list of
    references is removed (a Composition section left without entries gets emptyReason `withheld`), a single
    reference keeps only a display saying it was withheld. Returns (action, path) pairs."""
    if not drop:
        return []
    names = aliases(bundle)
    done: list[tuple[str, str]] = []
    for i, res in resources(bundle):
        if i in drop:
            done.append(("withheld", f"{name_of(res, i)}"))
    for i, res in resources(bundle):
        if i not in drop:
            _cut(res, names, drop, name_of(res, i), done)
    bundle["entry"] = [e for i, e in enumerate(bundle.get("entry") or []) if i not in drop]
    if bundle.get("type") == "document":  # R4 bdl-?: every entry reachable from the Composition, as before
        orphans = unreachable(bundle)
        if orphans:
            done += withdraw(bundle, orphans)
    return done


def unreachable(bundle: dict[str, Any]) -> set[int]:
    """Entries of a document no longer linked (forward or backward) to its Composition (the first entry)."""
    names = aliases(bundle)
    links: dict[int, set[int]] = {}
    for i, res in resources(bundle):
        for ref in _references(res):
            j = target(ref, names)
            if j is not None and j != i:
                links.setdefault(i, set()).add(j)
                links.setdefault(j, set()).add(i)
    seen, todo = {0}, [0]
    while todo:
        for j in links.get(todo.pop(), ()):
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return {i for i, _ in resources(bundle) if i not in seen}


def _references(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for v in node.values():
            if isinstance(v, dict | list):
                yield from _references(v)
    elif isinstance(node, list):
        for v in node:
            yield from _references(v)


def _cut(node: Any, names: dict[str, int], drop: set[int], path: str, done: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            where = f"{path}.{key}"
            if isinstance(value, list):
                kept = []
                for j, item in enumerate(value):
                    if target(item, names) in drop:
                        done.append(("removed", f"{where}[{j}]"))
                        continue
                    _cut(item, names, drop, f"{where}[{j}]", done)
                    kept.append(item)
                if kept:
                    node[key] = kept
                elif key == "entry" and ("title" in node or "code" in node):  # a Composition section
                    del node[key]
                    node["emptyReason"] = _EMPTY_REASON  # R4 cmp-2: an empty section says why
                    node.setdefault("text", {"status": "generated", "div": _WITHHELD_DIV})  # cmp-1: text or entries
                else:
                    node[key] = [{"display": WITHHELD}]
            elif isinstance(value, dict):
                if target(value, names) in drop:
                    node[key] = {"display": WITHHELD}
                    done.append(("replaced", where))
                else:
                    _cut(value, names, drop, where, done)


def subject_key(patient: dict[str, Any]) -> tuple[str, str]:
    """The identifier that stands for a data subject (counters, pseudonyms that survive minimisation): a national
    id (v2-0203 NI), else an official one, else a medical record number, else the first; without any, the id."""
    idents = [i for i in patient.get("identifier") or [] if isinstance(i, dict) and isinstance(i.get("value"), str)]

    def rank(i: dict[str, Any]) -> int:
        codes = {c.get("code") for c in (i.get("type") or {}).get("coding") or [] if isinstance(c, dict)}
        return 0 if "NI" in codes else 1 if i.get("use") == "official" else 2 if "MR" in codes else 3

    if idents:
        best = min(idents, key=rank)
        return str(best.get("system", "")), best["value"]
    return "urn:helixgate:resource-id", f"Patient/{patient.get('id')}"
