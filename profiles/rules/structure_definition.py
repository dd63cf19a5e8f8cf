"""Rules the HL7 validator applies to StructureDefinition resources themselves (its StructureDefinitionValidator
and the errors its snapshot generator reports), beyond what the StructureDefinition definition and invariants say:

- a constraint's differential must produce a snapshot over its base (FHIR R4 §2.21.0.4 "profiles");
- an element that a slicing applies to cannot redefine that slicing (§5.1.0.7 "slicing": a slice carrying its own
  slicing is a re-slice of a slice already sliced the same way);
- a discriminator path must select something in the types of the element it slices (§5.1.0.7);
- a fixed value set by the base cannot be changed by a constraint (constraints only restrict);
- a type profile must be a profile on that type (§2.21.0.4: "profile: ... must be a constraint on the type");
- obligation profiles a profile inherits from must be obligation profiles on the same base.

`objects`, `elements`, `base_elements` and `is_obligation_profile` serve the other StructureDefinition rules
(obligation_profiles.py, logical_models.py) too.
"""

from __future__ import annotations

import weakref
from typing import Any

from profiles import patterns
from profiles.content import objects_at
from profiles.elements import Node
from profiles.matching import split_path
from profiles.rules import rule
from profiles.snapshot import SnapshotError, generate

_OBLIGATION_FLAGS = ("http://hl7.org/fhir/StructureDefinition/obligation-profile",
                     "http://hl7.org/fhir/tools/StructureDefinition/obligation-profile")
_INHERIT_OBLIGATIONS = "http://hl7.org/fhir/StructureDefinition/inherit-obligations"
_SLICE = patterns.compile(r":[^.]*")
_FUNCTION = patterns.compile(r"^([A-Za-z]+)\((.*)\)$")
# SnapshotError, or a differential too broken to read (the snapshot generator reads its input as well-formed)
_SNAPSHOT_FAILURES = (ValueError, KeyError, TypeError, AttributeError)
# snapshots of base definitions by id, generated once per Definitions (the definitions do not change)
_BASES: weakref.WeakKeyDictionary[Any, dict[int, tuple[dict[str, Any], dict[str, dict[str, Any]]]]] = (
    weakref.WeakKeyDictionary())


def elements(sd: dict[str, Any], part: str) -> list[tuple[int, dict[str, Any]]]:
    """(index, element) of a StructureDefinition's differential or snapshot."""
    got = sd.get(part)
    listed = got.get("element") if isinstance(got, dict) else None
    return [(i, e) for i, e in enumerate(listed) if isinstance(e, dict)] if isinstance(listed, list) else []


def is_obligation_profile(sd: dict[str, Any]) -> bool:
    """Flagged with the obligation-profile extension (its core or its tooling URL)."""
    return any(e.get("url") in _OBLIGATION_FLAGS and e.get("valueBoolean") is True for e in objects_at(sd, "extension"))


def base_elements(defs: Any, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The snapshot elements of a definition from `defs` by id (or path), generated once; empty when the snapshot
    cannot be generated (the base's own problem, reported when it is validated itself). Read-only."""
    cache = _BASES.setdefault(defs, {})
    hit = cache.get(id(base))  # by identity: two versions of one url are two definitions
    if hit is None or hit[0] is not base:
        try:
            by_id = {el.get("id") or el.get("path"): el for el in generate(base, defs)["snapshot"]["element"]}
        except _SNAPSHOT_FAILURES:
            by_id = {}
        hit = cache[id(base)] = (base, by_id)
    return hit[1]


@rule("StructureDefinition")
def structure_definition(validator: Any, sd: dict[str, Any], path: str, run: Any) -> None:
    defs = validator.defs
    _context(sd, path, run)
    base_url = sd.get("baseDefinition")
    base = defs.structure(base_url) if isinstance(base_url, str) else None
    if isinstance(base_url, str) and base is None:
        run.add("warning", "not-found", path, f"Unable to find base {base_url} for StructureDefinition, so can't "
                "check the differential")
    diff = [e for _, e in elements(sd, "differential")]
    if base is not None and sd.get("derivation") == "constraint":
        try:
            generate({k: v for k, v in sd.items() if k != "snapshot"}, defs)
        except _SNAPSHOT_FAILURES as e:
            # The generator's own refusals name the element; anything else is a Python error on content of the
            # wrong shape, whose text ("'list' object has no attribute 'get'") would only puzzle the author
            why = str(e) if isinstance(e, SnapshotError) else "the differential is not well-formed (see its errors)"
            run.add("error", "exception", path, f"Error generating Snapshot: {why} (this usually arises from a "
                    "problem in the differential)")
        base_snapshot = base_elements(defs, base)
        _slicing_redefined(diff, base_snapshot, path, run)
        _order(diff, base_snapshot, sd, path, run)
        _fixed_values(diff, base_snapshot, base, path, run)
    for where in ("differential", "snapshot"):
        for i, el in elements(sd, where):
            epath = f"{path}.{where}.element[{i}]"
            if where == "differential" and isinstance(el.get("slicing"), dict):
                if isinstance(el.get("path"), str) and el["path"] and "." not in el["path"]:
                    run.add("error", "invalid", epath, "Slicing is not allowed at the root of a profile")
                _discriminators(validator, el, epath, run)
            _type_profiles(defs, el, epath, run)
            if isinstance(el.get("binding"), dict):
                _bindable(defs, el, epath, run)
    _inherited_obligations(defs, sd, path, run)


def _context(sd: dict[str, Any], path: str, run: Any) -> None:
    if sd.get("type") != "Extension":
        return
    for i, ctx in enumerate(sd.get("context") if isinstance(sd.get("context"), list) else []):
        if isinstance(ctx, dict) and ctx.get("type") == "element" and ctx.get("expression") == "Element":
            run.add("warning", "business-rule", f"{path}.context[{i}]", f"Review the extension type for "
                    f"{sd.get('id') or sd.get('name')}: extensions should not have a context of Element unless it's "
                    "really intended that they can be used anywhere")


# ---- slicing ----
def _slicing_summary(s: dict[str, Any]) -> str:
    ordered = "??" if "ordered" not in s else ("ordered" if s["ordered"] else "unordered")
    discs = ", ".join(f"{d.get('type')}={d.get('path')}" for d in objects_at(s, "discriminator"))
    return f"{ordered}/{s.get('rules', '??')} [{discs}]"


def _slicing_matches(s1: dict[str, Any], s2: dict[str, Any]) -> bool:
    for key in ("ordered", "rules"):
        if key in s2 and s1.get(key) != s2[key]:
            return False
    return (s1.get("discriminator") or []) == (s2.get("discriminator") or [])


def _slicer_key(el: dict[str, Any]) -> str:
    eid = el.get("id") or el.get("path")
    if not isinstance(eid, str):
        return ""
    if el.get("sliceName"):
        head, _, last = eid.rpartition(".")
        last = last.split(":", 1)[0]
        return f"{head}.{last}" if head else last
    return eid


def _slicing_redefined(diff: list[dict[str, Any]], base: dict[str, dict[str, Any]], path: str, run: Any) -> None:
    """A differential that introduces a slicing and then states a different one on a slice of it (the snapshot
    generator's "attempt to change slicing"). Slicings inherited from the base are re-sliced, not redefined."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for el in diff:
        groups.setdefault(_slicer_key(el), []).append(el)
    for key, members in groups.items():
        first = members[0]
        slicing = first.get("slicing")
        if len(members) < 2 or not isinstance(slicing, dict):
            continue
        inherited = base.get(key) or base.get(_SLICE.sub("", key)) or {}
        if inherited.get("slicing"):
            continue
        for other in members[1:]:
            theirs = other.get("slicing")
            if isinstance(theirs, dict) and not _slicing_matches(slicing, theirs):
                run.add("error", "business-rule", path, f"The element at {first.get('id') or first.get('path')} "
                        f"defines the slicing {_slicing_summary(slicing)} but then an element in the slicing "
                        f"{other.get('id') or other.get('path')} tries to redefine the slicing to "
                        f"{_slicing_summary(theirs)}")


def _type_root(validator: Any, type_code: str) -> Node | None:
    """The compiled base definition of a type (compiled once per validator)."""
    tsd = validator.defs.type_definition(type_code)
    return validator.node(tsd["url"]) if tsd is not None else None


def _child_types(validator: Any, type_code: str, name: str) -> list[str] | None:
    """Type codes of element `name` of datatype/resource `type_code`; None when it has no such element, [] when
    it cannot be told (unknown type, backbone content)."""
    root = _type_root(validator, type_code)
    if root is None:
        return []
    kid = root.children.get(name) or root.children.get(f"{name}[x]")
    if kid is None:
        return None
    return [] if kid.content_ref else [t.code for t in kid.types if t.code]


def discriminator_valid(validator: Any, types: list[str], expression: str) -> bool:
    """Whether a discriminator path can select something from elements of `types` (only what can be told from
    the type definitions: unknown functions, resolve() and backbone content are given the benefit of the doubt)."""
    if expression.rstrip().endswith("."):
        return False  # an empty last step selects nothing
    current = list(types)
    for step in (s.strip() for s in split_path(expression)):
        if not current or any(t in ("BackboneElement", "Element", "Resource") for t in current):
            return True
        if step == "$this":
            continue
        m = _FUNCTION.match(step)
        if m:
            fn, arg = m.groups()
            if fn == "extension":
                current = ["Extension"]
            elif fn in ("ofType", "as"):
                current = [arg.strip().strip("'\"")]
            else:  # resolve() and anything else: beyond what the definitions tell
                return True
            continue
        found: list[str] = []
        known = False
        for t in current:
            kids = _child_types(validator, t, step)
            if kids is None:
                continue
            known = True
            if not kids:
                return True
            found += kids
        if not known:
            return False
        current = found
    return True


def _discriminators(validator: Any, el: dict[str, Any], epath: str, run: Any) -> None:
    """ElementDefinition.slicing.discriminator.path: "a FHIRPath expression ... that is used to identify the
    element on which discrimination is based" (R4 §5.1.0.7); checked for elements the base type defines."""
    path = el.get("path")
    types = [t.get("code") for t in objects_at(el, "type") if isinstance(t.get("code"), str)]
    if not isinstance(path, str) or "." not in path or not types:
        return
    head, *steps = path.split(".")
    node = _type_root(validator, head)
    for step in steps:
        node = node.children.get(step) if node is not None else None
    if node is None:
        return
    discs = el["slicing"].get("discriminator")
    for i, disc in enumerate(discs if isinstance(discs, list) else []):
        dpath = disc.get("path") if isinstance(disc, dict) else None
        if isinstance(dpath, str) and not discriminator_valid(validator, types, dpath):
            run.add("error", "invalid", f"{epath}.slicing.discriminator[{i}]", f"The discriminator path '{dpath}' "
                    f"does not appear to be valid for the element that is being sliced '{path}'")


# ---- order ----
def _position(positions: dict[str, int], choices: dict[str, list[str]], elpath: str) -> tuple[int, ...] | None:
    """The snapshot positions of each level of `elpath` (None when the base snapshot does not list it)."""
    key: list[int] = []
    prefix = ""
    for seg in elpath.split("."):
        cand = f"{prefix}.{seg}" if prefix else seg
        if cand not in positions:
            cand = next((f"{prefix}.{stem}[x]" for stem in choices.get(prefix, ())
                         if seg.startswith(stem) and seg[len(stem):len(stem) + 1].isupper()), cand)
        if cand not in positions:
            return None
        key.append(positions[cand])
        prefix = cand
    return tuple(key)


def _order(diff: list[dict[str, Any]], base: dict[str, dict[str, Any]], sd: dict[str, Any], path: str,
           run: Any) -> None:
    """A differential lists its elements in snapshot order (FHIR R4 §2.21.0.4: "the differential ... in the same
    order as the snapshot"); the HL7 snapshot generator walks the base once, so an element listed after one that
    comes later in the base finds no match. Checked for the elements outside slices that the base lists itself."""
    positions = {eid: i for i, eid in enumerate(base) if ":" not in eid}
    choices: dict[str, list[str]] = {}
    for eid in positions:
        if eid.endswith("[x]"):
            head, _, last = eid.rpartition(".")
            choices.setdefault(head, []).append(last[:-3])
    keyed = []
    for i, el in enumerate(diff):
        eid, elpath = el.get("id"), el.get("path")
        if el.get("sliceName") or not isinstance(elpath, str) or (isinstance(eid, str) and ":" in eid):
            continue
        key = _position(positions, choices, elpath)
        if key is not None:
            keyed.append((key, i))
    unmatched, cursor = [], -1
    for _, i in sorted(keyed):
        if i < cursor:
            unmatched.append(i)
        else:
            cursor = i
    if not unmatched:
        return
    ids = []
    for i in sorted(unmatched):
        eid = diff[i].get("id") if isinstance(diff[i].get("id"), str) else diff[i]["path"]
        ids.append(eid)
        run.add("error", "value", f"{path}.differential.element[{i}]", f"No match found for {eid} in the generated "
                "snapshot: check that the path and definitions are legal in the differential (including order)")
    run.add("error", "value", path, f"The profile {sd.get('url')} has {len(ids)} element"
            f"{'s' if len(ids) > 1 else ''} in the differential (id: {', '.join(ids)}) that don't have a matching "
            "element in the snapshot: check that the path and definitions are legal in the differential "
            "(including order)")


# ---- binding ----
# Types a binding applies to (the HL7 validator's "can-bind" type characteristic, R5 §2.1.28.0.4; in R4 the same
# types: ElementDefinition.binding "only for elements of type code, Coding, CodeableConcept, Quantity, string, uri"
# and their derivatives).
_CAN_BIND = {"string", "uri", "code", "oid", "url", "uuid", "CodeableConcept", "CodeableReference", "Coding",
             "Quantity", "Age", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity", "Range", "Extension"}


def _bindable(defs: Any, el: dict[str, Any], epath: str, run: Any) -> None:
    codes = [t["code"] for t in objects_at(el, "type") if isinstance(t.get("code"), str)]
    known = [c for c in codes if defs.type_definition(c) is not None]
    if codes and known and len(known) == len(codes) and not any(c in _CAN_BIND for c in codes):
        run.add("error", "business-rule", epath, f"This element has a Binding but the types [{', '.join(codes)}] "
                "do not make this kind of constraint relevant")


# ---- fixed values ----
def _fixed(el: dict[str, Any]) -> tuple[str, Any] | None:
    return next(((k, v) for k, v in el.items() if k.startswith("fixed")), None)


def _fixed_values(diff: list[dict[str, Any]], base: dict[str, dict[str, Any]], base_sd: dict[str, Any], path: str,
                  run: Any) -> None:
    """A constraint cannot change a value its base fixes (the base element is found by path, as the HL7 validator
    does, so that slices compare with the element they slice)."""
    source = f"{base_sd.get('url')}|{base_sd['version']}" if base_sd.get("version") else base_sd.get("url")
    for i, el in enumerate(diff):
        mine = _fixed(el)
        base_el = base.get(el["path"]) if mine is not None and isinstance(el.get("path"), str) else None
        theirs = _fixed(base_el) if base_el else None
        if mine is None or theirs is None or mine == theirs:
            continue
        where = f"{path}.differential.element[{i}].{mine[0]}"
        if mine[0] != theirs[0]:
            run.add("error", "invalid", where, f"The fixed value has type '{mine[0][5:]}' but the base fixes a value "
                    f"of type '{theirs[0][5:]}' ({source})")
        else:
            run.add("error", "value", where, f"Value is '{mine[1]}' but is fixed to '{theirs[1]}' in the profile "
                    f"{source}, because the value must match the fixed value defined in '{source}'")


# ---- type profiles ----
def _base_type(defs: Any, sd: dict[str, Any]) -> dict[str, Any] | None:
    seen = 0
    while sd is not None and sd.get("derivation") == "constraint" and seen < 20:
        sd = defs.structure(sd.get("baseDefinition") or "")
        seen += 1
    return sd


def _is_instance_of(defs: Any, sd: dict[str, Any] | None, code: str) -> bool:
    """The HL7 validator's test: the type is the code, or the code names it, walking up abstract ancestors only."""
    while sd is not None:
        if sd.get("type") == code or sd.get("url") == code:
            return True
        parent = defs.structure(sd["baseDefinition"]) if sd.get("baseDefinition") else None
        sd = parent if parent is not None and (parent.get("abstract") or parent.get("kind") == "logical") else None
    return False


def _type_profiles(defs: Any, el: dict[str, Any], epath: str, run: Any) -> None:
    types = el.get("type")
    for j, tr in enumerate(types if isinstance(types, list) else []):
        if not isinstance(tr, dict) or not isinstance(tr.get("code"), str) or not isinstance(tr.get("profile"), list):
            continue
        code = tr["code"]
        for k, url in enumerate(tr["profile"]):
            if not isinstance(url, str):
                continue
            where = f"{epath}.type[{j}].profile[{k}]"
            target = defs.structure(url)
            if target is None:
                run.add("warning", "exception", where, f"Unable to find the profile {url} to check it")
                continue
            t = _base_type(defs, target)
            if t is None:
                run.add("error", "exception", where, f"Unable to find the base type of the profile {url}")
            elif not _is_instance_of(defs, t, code):
                run.add("error", "exception", where, f"Profile {url} is for type {t.get('type')}, but the "
                        f"{el.get('path')} element has type {code}")


# ---- obligation profiles ----
def _inherited_obligations(defs: Any, sd: dict[str, Any], path: str, run: Any) -> None:
    extensions = sd.get("extension")
    for c, ext in enumerate(extensions if isinstance(extensions, list) else []):
        if not isinstance(ext, dict) or ext.get("url") != _INHERIT_OBLIGATIONS:
            continue
        where = f"{path}.extension[{c}]"
        target_url = ext.get("valueCanonical")
        if not isinstance(target_url, str):
            run.add("error", "invalid", where, "The inherit-obligations extension has no target profile")
            continue
        target = defs.structure(target_url)
        if target is None:
            run.add("error", "invalid", where, f"The profile '{target_url}' could not be found")
        elif not is_obligation_profile(target):
            run.add("error", "invalid", where, f"The profile '{target_url}' is not marked as an obligation profile")
        elif target.get("baseDefinition") != sd.get("baseDefinition"):
            run.add("error", "invalid", where, f"The profile '{target_url}' has a different base "
                    f"'{target.get('baseDefinition')}' from that expected '{sd.get('baseDefinition')}'")
