"""The element walk, compiled: each (element, type) of a profile becomes a checker closure made once, holding what
the definitions say about it — the JSON property names of its children and their types, which children are
required, cardinalities, slicing, the primitive's lexical rules, fixed and pattern values, the binding, the bounds,
the invariants with the path each runs on (profiles/invariants.py) — so that validating an instance looks nothing
up in the definitions (only what the instance itself names at run time: an extension's url, a reference's target).

Checkers are made lazily (the type graph is recursive: Extension in Extension, Identifier → Reference →
Identifier) and shared by every Validator over the same Definitions with the same options (checkers_for). A
checker reports through `run.add` exactly what the rules in the concept modules say: slicing.py, extensions.py,
bindings.py, references.py, datatypes.py, primitives.py, invariants.py, type_profiles.py, resources.py. An object
checker used twice also gets a generated happy path (generated.py) that it tries first; these closures are its exact
fallback.

    check = checkers.object(owner, kids, typ); check(obj, path, run, is_resource)
    check = checkers.value(node, typ);         check(value, ext, path, run)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from orjson import dumps

from mappers.exceptions import Issue
from profiles import (
    bindings,
    datatypes,
    extensions,
    fixed_values,
    generated,
    invariants,
    primitives,
    slicing,
    type_profiles,
)
from profiles import references as references_module
from profiles.elements import PRIMITIVES, Node
from profiles.matching import contains_pattern, equal_fixed, short
from profiles.memo import CONTEXT_FREE, ISSUE_BYTES, keep

# Elements nested deeper than this are reported, not walked: a handful of Python frames per level, so the walk stays
# far inside the interpreter's recursion limit (1000) whoever calls it; real content nests a few dozen levels at most.
MAX_DEPTH = 100

ObjectCheck = Callable[..., None]  # (obj, path, run, is_resource=False)
ValueCheck = Callable[[Any, Any, str, Any], None]  # (value, `_name` holder, path, run)
ElementCheck = Callable[[list[tuple[str, Any, Any, str]], str, Any], None]  # (items, owner path, run)

_NOTHING: list[Any] = []  # the remembered verdict of a value with no issues (shared: never extended)


def _remembering(nid: int, typ: str, body: ValueCheck, shape: Shape | None) -> ValueCheck:
    """`body` run once per content of a value of `typ` in element `nid` (its JSON, the resource's language, and for a
    backbone element — `shape` given, see _plain — the walk depth): later values with the same key get its issues
    replayed at their own path. The JSON keeps the value's own property order (issues are reported in that order;
    sorting the keys would also cost a fifth of the serialisation). Issues outside the value's own path (which the
    key cannot vouch for) keep the result from being remembered. One function, the key made inline: it runs for
    every Coding, Quantity, component... of a resource."""

    def remembered(value: Any, ext: Any, path: str, run: Any) -> None:
        if ext is not None or (value.__class__ is not dict and not isinstance(value, dict)) or (
                shape is not None and not _plain(value, shape)):
            run.declined += 1
            body(value, ext, path, run)
            return
        try:
            digest = dumps(value)
        except TypeError:  # integers beyond 64 bits (the XML reader and Python's json can produce them)
            run.declined += 1
            body(value, ext, path, run)
            return
        lang = (run.resource or run.root).get("language")  # displays are judged per language
        if lang is not None and lang.__class__ is not str and not isinstance(lang, str):
            lang = None
        key = (nid, typ, digest, lang if shape is None else (lang, run.depth))
        memo = run.validator.memo
        seen = memo.get(key)
        if seen is not None:
            if seen:
                run.issues.extend(Issue(sev, code, det, msg, path + rel) for sev, code, det, msg, rel in seen)
            return
        start = len(run.issues)
        body(value, ext, path, run)
        issues = run.issues
        if len(issues) == start:  # the common case: nothing to replay
            keep(memo, key, _NOTHING, len(digest))
            return
        found = issues[start:]
        if all((i.expression or "").startswith(path) for i in found):
            keep(memo, key, [(i.severity, i.code, i.details, i.message, (i.expression or "")[len(path):])
                             for i in found], len(digest) + ISSUE_BYTES * len(found))
        else:
            run.declined += 1

    return remembered


class Checkers:
    """The compiled checkers of one validator configuration (definitions + options)."""

    def __init__(self, v: Any) -> None:
        self.v = v
        self.generated = v.generated
        self.trees = v.trees
        self._objects: dict[tuple[int, int, str], ObjectCheck] = {}
        self._values: dict[tuple[int, str], ValueCheck] = {}
        self._elements: dict[int, ElementCheck] = {}
        self._bodies: dict[int, ValueCheck] = {}  # Extension definitions met at run time
        self._planned: dict[int, invariants.Planned] = {}
        # elements whose values their parent's memo holds: a CodeableConcept's codings, a Range's or Ratio's
        # quantities, a remembered backbone's value[x] (each misses when its parent misses; _held)
        self._in_coded: set[int] = set()
        self._keep: list[Any] = []  # the nodes and children sets the keys above identify by id()

    # ---- lookups (compile on first use) ----
    def object(self, owner: Node, kids: dict[str, Node], typ: str) -> ObjectCheck:
        key = (id(owner), id(kids), typ)
        hit = self._objects.get(key)
        if hit is None:
            self._keep.append((owner, kids))
            hit = self._objects[key] = self._compile_object(owner, kids, typ)
        return hit

    def value(self, node: Node, typ: str) -> ValueCheck:
        key = (id(node), typ)
        hit = self._values.get(key)
        if hit is None:
            self._keep.append(node)
            hit = self._values[key] = self._compile_value(node, typ)
        return hit

    def element(self, kid: Node) -> ElementCheck:
        hit = self._elements.get(id(kid))
        if hit is None:
            self._keep.append(kid)
            hit = self._elements[id(kid)] = self._compile_element(kid)
        return hit

    def planned(self, node: Node) -> invariants.Planned:
        """The invariants of `node` with the path each runs on."""
        hit = self._planned.get(id(node))
        if hit is None:
            self._keep.append(node)
            hit = self._planned[id(node)] = invariants.planned(node)
        return hit

    # ---- objects ----
    def _compile_object(self, owner: Node, kids: dict[str, Node], typ: str) -> ObjectCheck:
        v = self.v
        keymap: dict[str, tuple[Node, str]] = {}  # JSON property → (element, type), choices spelled out
        for kid in kids.values():
            if kid.is_choice:
                for t in kid.types:
                    keymap[kid.base_name + t.code[:1].upper() + t.code[1:]] = (kid, t.code)
            else:
                keymap[kid.name] = (kid, kid.types[0].code if kid.types else (
                    "BackboneElement" if kid.children else "Element"))
        required = [k for k in kids.values() if k.min > 0 or any(s.min > 0 for s in k.slices.values())]
        element = self.element
        is_extension = typ == "Extension"

        def assign(found: dict[str, list[Any]], key: str, value: Any, ext: Any, path: str, run: Any,
                   shadow_only: bool = False) -> None:
            kid, ktyp = keymap.get(key, (None, ""))
            if kid is None:
                kid = type_profiles.restricted_choice(v, kids, key, path, run)
                if kid is None:
                    run.add("error", "structure", f"{path}.{key}", f"Unrecognized property '{key}'")
                    return
                ktyp = ""  # a type the profile does not allow (reported): the element is present, its value not checked
            bucket = found.setdefault(kid.name, [])
            if kid.is_choice and bucket and bucket[0][0] != key:
                run.add("error", "structure", f"{path}.{key}",
                        f"{kid.base_name}[x] has more than one value ({bucket[0][0]} and {key})")
                return
            is_list = isinstance(value, list)
            if not is_list and value is not None and ext is None and not kid.repeats and not shadow_only:
                bucket.append((key, value, None, ktyp))  # the common case: one value, no `_name` holder
                return
            values = value if is_list else [value]
            exts = ext if isinstance(ext, list) else [ext] * len(values)
            if is_list and not kid.repeats:
                # several items are one error, the cardinality one (element check); it is also how a single-valued
                # XML element given twice arrives here
                if kid.max is None or len(value) <= kid.max:
                    run.add("error", "structure", f"{path}.{key}", "This property must be a single value, not an "
                            "array")
            elif not is_list and value is not None and kid.repeats:
                run.add("error", "structure", f"{path}.{key}", f"This property must be an array, not {short(value)}")
            if is_list and not value:
                run.add("error", "invalid", f"{path}.{key}", "Array cannot be empty - the property should not be "
                        "present")
            if shadow_only:
                values = [None] * (len(ext) if isinstance(ext, list) else 1)
                exts = ext if isinstance(ext, list) else [ext]
            for i, x in enumerate(values):
                e = exts[i] if i < len(exts) else None
                if x is None and e is None:
                    if is_list and not shadow_only:
                        run.add("error", "structure", f"{path}.{key}[{i}]", "null is not allowed here")
                    elif value is None and not shadow_only:  # JSON null stands for nothing only inside arrays
                        run.add("error", "invalid", f"{path}.{key}", f"The property {key} must be "
                                f"{'an Object' if ktyp[:1].isupper() else 'a JSON ' + ktyp}, not a Null")
                    continue
                bucket.append((key, x, e, ktyp))

        single = {k: hit for k, hit in keymap.items() if not hit[0].repeats}  # one value: no list, no `_` twin
        own: dict[str, ElementCheck] = {}  # element name → its checker
        # Objects whose every property is one value of an element that is single-valued, unsliced and allowed
        # once (a Coding, a Quantity, a Reference) skip the grouping: each value goes to its checker in property
        # order, which is the order the general path reports in.
        fast: dict[str, tuple[str, str, Node, bool]] = {}  # property → (path suffix, type, element, is a choice)
        for key, (kid, ktyp) in keymap.items():
            if kid.repeats or (kid.slicing is not None and kid.slices) or kid.min > 1 or (
                    kid.max is not None and kid.max < 1) or not ktyp or is_extension:
                continue
            fast[key] = (f".{kid.base_name}.ofType({ktyp[:1].upper() + ktyp[1:]})" if kid.is_choice
                         else f".{kid.base_name}", ktyp, kid, kid.is_choice)
        present = [(kid, tuple(k for k, (other, _) in keymap.items() if other is kid)) for kid in required]
        values: dict[str, ValueCheck] = {}  # property → the checker of its value
        value_check = self.value
        # the generated happy path (profiles/generated.py), made at the second use (compiling costs ~0.5 ms: an
        # object shape met once, as in a one-off validation, is not worth it); None: there is none
        happy: list[Any] = [1 if self.generated else None]

        def simple(obj: dict[str, Any], path: str, run: Any, is_resource: bool) -> bool:
            """The fast path, when `obj` qualifies (else False, and nothing was reported)."""
            choices: list[str] | None = None
            for key, x in obj.items():
                hit = fast.get(key)
                if hit is None or x is None or x.__class__ is list:
                    if is_resource and key == "resourceType":
                        continue
                    return False
                if hit[3]:
                    name = hit[2].name
                    if choices is None:
                        choices = [name]
                    elif name in choices:
                        return False  # two types of one choice element: the general path reports it
                    else:
                        choices.append(name)
            run.depth += 1
            try:
                ids: set[str] | None = None
                for key, x in obj.items():
                    hit = fast.get(key)
                    if hit is None:
                        continue  # resourceType
                    if x.__class__ is dict and "id" in x and "resourceType" not in x:
                        eid = x["id"]
                        if ids is None:
                            ids = set()
                        if isinstance(eid, str) and eid in ids:
                            run.add("error", "business-rule", f"{path}.{hit[2].base_name}", f"Duplicate id value "
                                    f"'{eid}'")
                        elif isinstance(eid, str) and eid:
                            ids.add(eid)
                    fn = values.get(key)
                    if fn is None:
                        fn = values[key] = value_check(hit[2], hit[1])
                    fn(x, None, path + hit[0], run)
                for kid, keys in present:
                    for k in keys:
                        if k in obj:
                            break
                    else:
                        element(kid)([], path, run)
            finally:
                run.depth -= 1
            return True

        def check(obj: Any, path: str, run: Any, is_resource: bool = False) -> None:
            if not isinstance(obj, dict):
                run.add("error", "structure", path, f"{typ} must be a JSON object, found {type(obj).__name__}")
                return
            if not obj:
                run.add("error", "invalid", path, "Object must have some content (empty elements are not allowed)")
                return
            if run.depth >= MAX_DEPTH:
                run.add("error", "too-costly", path, f"Elements nested more than {MAX_DEPTH} deep are not validated")
                return
            if not is_resource and len(obj) == 1 and "id" in obj:
                run.add("error", "invariant", path, "Constraint failed: ele-1: 'All FHIR elements must have a @value "
                        "or children'")
            gen = happy[0]
            if gen is not None:
                if gen.__class__ is int:
                    happy[0] = gen - 1 if gen else generated.object_fast(self, owner, kids, typ, keymap, required)
                elif gen(obj, path, run, is_resource):
                    return
            if fast and simple(obj, path, run, is_resource):
                return
            run.depth += 1
            try:
                found: dict[str, list[Any]] = {}
                shadows = False
                for key in obj:
                    if key[:1] == "_":
                        shadows = True
                        break
                holders = False  # whether a value or `_name` holder may carry an element id
                for key, value in obj.items():
                    if is_resource and key == "resourceType":
                        continue
                    if shadows:
                        if key[:1] == "_":
                            name = key[1:]
                            if name not in obj:
                                holders = True
                                assign(found, name, None, value, path, run, shadow_only=True)
                            continue
                        ext = obj.get("_" + key)
                    else:
                        ext = None
                    hit = single.get(key)
                    if hit is not None and ext is None and value is not None and value.__class__ is not list:
                        name = hit[0].name
                        if name not in found:  # the common case, as assign() would record it
                            found[name] = [(key, value, None, hit[1])]
                            if value.__class__ is dict and "id" in value:
                                holders = True
                            continue
                    holders = True
                    assign(found, key, value, ext, path, run)
                if is_extension and ("extension" in obj) == any(k.startswith("value") for k in obj):
                    run.add("error", "invariant", path, "Constraint failed: ext-1: 'Must have either extensions or "
                                                        "value[x], not both'")
                ids: set[str] | None = None
                for name, items in found.items():
                    if holders:
                        for i, (_, x, e, _) in enumerate(items):
                            # element ids are unique among an element's children (R4 Element.id; the HL7 validator's
                            # scope); a primitive's id sits in its `_name` object, nested resources have their own
                            holder = x if isinstance(x, dict) else e
                            if isinstance(holder, dict) and "id" in holder and "resourceType" not in holder:
                                eid = holder["id"]
                                if ids is None:
                                    ids = set()
                                if isinstance(eid, str) and eid in ids:
                                    kid = kids[name]
                                    run.add("error", "business-rule", f"{path}.{kid.base_name}[{i}]" if kid.repeats
                                            else f"{path}.{kid.base_name}", f"Duplicate id value '{eid}'")
                                elif isinstance(eid, str) and eid:
                                    ids.add(eid)
                    fn = own.get(name)
                    if fn is None:
                        fn = own[name] = element(kids[name])
                    fn(items, path, run)
                    if (name == "extension" or name == "modifierExtension") and items:
                        extensions.contexts(v, items, owner, typ, path, run, obj)
                for kid in required:  # absent but required: the cardinality (and slice) errors
                    if kid.name not in found:
                        element(kid)([], path, run)
            finally:
                run.depth -= 1

        return check

    # ---- elements ----
    def _compile_element(self, kid: Node) -> ElementCheck:
        v = self.v
        name, lo, hi, many, choice = kid.base_name, kid.min, kid.max, kid.repeats, kid.is_choice
        sliced = kid.slicing is not None and bool(kid.slices)
        value = self.value
        own: dict[str, ValueCheck] = {}  # type → the checker of a value of that type in `kid` itself
        by_slice: dict[int, dict[str, ValueCheck]] = {}  # id(slice) → type → the checker of a value in that slice
        plan: list[Any] = [None]  # slicing's plan for `kid`, bound at the first sliced use

        suffix = "." + name
        simple = not many and not choice and not sliced and lo <= 1 and (hi is None or hi >= 1)
        # a sliced element whose slicing and values depend on the items alone: its verdict remembered whole (_whole)
        whole: list[Any] = [1 if sliced and self.v.use_memo else None]

        def check(items: list[tuple[str, Any, Any, str]], path: str, run: Any) -> None:
            if simple and len(items) == 1:  # one value of a single-valued element: nothing to count or slice
                _key, x, e, typ = items[0]
                if typ:
                    fn = own.get(typ)
                    if fn is None:
                        fn = own[typ] = value(kid, typ)
                    fn(x, e, path + suffix, run)
                return
            w = whole[0]
            if w is not None and items:
                if w.__class__ is int:
                    w = whole[0] = self._whole(kid)
                    if w is None:
                        walk(items, path, run)
                        return
                w(items, path, run, walk)
                return
            walk(items, path, run)

        def walk(items: list[tuple[str, Any, Any, str]], path: str, run: Any) -> None:
            n = len(items)
            if n < lo or (hi is not None and n > hi):
                if n < lo:
                    run.add("error", "structure", path, f"{kid.path}: minimum required = {lo}, but only found {n}"
                            f" (from {kid.profile_url})")
                if hi is not None and n > hi:
                    run.add("error", "structure", path, f"{kid.path}: max allowed = {hi}, but found {n}"
                            f" (from {kid.profile_url})")
                type_profiles.base_cardinality(v, kid, n, path, run)  # the base definition's verdict too
            if not items:
                if kid.slices:
                    slicing.missing(kid, path, run)
                return
            where = f"{path}.{name}"
            if sliced:
                known = plan[0]
                if known is None:
                    known = plan[0] = slicing.plan(v, kid)
                targets = slicing.assign(v, items, kid, where, many, run, known)
            else:
                targets = None
            for i, (_key, x, e, typ) in enumerate(items):
                if not typ:
                    continue
                p = f"{where}[{i}]" if many else (f"{where}.ofType({typ[:1].upper() + typ[1:]})" if choice
                                                   else where)
                if targets is None or targets[i] is kid:
                    fn = own.get(typ)
                    if fn is None:
                        fn = own[typ] = value(kid, typ)
                else:
                    target = targets[i]
                    fns = by_slice.get(id(target))
                    if fns is None:
                        fns = by_slice[id(target)] = {}
                    fn = fns.get(typ)
                    if fn is None:
                        fn = fns[typ] = value(target, typ)
                fn(x, e, p, run)

        return check

    def _whole(self, kid: Node) -> Callable[..., None] | None:
        """For a sliced element whose slicing depends on the items alone (slicing.context_free) and whose every
        type, in the element and in each slice, is one the memo treats as context-free (or a backbone element free
        of context, _free): its element check run once per content of its items (their JSON keys and values), the
        resource's language and the walk depth, later lists with the same key getting its issues replayed. This
        skips the slice assignment and each item's own memo lookup (Observation.category, .component). None where
        it does not apply. Items with a `_name` holder are walked; a walk in which an item's own memo could not vouch
        for its verdict (run.declined: an extension in a backbone item, an issue outside the item) is not kept."""
        if not slicing.context_free(self.v, kid):
            return None
        nodes = [kid, *kid.slices.values()]
        types = {t.code for n in nodes for t in n.types} or {"BackboneElement" if kid.children else "Element"}
        for t in types:
            if t in CONTEXT_FREE:
                continue
            if t != "BackboneElement" or any(self._free(n, t, set()) is None for n in nodes):
                return None  # (each item then goes through its own memo, _remembering, which counts declines)
        nid = id(kid)
        where_name = "." + kid.base_name

        def remembered(items: list[tuple[str, Any, Any, str]], path: str, run: Any, walk: Any) -> None:
            for _key, x, e, typ in items:
                if e is not None or not typ or x.__class__ is not dict:
                    walk(items, path, run)
                    return
            try:
                digest = dumps([(k, x) for k, x, _e, _t in items])
            except TypeError:  # integers beyond 64 bits
                walk(items, path, run)
                return
            lang = (run.resource or run.root).get("language")  # displays are judged per language
            if lang is not None and lang.__class__ is not str and not isinstance(lang, str):
                lang = None
            key = (nid, "whole", digest, (lang, run.depth))
            memo = run.validator.memo
            seen = memo.get(key)
            if seen is not None:
                if seen:
                    run.issues.extend(Issue(sev, code, det, msg, path + rel) for sev, code, det, msg, rel in seen)
                return
            start, declined = len(run.issues), run.declined
            walk(items, path, run)
            if run.declined != declined:
                return  # an item's memo could not vouch for its verdict (an extension, an issue outside it)
            issues = run.issues
            if len(issues) == start:
                keep(memo, key, _NOTHING, len(digest))
                return
            found = issues[start:]
            where = path + where_name
            if all(i.expression == path or (i.expression or "").startswith(where) for i in found):
                keep(memo, key, [(i.severity, i.code, i.details, i.message, (i.expression or "")[len(path):])
                                 for i in found], len(digest) + ISSUE_BYTES * len(found))

        return remembered

    # ---- values ----
    def _compile_value(self, node: Node, typ: str) -> ValueCheck:
        v = self.v
        if typ in PRIMITIVES or typ.startswith("System."):
            body = self._primitive_body(node, typ)
        elif typ == "Resource" or (typ[:1].isupper() and v.defs.type_definition(typ) is not None
                                   and v.defs.type_definition(typ).get("kind") == "resource"):
            body = self._resource_body(node, typ)
        elif typ == "Extension":
            bodies = self._bodies
            own = self._complex_body(node, typ)

            def body(value: Any, ext: Any, path: str, run: Any) -> None:
                if ext is not None:  # the `_name` holder belongs to the element, before the extension's definition
                    extensions.primitive_holder(v, ext, value is None, node, typ, path, run)
                if value is None:
                    return
                target = extensions.definition(v, value, node, path, run) if isinstance(value, dict) else node
                if target is node:
                    own(value, None, path, run)
                    return
                fn = bodies.get(id(target))
                if fn is None:
                    self._keep.append(target)
                    fn = bodies[id(target)] = self._complex_body(target, typ)
                fn(value, None, path, run)
        else:
            body = self._complex_body(node, typ)
        if not v.use_memo or id(node) in self._in_coded:
            # a CodeableConcept's coding, a Range's quantity...: the parent's own memo holds it (_held)
            return body
        if typ not in CONTEXT_FREE:
            if typ == "BackboneElement":
                shape = self._free(node, typ, set())
                if shape is not None:
                    self._held(self.trees.children(node, typ).values(), choices=True)
                    return self._remembered_backbone(node, typ, body, shape)
            return body
        return _remembering(id(node), typ, body, None)

    def _held(self, kids: Any, choices: bool = False) -> None:
        """Values of `kids` (and their slices) are not remembered on their own: their parent's memo holds them, and
        on a first pass they miss with it (a CodeableConcept's codings, a Range's low and high; with `choices`, a
        remembered backbone's value[x], which varies with the code beside it: 96 of 100 component values missed
        in a first pass over the variant Observations while their codes hit)."""
        for kid in kids:
            if choices and not kid.is_choice:
                continue
            self._keep.append(kid)
            self._in_coded.update(id(n) for n in (kid, *kid.slices.values()))

    def _remembered_backbone(self, node: Node, typ: str, body: ValueCheck, shape: Shape) -> ValueCheck:
        """A backbone element (an Observation.component, ...) whose verdict depends on its content alone (_free):
        remembered like the context-free datatypes, when the value and the backbone elements inside it carry no
        extension (an extension's definition is found by its url at run time and may hold anything), and at the
        same depth of the walk (the depth limit is part of the verdict)."""
        return _remembering(id(node), typ, body, shape)

    def _free(self, node: Node, typ: str, seen: set[tuple[int, str]]) -> Shape | None:
        """Whether the verdict on a value of `typ` in element `node` depends on the value alone, extensions aside:
        no references or resources below it, no invariant reading anything outside the value (%resource,
        resolve(), the clock), no profile or resolve() discriminator, no Duration bound (today's date), no type
        profiles; datatypes the memo already treats so are taken as such. The answer (None: it does not) is the
        JSON properties holding the other objects below it, whose extensions the caller looks for (_plain)."""
        key = (id(node), typ)
        if key in seen:
            return None  # a cycle (contentReference): content may nest without end
        seen.add(key)
        try:
            for c in node.constraints:
                e = c.expression
                if "%" in e or "resolve" in e or "now()" in e or "today()" in e or "conformsTo" in e or (
                        "descendants" in e or "children" in e):
                    return None
            if isinstance(node.min_value, dict) or isinstance(node.max_value, dict):
                return None
            if typ in PRIMITIVES or typ in CONTEXT_FREE:
                return _LEAF
            if typ in _NOT_FREE or typ[:1].islower() or (self.v.defs.type_definition(typ) or {}).get(
                    "kind") != "complex-type":
                return None
            base = self.trees.type_node(typ)
            if base is not None and base is not node and self._free(base, "Element", seen) is None:
                return None  # the type's own invariants
            if node.slicing is not None and any(d == "profile" or "resolve(" in p
                                                for d, p in node.slicing.discriminators):
                return None
            if type_profiles.profiles_of(node, typ):
                return None
            shape: dict[str, Shape] = {}
            for kid in self.trees.children(node, typ).values():
                if kid.name == "extension" or kid.name == "modifierExtension":
                    continue  # looked for in the instance
                for n in (kid, *kid.slices.values()):
                    if n.slicing is not None and any(d == "profile" or "resolve(" in p
                                                     for d, p in n.slicing.discriminators):
                        return None
                    for t in [t.code for t in n.types] or ["BackboneElement" if n.children else "Element"]:
                        below = self._free(n, t, seen)
                        if below is None:
                            return None
                        if below is not _LEAF:
                            prop = kid.base_name + t[:1].upper() + t[1:] if kid.is_choice else kid.name
                            shape[prop] = below
            return shape
        finally:
            seen.discard(key)

    def tail(self, node: Node, typ: str) -> Callable[[Any, str, Any], None] | None:
        """The checks every primitive or datatype value of `node` gets after its own: fixed, pattern, binding,
        bounds, the element's invariants (None when the element has none of them)."""
        v = self.v
        fixed, pattern = node.fixed, node.pattern
        bound = node.binding is not None and typ in bindings.CODED
        limited = node.min_value is not None or node.max_value is not None
        planned = self.planned(node) if node.constraints else ()
        if fixed is None and pattern is None and not bound and not limited and not planned:
            return None
        base = node.path
        sure = invariants.sure(planned) if planned else None
        if fixed is None and pattern is None and not bound and not limited and sure is not None:
            def invariants_only(value: Any, path: str, run: Any) -> None:
                if value.__class__ is dict and sure(value):
                    return  # every invariant holds (invariants.sure): check() would report nothing
                invariants.check(planned, base, value, path, run)

            return invariants_only

        def tail(value: Any, path: str, run: Any) -> None:
            if fixed is not None and not equal_fixed(value, fixed):
                for where, message in fixed_values.differences(value, fixed, path, node.profile_url):
                    run.add("error", "value", where, message)  # child by child, as the HL7 validator reports them
            if pattern is not None and not contains_pattern(value, pattern):
                run.add("error", "value", path, f"The pattern {short(pattern)} defined in the profile "
                        f"{node.profile_url} was not found in {short(value)}")
            if bound:
                bindings.check(v, value, typ, node, path, run)
            if limited:
                datatypes.bounds(value, node, path, run)
            if planned and not (sure is not None and value.__class__ is dict and sure(value)):
                invariants.check(planned, base, value, path, run)

        return tail

    def _primitive_body(self, node: Node, typ: str) -> ValueCheck:
        v = self.v
        own = primitives.checker(v, typ, node)
        checks_empty = typ in PRIMITIVES
        tail = self.tail(node, typ)

        def body(value: Any, ext: Any, path: str, run: Any) -> None:
            if ext is not None:
                extensions.primitive_holder(v, ext, value is None, node, typ, path, run)
            if value is None:
                return
            if own is not None:
                own(value, path, run)
            if checks_empty and value == "" and not (isinstance(ext, dict) and ext.get("extension")):
                # an empty value is no value: the element has neither (ele-1), besides being empty
                run.add("error", "invariant", path, "Constraint failed: ele-1: 'All FHIR elements must have a "
                        "@value or children'")
            if tail is not None:
                tail(value, path, run)

        return body

    def _resource_body(self, node: Node, typ: str) -> ValueCheck:
        v = self.v
        profiled = any(t.profiles for t in node.types)
        contained_too = v.references.contained

        def body(value: Any, ext: Any, path: str, run: Any) -> None:
            if ext is not None:
                extensions.primitive_holder(v, ext, value is None, node, typ, path, run)
            if value is None:
                return
            if isinstance(value, dict):
                if not contained_too and path.endswith("]") and ".contained[" in path:
                    return  # validateContains IGNORE: contained resources are not validated
                claimed = references_module.element_profiles(v, node, value, path, run) if profiled else []
                if run.extra_profiles and id(value) in run.extra_profiles:
                    claimed = [*claimed, *run.extra_profiles[id(value)]]
                v.check_resource(value, path, claimed, run)
            else:
                run.add("error", "structure", path, "a resource must be a JSON object")

        return body

    def _complex_body(self, node: Node, typ: str) -> ValueCheck:
        """A datatype (or backbone element) value of element `node`: its children, its type's own rules and
        invariants, then the element's. For an Extension, `node` is the definition extensions.definition() chose."""
        v = self.v
        typed = type_profiles.profiles_of(node, typ) if typ != "Extension" else ()
        children = self.trees.children(node, typ)
        held = _HELD.get(typ)
        if held:
            self._held([children[n] for n in held if n in children])
        obj = self.object(node, children, typ)
        reference = references_module.checker(v, node) if typ == "Reference" else None
        is_attachment = typ == "Attachment"
        is_coded = typ in ("Coding", "CodeableConcept")
        base = self.trees.type_node(typ)
        base_planned = self.planned(base) if base is not None and base is not node and base.constraints else ()
        base_path = base.path if base is not None else ""
        base_sure = invariants.sure(base_planned) if base_planned else None  # ref-1 on a Reference not local
        tail = self.tail(node, typ)

        def body(value: Any, ext: Any, path: str, run: Any) -> None:
            if ext is not None:
                extensions.primitive_holder(v, ext, value is None, node, typ, path, run)
            if value is None:
                return
            if not (typed and type_profiles.check(v, value, typ, typed, node, path, run)):
                obj(value, path, run)
            if isinstance(value, dict):
                if reference is not None:
                    reference(value, path, run)
                if is_attachment:
                    datatypes.attachment(value, path, run)
                if is_coded:
                    bindings.codes_exist(v, value, typ, path, run, node)
                if base_planned and not (base_sure is not None and base_sure(value)):
                    invariants.check(base_planned, base_path, value, path, run)
            if tail is not None:
                tail(value, path, run)

        return body


# What a value's verdict can depend on besides the value: references resolve in the Bundle, resources and
# extensions are checked against what they name, a narrative's links point into its resource.
_NOT_FREE = frozenset({"Reference", "Extension", "Resource", "Narrative", "Meta"})

Shape = dict[str, "Shape"]  # JSON property → what is below it (the objects _plain() looks into)
# The children of a context-free datatype held by its memo (_held)
_HELD = {"CodeableConcept": ("coding",), "Range": ("low", "high"), "Ratio": ("numerator", "denominator")}
_LEAF: Shape = {}  # a primitive or a datatype the memo treats as context-free


def _plain(value: Any, shape: Shape) -> bool:
    """Whether `value` and the objects `shape` names below it carry no extension (nor `_name` holder)."""
    if value.__class__ is not dict:
        return False
    for k in value:
        if k[:1] == "_" or k == "extension" or k == "modifierExtension":
            return False
    for prop, below in shape.items():
        x = value.get(prop)
        if x is not None:
            for item in x if x.__class__ is list else (x,):
                if not _plain(item, below):
                    return False
    return True


_CHECKERS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Checkers]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def checkers_for(v: Any) -> Checkers:
    """The compiled checkers for validator `v`: shared with every validator over the same Definitions and options."""
    policy: Any = v.references
    try:
        hash(policy)
    except TypeError:  # a reference policy whose fetch cannot be hashed: checkers for this validator alone
        policy = object()
    key = (v.security_checks, v.use_memo, v.examples, v.html_in_markdown, policy, v.extensible_binding_warnings,
           v.generated)
    with _LOCK:
        by_options = _CHECKERS.setdefault(v.defs, {})
        hit = by_options.get(key)
        if hit is None:
            hit = by_options[key] = Checkers(v)
    return hit
