"""Minimisation per purpose (GDPR Art. 5(1)(c), 89(1); PIPL Art. 6): what a purpose does not need does not leave.

The route's `rules.minimise` maps a purpose (or `*`) to:
    keepTypes / dropTypes   resource types kept (an allow-list) or dropped, with every reference to them
    dropPaths               elements removed: `Type.element[.child…]`, `*` for any type; a step may select items by
                            `url` (extensions), `system` (identifiers, telecoms) or a type code:
                            `Patient.identifier(urn:oid:2.16.156.10011.1.3)`, `Patient.telecom(phone)`,
                            `*.extension(urn:helixgate:cn:ext:ethnic-group)`
    birthDate               exact | year | band5 (five-year band: masked date, band as an extension) | drop
    narrative               keep | drop (resource narratives; a Composition section's text becomes a placeholder
                            saying it was withheld, as document profiles such as IPS require one)
    notes                   keep | drop (Annotation `note`, DiagnosticReport.conclusion, other `comment` text)
"""

from __future__ import annotations

import re
from typing import Any

from gateway.exchange.rules import Change, Step
from gateway.exchange.rules.bundle import WITHHELD, copied, name_of, resources, withdraw

BAND_EXTENSION = "urn:helixgate:exchange:ext:birth-year-band"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*|\*)(?:\(([^()]+)\))?\Z")
_PLACEHOLDER = {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{WITHHELD}</div>'}


def policy(route: dict[str, Any], purpose: str, purpose_code: str) -> dict[str, Any]:
    table = (route.get("rules") or {}).get("minimise") or {}
    return table.get(purpose) or table.get(purpose_code) or table.get("*") or {}


def parse_path(path: str) -> list[tuple[str, str | None]]:
    """`Patient.identifier(urn:oid:…)` → [('Patient', None), ('identifier', 'urn:oid:…')]; ValueError if bad.
    A selector may itself hold dots (a URL), so steps are split outside parentheses only."""
    steps, depth, cur = [], 0, ""
    for ch in path:
        if ch == "." and depth == 0:
            steps.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    steps.append(cur)
    out = []
    for s in steps:
        m = _STEP.match(s)
        if not m:
            raise ValueError(f"bad step {s!r} in path {path!r}")
        out.append((m.group(1), m.group(2)))
    if len(out) < 2:
        raise ValueError(f"path {path!r} names no element (Type.element)")
    return out


def _selected(item: Any, sel: str | None) -> bool:
    if sel is None:
        return True
    if not isinstance(item, dict):
        return item == sel
    if sel in (item.get("url"), item.get("system")):
        return True
    return any(isinstance(c, dict) and c.get("code") == sel for c in (item.get("type") or {}).get("coding") or [])


def _drop(node: Any, steps: list[tuple[str, str | None]], where: str, done: list[str]) -> None:
    (name, sel), rest = steps[0], steps[1:]
    if not isinstance(node, dict):
        return
    keys = [k for k in node if not k.startswith("_")] if name == "*" else [name]
    for key in keys:
        if key not in node:
            continue
        value = node[key]
        items = value if isinstance(value, list) else [value]
        if not rest:
            kept = [v for v in items if not _selected(v, sel)]
            if len(kept) == len(items):
                continue
            done.append(f"{where}.{key}" + (f"({sel})" if sel else ""))
            if kept and isinstance(value, list):
                node[key] = kept
            else:
                node.pop(key)
                node.pop("_" + key, None)
            continue
        for j, v in enumerate(items):
            if _selected(v, sel):
                _drop(v, rest, f"{where}.{key}" + (f"[{j}]" if isinstance(value, list) else ""), done)


def _birth(res: dict[str, Any], how: str, where: str) -> list[Change]:
    date = res.get("birthDate")
    if how == "exact" or not isinstance(date, str):
        return []
    year = date[:4]
    if how == "year":
        if len(date) == 4:
            return []
        res["birthDate"] = year
        return [Change("minimise", "generalised", f"{where}.birthDate", "to the year")]
    del res["birthDate"]
    ext = [e for e in (res.get("_birthDate") or {}).get("extension") or []]
    if how == "drop":
        res.pop("_birthDate", None)
        return [Change("minimise", "removed", f"{where}.birthDate")]
    low = int(year) // 5 * 5 if year.isdigit() else None
    res["_birthDate"] = {"extension": [*ext, {"url": DATA_ABSENT, "valueCode": "masked"}]}
    if low is not None:
        res.setdefault("extension", []).append({"url": BAND_EXTENSION, "valueRange": {
            "low": {"value": low, "unit": "year"}, "high": {"value": low + 4, "unit": "year"}}})
    return [Change("minimise", "generalised", f"{where}.birthDate", "to a five-year band")]


def _free_text(node: Any, where: str, done: list[str]) -> None:
    if isinstance(node, dict):
        for key in list(node):
            if key in ("note", "comment", "conclusion"):
                node.pop(key)
                node.pop("_" + key, None)
                done.append(f"{where}.{key}")
            elif isinstance(node[key], dict | list):
                _free_text(node[key], f"{where}.{key}", done)
    elif isinstance(node, list):
        for j, item in enumerate(node):
            _free_text(item, f"{where}[{j}]", done)


def _narrative(res: dict[str, Any], where: str, done: list[str]) -> None:
    if "text" in res and isinstance(res["text"], dict):
        del res["text"]
        done.append(f"{where}.text")
    for j, section in enumerate(res.get("section") or []):  # Composition
        _section(section, f"{where}.section[{j}]", done)


def _section(section: Any, where: str, done: list[str]) -> None:
    if not isinstance(section, dict):
        return
    if isinstance(section.get("text"), dict):  # replaced, not removed: document profiles (IPS) require it
        section["text"] = dict(_PLACEHOLDER)
        done.append(f"{where}.text")
    for j, sub in enumerate(section.get("section") or []):
        _section(sub, f"{where}.section[{j}]", done)


def apply(bundle: dict[str, Any], route: dict[str, Any], purpose: str, purpose_code: str) -> Step:
    rules = policy(route, purpose, purpose_code)
    if not rules:
        return Step(bundle, [], {})
    out = copied(bundle)
    changes: list[Change] = []
    keep, drop = set(rules.get("keepTypes") or ()), set(rules.get("dropTypes") or ())
    gone = {i for i, r in resources(out) if r["resourceType"] in drop or (keep and r["resourceType"] not in keep)}
    changes += [Change("minimise", a, p, "resource type not needed for the purpose") for a, p in withdraw(out, gone)]
    paths = [parse_path(p) for p in rules.get("dropPaths") or ()]
    for i, res in resources(out):
        where = name_of(res, i)
        done: list[str] = []
        for steps in paths:
            if steps[0][0] in ("*", res["resourceType"]):
                _drop(res, steps[1:], where, done)
        if rules.get("notes") == "drop":
            _free_text(res, where, done)
        if rules.get("narrative") == "drop":
            _narrative(res, where, done)
        changes += [Change("minimise", "removed", p) for p in done]
        if res["resourceType"] in ("Patient", "RelatedPerson", "Person"):
            changes += _birth(res, rules.get("birthDate", "exact"), where)
    return Step(out, changes, {})
