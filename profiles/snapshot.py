"""Snapshot generation for StructureDefinitions published with a differential only.

The differential is laid over the base definition's snapshot (generated first if it has none): matching
elements are merged, new slices start as copies of the element they slice, and elements inside datatypes
the base does not expand are expanded from the datatype's own definition. Enough for validation; not a
full implementation of the spec's snapshot algorithm (no re-profiling of type profiles' internals).
"""

from __future__ import annotations

import copy
from typing import Any

from profiles.definitions import Definitions

_REPLACE = ("min", "max", "type", "binding", "slicing", "short", "definition", "maxLength", "mustSupport",
            "isModifier", "sliceName", "contentReference", "minValueInteger", "maxValueInteger")


class SnapshotError(ValueError):
    """The differential names an element the base cannot provide."""


def generate(sd: dict[str, Any], defs: Definitions, _depth: int = 0) -> dict[str, Any]:
    """A copy of `sd` with a generated snapshot (or `sd` itself when it already has one)."""
    if (sd.get("snapshot") or {}).get("element"):
        return sd
    if _depth > 10:
        raise SnapshotError(f"base definition chain of {sd.get('url')} is too deep")
    base_url = sd.get("baseDefinition")
    base = defs.structure(base_url) if base_url else None
    if base is None:
        raise SnapshotError(f"base definition {base_url} of {sd.get('url')} is not known locally")
    base = generate(base, defs, _depth + 1)
    work: dict[str, dict[str, Any]] = {}
    for el in base["snapshot"]["element"]:
        el = copy.deepcopy(el)
        el.setdefault("id", el["path"])
        work[el["id"]] = el
    diffs = (sd.get("differential") or {}).get("element", [])
    for diff in diffs:
        _check_slicing(diff, len(diffs))
        eid = diff.get("id") or _id_from_path(diff)
        target = _ensure(work, _normalise(eid, work), defs)
        _check_choice_path(diff, target)
        _merge(target, diff)
    out = copy.deepcopy(sd)
    out["snapshot"] = {"element": list(work.values())}
    return out


def _id_from_path(diff: dict[str, Any]) -> str:
    return diff["path"] + (f":{diff['sliceName']}" if diff.get("sliceName") else "")


_DISCRIMINATOR_TYPES = {"value", "exists", "pattern", "type", "profile"}


def _check_slicing(diff: dict[str, Any], count: int) -> None:
    """Slicings the HL7 snapshot generator refuses: at the root of a profile that constrains anything below it
    (sdf-20), or with a discriminator type outside R4's DiscriminatorType codes."""
    slicing = diff.get("slicing")
    if not isinstance(slicing, dict):
        return
    path = diff.get("path") or ""
    if "." not in path and count > 1:
        raise SnapshotError(f"Error: The profile has slicing at the root ('{path}'), which is illegal")
    for disc in slicing.get("discriminator") or []:
        dtype = disc.get("type") if isinstance(disc, dict) else None
        if dtype not in _DISCRIMINATOR_TYPES:
            raise SnapshotError(f"Unknown DiscriminatorType code '{dtype}'")


def _check_choice_path(diff: dict[str, Any], target: dict[str, Any]) -> None:
    """A differential path that renames a choice element (`Observation.valueQuantity` for `Observation.value[x]`)
    must name one of its types, unless the element lists its type (the HL7 snapshot generator's rule)."""
    path, base_path = diff.get("path"), target.get("path", "")
    if not isinstance(path, str) or not base_path.endswith("[x]"):
        return
    last, base_last = path.rpartition(".")[2], base_path.rpartition(".")[2]
    if last == base_last or len(diff.get("type") or []) == 1:
        return
    suffix = last[len(base_last) - 3:] if last.startswith(base_last[:-3]) else ""
    if suffix not in {_cap(t.get("code", "")) for t in target.get("type") or []}:
        raise SnapshotError(f"The path must be '{path.replace(last, base_last)}' not '{path}' when the type list "
                            "is not constrained")


def _cap(code: str) -> str:
    return code[:1].upper() + code[1:]


def _normalise(eid: str, work: dict[str, dict[str, Any]]) -> str:
    """`Observation.valueQuantity` (a type-restricted choice) → `Observation.value[x]`."""
    if eid in work:
        return eid
    head, _, last = eid.rpartition(".")
    for candidate in work:
        if candidate.startswith(head + ".") and candidate.endswith("[x]"):
            stem = candidate[len(head) + 1:-3]
            if last.startswith(stem) and last[len(stem):len(stem) + 1].isupper() and "." not in stem:
                return f"{head}.{stem}[x]"
    return eid


def _merge(target: dict[str, Any], diff: dict[str, Any]) -> None:
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key == "constraint":
            have = {c.get("key") for c in target.get("constraint", [])}
            target["constraint"] = target.get("constraint", []) + [c for c in value if c.get("key") not in have]
        elif key == "binding" and isinstance(value, dict) and isinstance(target.get("binding"), dict):
            # the differential's binding refines the base one: what it leaves out (strength, valueSet) is kept,
            # except the base's description and extensions, which belong to the base's binding (as the HL7
            # snapshot generator merges bindings)
            merged = {k: v for k, v in target["binding"].items() if k not in ("description", "extension")}
            merged.update(copy.deepcopy(value))
            target["binding"] = merged
        elif key.startswith(("fixed", "pattern")) or key in _REPLACE or key not in target:
            if key.startswith(("fixed", "pattern")):
                for k in [k for k in target if k.startswith(("fixed", "pattern"))]:
                    del target[k]
            target[key] = copy.deepcopy(value)


def _ensure(work: dict[str, dict[str, Any]], eid: str, defs: Definitions) -> dict[str, Any]:
    if eid in work:
        return work[eid]
    head, _, last = eid.rpartition(".")
    if not head:
        raise SnapshotError(f"element {eid} is not in the base definition")
    name, _, slice_name = last.partition(":")
    if slice_name:  # a new slice: a copy of the element it slices (a re-slice `a/b`: of slice `a`)
        base_el = work.get(f"{head}.{name}:{slice_name.rsplit('/', 1)[0]}") if "/" in slice_name else None
        if base_el is None:
            base_el = _ensure(work, f"{head}.{name}" if head else name, defs)
        el = copy.deepcopy(base_el)
        el.pop("slicing", None)
        el["id"] = eid
        el["sliceName"] = slice_name
        work[eid] = el
        # the slice's children start as copies of the sliced element's children
        prefix = base_el["id"] + "."
        for child_id, child in list(work.items()):
            if child_id.startswith(prefix) and ":" not in child_id[len(prefix):].split(".")[0]:
                new = copy.deepcopy(child)
                new["id"] = eid + "." + child_id[len(prefix):]
                work.setdefault(new["id"], new)
        return el
    parent = _ensure(work, _normalise(head, work), defs)
    # expand the parent's datatype so its elements exist (`valueQuantity.unit`: the Quantity of value[x])
    _expand(work, parent, defs, head.rpartition(".")[2])
    eid = _normalise(f"{parent['id']}.{last}", work)
    if eid not in work:
        raise SnapshotError(f"element {eid} is not in the base definition")
    return work[eid]


def _expand(work: dict[str, dict[str, Any]], parent: dict[str, Any], defs: Definitions, named: str = "") -> None:
    prefix = parent["id"] + "."
    if any(k.startswith(prefix) for k in work):
        return
    ref = parent.get("contentReference")
    if ref:  # a recursive element (Parameters.parameter.part): the base definition's children of its target
        source = ref.split("#", 1)[1]
        base = defs.type_definition(source.split(".", 1)[0])
        for child in (base or {}).get("snapshot", {}).get("element", []):
            child_id = child.get("id") or child["path"]
            if child_id.startswith(source + ".") and ":" not in child_id:
                new = copy.deepcopy(child)
                new["id"] = prefix + child_id[len(source) + 1:]
                new["path"] = parent["path"] + "." + child["path"][len(source) + 1:]
                work.setdefault(new["id"], new)
        return
    types = parent.get("type") or []
    if len(types) > 1 and parent.get("path", "").endswith("[x]"):  # the one type a renamed choice names
        stem = parent["path"].rpartition(".")[2][:-3]
        types = [t for t in types if named == stem + _cap(t.get("code", ""))]
    if len(types) != 1:
        return
    profile = (types[0].get("profile") or [None])[0]
    # a type profile that is not loaded: expand the base type (the validator reports the unknown profile)
    type_sd = (defs.structure(profile) if profile else None) or defs.type_definition(types[0]["code"])
    if type_sd is None:
        return
    type_sd = generate(type_sd, defs)
    elements = type_sd["snapshot"]["element"]
    root = elements[0]["path"]
    for el in elements[1:]:
        el = copy.deepcopy(el)
        rel = (el.get("id") or el["path"])[len(root):]
        el["id"] = parent["id"] + rel
        el["path"] = parent["path"] + el["path"][len(root):]
        work.setdefault(el["id"], el)
