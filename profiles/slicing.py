"""Slicing: which slice each item of a sliced element falls in (value, pattern, type, exists and profile
discriminators, R4 profiling.html#discriminator), the slices' cardinalities, closed and ordered slicing.

Slices are indexed by the codes or values their first discriminator fixes, so an item is tried only against the
slices it could match; when the discriminators depend on the item alone, the slice an item fell in is remembered by
the item's content (the validator's memo)."""

from __future__ import annotations

from typing import Any

from profiles import content
from profiles.elements import Node
from profiles.matching import contains_pattern, equal_fixed, typed_values_at, values_at
from profiles.memo import content_key, keep

_MISSING: Any = object()
_SCALAR = (str, int, float, bool, type(None))
Item = tuple[str, Any, Any, str]  # (JSON key, value, its `_key` holder, type)


class _Plan:
    """What assign() needs to know about a sliced element, worked out once per element."""

    __slots__ = ("bounded", "by_code", "by_profile", "by_type", "by_values", "closed", "code_path", "coded", "index",
                 "maxes", "memo_ok", "mins", "nodes", "ordered", "slices")

    def __init__(self, v: Any, kid: Node) -> None:
        assert kid.slicing is not None
        self.slices = list(kid.slices.items())
        self.nodes = [snode for _, snode in self.slices]
        self.index = slice_index(v, kid)
        self.memo_ok = v.use_memo and context_free(v, kid)
        self.by_values = value_paths(v, kid) if self.memo_ok else None
        # the slices with a cardinality to check, in definition order (the order their errors are reported in)
        self.bounded = [(k, name, snode) for k, (name, snode) in enumerate(self.slices)
                        if snode.min > 0 or snode.max is not None]
        # the same bounds for a first look that finds most items' slices within them without a report
        self.mins = [(k, snode.min) for k, (_, snode) in enumerate(self.slices) if snode.min > 0]
        self.maxes = [snode.max for _, snode in self.slices]
        self.closed = kid.slicing.rules == "closed"
        self.ordered = kid.slicing.ordered
        self.code_path, self.coded, self.by_code = _by_code(v, kid, self.slices)
        self.by_profile = _by_profile(v, kid, self.slices)
        # slicing by type alone ($this: a choice element's types): the slice depends on the item's type, never on
        # its content, so each type's is found once (type → slice number, None: no slice)
        self.by_type: dict[str, int | None] | None = {} if kid.slicing.discriminators == (("type", "$this"),) \
            else None


def _by_profile(v: Any, kid: Node, slices: list[tuple[str, Node]]) -> list[list[str]] | None:
    """For slicing by one profile discriminator: each slice's profiles (what matches() reads from the slice), so
    that an item's target is resolved once, not once per slice; else None."""
    assert kid.slicing is not None
    discriminators = kid.slicing.discriminators
    if len(discriminators) != 1 or discriminators[0][0] != "profile":
        return None
    path = discriminators[0][1]
    out = []
    for _, snode in slices:
        types = target.types if (target := v.trees.node_at(snode, path)) is not None else snode.types
        out.append([u for t in types for u in (t.targets or t.profiles)])
    return out


def _by_code(v: Any, kid: Node, slices: list[tuple[str, Node]]) -> tuple[str, bool, dict[tuple[str, str], int] | None]:
    """Slices told apart by one code: a single value/pattern discriminator on one element name, every slice's
    pattern there a CodeableConcept of one coding (`coded`) or a Coding, of a system and a code and nothing else.
    Then the slice an item falls in is the first whose (system, code) one of the item's codings carries — what
    slice_index and matches() find, looked up at once: (path, coded, (system, code) → first slice), else None."""
    assert kid.slicing is not None
    discriminators = kid.slicing.discriminators
    if len(discriminators) != 1 or discriminators[0][0] not in ("value", "pattern"):
        return "", False, None
    path = discriminators[0][1]
    if not path or "." in path or "(" in path or path == "$this" or not slices:
        return "", False, None
    table: dict[tuple[str, str], int] = {}
    coded = None
    for k, (_, snode) in enumerate(slices):
        target = v.trees.node_at(snode, path)
        if target is None or target.fixed is not None or not isinstance(target.pattern, dict):
            return "", False, None
        pattern = target.pattern
        is_cc = set(pattern) == {"coding"}
        if coded is None:
            coded = is_cc
        if coded != is_cc:
            return "", False, None
        if is_cc:
            codings = pattern["coding"]
            if not isinstance(codings, list) or len(codings) != 1 or not isinstance(codings[0], dict):
                return "", False, None
            pattern = codings[0]
        if set(pattern) != {"system", "code"} or not all(isinstance(x, str) for x in pattern.values()):
            return "", False, None
        table.setdefault((pattern["system"], pattern["code"]), k)
    return path, bool(coded), table


def _pick(plan: _Plan, value: Any) -> Any:
    """The slice number `plan.by_code` gives `value` (None: no slice), or _MISSING where the item is not plain
    enough for the table (a Coding that also holds `coding`): the long way decides. (Every component and category
    of a resource comes here: exact type tests before isinstance(), and the table asked without testing that system
    and code are strings, since only a pair of strings can be one of its keys.)"""
    table = plan.by_code
    assert table is not None
    if value.__class__ is not dict and not isinstance(value, dict):
        return None
    path = plan.code_path
    if path in value:
        got = value[path]
        found = got if got.__class__ is list or isinstance(got, list) else (got,)
    else:  # a choice element named without its type suffix (matching.typed_values_at)
        found = [g for k, got in value.items() if k.startswith(path) and k[len(path):len(path) + 1].isupper()
                 for g in (got if isinstance(got, list) else [got])]
    best = None
    coded = plan.coded
    for x in found:
        if x.__class__ is not dict and not isinstance(x, dict):
            continue
        if coded:
            codings = x.get("coding")
            if codings.__class__ is not list and not isinstance(codings, list):
                continue  # the pattern's coding must be there; slice_index reads only arrays of codings
        elif "coding" in x:
            return _MISSING
        else:
            codings = (x,)
        for c in codings:
            if c.__class__ is dict or isinstance(c, dict):
                try:
                    k = table.get((c.get("system"), c.get("code")))
                except TypeError:  # an object or array where the system or code belongs: no slice's
                    continue
                if k is not None and (best is None or k < best):
                    best = k
    return best


def plan(v: Any, kid: Node) -> _Plan:
    """What assign() needs to know about the sliced element `kid` (worked out once, shared)."""
    return _plan(v, kid)


def _plan(v: Any, kid: Node) -> _Plan:
    key = (id(kid), "assign-plan" if v.use_memo else "assign-plan, no memo")  # the trees serve every validator
    hit = v.trees.node_memo.get(key)
    if hit is None:
        hit = v.trees.node_memo[key] = _Plan(v, kid)
    return hit  # type: ignore[no-any-return]


def assign(v: Any, items: list[Item], kid: Node, where: str, many: bool, run: Any,
           plan: _Plan | None = None) -> list[Node]:
    """The element (a slice, or `kid` itself when none matches) each item is checked against; reports the slice
    cardinalities, closed slicing and order. `plan`: plan(v, kid), when the caller holds it."""
    if plan is None:
        plan = _plan(v, kid)
    slices, nodes = plan.slices, plan.nodes
    chosen: list[Node] = []
    ordered = plan.ordered
    order: list[int] = []  # the slice numbers in item order, when the slicing is ordered
    counts = [0] * len(slices)
    by_code, by_type, maxes = plan.by_code, plan.by_type, plan.maxes
    over = False  # whether a slice got more items than its max
    for i, item in enumerate(items):
        if by_code is not None:
            hit = _pick(plan, item[1])
            if hit is _MISSING:
                hit = _matching(v, plan, kid, item[1], item[3], run)
        elif by_type is not None:
            typ = item[3]
            hit = by_type.get(typ, _MISSING)
            if hit is _MISSING:
                hit = by_type[typ] = next((k for k in range(len(slices))
                                           if matches(v, item[1], typ, nodes[k], kid, run)), None)
        else:
            hit = _matching(v, plan, kid, item[1], item[3], run)
        if hit is None:
            chosen.append(kid)
            if ordered:
                order.append(len(slices))
            if plan.closed:
                run.add("error", "structure", f"{where}[{i}]" if many else where,
                        f"This element does not match any known slice defined in the profile "
                        f"{kid.profile_url} and slicing is closed")
            continue
        c = counts[hit] = counts[hit] + 1
        hi = maxes[hit]
        if hi is not None and c > hi:
            over = True
        chosen.append(nodes[hit])
        if ordered:
            order.append(hit)
    if not over:
        for k, lo in plan.mins:
            if counts[k] < lo:
                over = True  # (or under: something to report)
                break
    if over:  # something to report: in definition order
        for k, name, snode in plan.bounded:
            c = counts[k]
            if c < snode.min:
                run.add("error", "structure", where.rsplit(".", 1)[0],
                        f"Slice '{kid.path}:{name}': a matching slice is required, but not found"
                        f" (from {kid.profile_url})" if c == 0 else
                        f"Slice '{kid.path}:{name}': minimum required = {snode.min}, but only found {c}")
            if snode.max is not None and c > snode.max:
                run.add("error", "structure", where.rsplit(".", 1)[0],
                        f"{kid.path}:{name}: max allowed = {snode.max}, but found {c} (from {kid.profile_url})")
    if ordered and order != sorted(order):
        run.add("error", "structure", where, f"The slices of {kid.path} are out of order (slicing is ordered)")
    return chosen


def _matching(v: Any, plan: _Plan, kid: Node, value: Any, typ: str, run: Any) -> int | None:
    """The first slice whose discriminators `value` meets (None: none), remembered by what they read when that is
    the item alone."""
    memo = run.validator.slice_memo if plan.memo_ok else None
    resolve = run.resolve
    if memo is None:
        digest = None
    elif plan.by_values is not None:  # what the discriminators read decides: components by their code alone
        digest = content_key({"": [_at(value, p, resolve) for p in plan.by_values]})
    else:
        digest = content_key(value)
    key = (id(kid), typ, digest)
    if digest is not None:
        hit = memo.get(key, _MISSING)  # type: ignore[union-attr]
        if hit is not _MISSING:
            return hit  # type: ignore[no-any-return]
    slices, index = plan.slices, plan.index
    if plan.by_profile is not None and index is None:  # matches() with the item's target found once
        dpath = kid.slicing.discriminators[0][1]  # type: ignore[union-attr]
        if dpath == "resolve()":  # values_at(value, "resolve()"): the reference's target, if it resolves
            ref = value.get("reference") if isinstance(value, dict) else None
            target = resolve(ref) if ref else None
            found = [target] if target is not None else []
        else:
            found = values_at(value, dpath, resolve)
        conforms = v.conforms
        hit = None
        for k, urls in enumerate(plan.by_profile):  # the first slice one of whose profiles a target meets
            if urls and found and _meets_one(conforms, found, urls, run):
                hit = k
                break
    else:
        candidates = range(len(slices)) if index is None else index.candidates(value, resolve)
        hit = next((k for k in candidates if matches(v, value, typ, slices[k][1], kid, run)), None)
    if digest is not None:
        keep(memo, key, hit, len(digest))  # type: ignore[arg-type]
    return hit


def _meets_one(conforms: Any, found: list[Any], urls: list[str], run: Any) -> bool:
    for x in found:
        for u in urls:
            if conforms(x, u, run):
                return True
    return False


def surely_refused(v: Any, root: Node, resource: dict[str, Any]) -> bool:
    """Whether checking `resource` against the profile whose root is `root` is sure to find an error without the
    walk (FHIRPath conformsTo() and profile discriminators only ask whether there is one): an element the profile
    requires is absent (no property, no `_name` holder), or an array of objects sliced by one code (_by_code) has
    too few or too many items for one of its slices. False says nothing."""
    key = (id(root), "required-at-root")
    memo = v.trees.node_memo
    plan = memo.get(key)
    if plan is None:
        required = [(kid.name, "_" + kid.name) for kid in root.children.values()
                    if kid.min > 0 and not kid.is_choice]  # a choice's type the profile removed still counts
        coded = [(kid.name, p, [(k, s.min, s.max) for k, (_, s) in enumerate(p.slices)
                                if s.min > 0 or s.max is not None])
                 for kid in root.children.values()
                 if kid.repeats and not kid.is_choice and kid.slicing is not None and kid.slices
                 and (p := _plan(v, kid)).by_code is not None]
        plan = memo[key] = (required, coded)
    required, coded = plan
    for name, holder in required:
        if name not in resource and holder not in resource:
            return True
    for name, p, bounds in coded:
        items = resource.get(name)
        if not isinstance(items, list) or not items or ("_" + name) in resource:
            continue  # absent (the required check above), malformed or with holders: left to the walk
        counts = [0] * len(p.slices)
        for item in items:
            if not isinstance(item, dict):
                break
            k = _pick(p, item)
            if k is _MISSING:
                break
            if k is not None:
                counts[k] += 1
        else:
            if any(counts[k] < lo or (hi is not None and counts[k] > hi) for k, lo, hi in bounds):
                return True
    return False


def missing(kid: Node, path: str, run: Any) -> None:
    """An absent sliced element: each required slice is missing."""
    for name, snode in kid.slices.items():
        if snode.min > 0:
            run.add("error", "structure", path, f"Slice '{kid.path}:{name}': a matching slice is required, "
                    f"but not found (from {kid.profile_url})")


def context_free(v: Any, kid: Node) -> bool:
    """Whether the slice an item falls in depends on the item alone (no profile or resolve() discriminator)."""
    memo = v.trees.node_memo
    key = (id(kid), "context-free")
    hit = memo.get(key, _MISSING)
    if hit is _MISSING:
        assert kid.slicing is not None
        hit = all(dtype in ("value", "pattern", "exists", "type") and "resolve(" not in dpath
                  for dtype, dpath in kid.slicing.discriminators)
        memo[key] = hit
    return bool(hit)


def _at(value: Any, path: str, resolve: Any) -> Any:
    """values_at(value, path), or what stands for it one to one: the property itself for a one-step path present."""
    if isinstance(value, dict) and path in value and "." not in path and "(" not in path and path != "$this":
        return {"property": value[path]}
    return {"values": values_at(value, path, resolve)}


def value_paths(v: Any, kid: Node) -> tuple[str, ...] | None:
    """The discriminator paths when every discriminator is a value, pattern or exists one: an item then falls in the
    slice the values at those paths choose (slice_index and matches read nothing else), so the slice is remembered
    by those values rather than by the whole item. None for type discriminators (they read the item's JSON keys)."""
    memo = v.trees.node_memo
    key = (id(kid), "value-paths")
    hit = memo.get(key, _MISSING)
    if hit is _MISSING:
        assert kid.slicing is not None
        discriminators = kid.slicing.discriminators
        hit = tuple(p for _, p in discriminators) if discriminators and all(
            d in ("value", "pattern", "exists") for d, _ in discriminators) else None
        memo[key] = hit
    return hit  # type: ignore[no-any-return]


def matches(v: Any, value: Any, typ: str, snode: Node, kid: Node, run: Any) -> bool:
    """Whether an item meets every discriminator of slice `snode` of `kid`."""
    assert kid.slicing is not None
    if not kid.slicing.discriminators:
        return False
    for dtype, dpath in kid.slicing.discriminators:
        target = v.trees.node_at(snode, dpath)
        found = values_at(value, dpath, run.resolve)
        if dtype in ("value", "pattern"):
            expected_fixed = target.fixed if target is not None else None
            expected_pattern = target.pattern if target is not None else None
            if expected_fixed is None and expected_pattern is None and dpath == "url":
                prof = next((p for t in snode.types for p in t.profiles), None)
                expected_fixed = prof
            if expected_fixed is None and expected_pattern is None:
                continue  # the slice does not constrain this discriminator: anything matches it
            if not any((expected_fixed is not None and equal_fixed(x, expected_fixed)) or
                       (expected_pattern is not None and contains_pattern(x, expected_pattern)) for x in found):
                return False
        elif dtype == "type":
            if dpath.endswith("resolve()"):  # the type of what the reference points at
                wanted = {(v.type_of(u) or "").lower() for t in (target.types if target else snode.types)
                          for u in t.targets}
            else:
                wanted = {t.code.lower() for t in (target.types if target else snode.types)}
            typed = typed_values_at(value, dpath, run.resolve, typ)
            actual = {(t or (target.types[0].code if target and len(target.types) == 1 else "")).lower()
                      for _, t in typed}
            if not typed or not actual & wanted:
                return False
        elif dtype == "exists":
            required = target is not None and target.min > 0
            if bool(found) != required:
                return False
        elif dtype == "profile":
            node_types = target.types if target is not None else snode.types
            urls = [u for t in node_types for u in (t.targets or t.profiles)]
            if not urls or not any(v.conforms(x, u, run) for x in found for u in urls):
                return False
        else:
            return False
    return True


def slice_index(v: Any, kid: Node) -> SliceIndex | None:
    """Slices keyed by the codes or values their first discriminator fixes, so an item is only tried
    against the slices it could match (30 component slices × 8 components otherwise)."""
    memo = v.trees.node_memo
    key = (id(kid), "slice-index")
    hit = memo.get(key, _MISSING)
    if hit is _MISSING:
        hit = None
        assert kid.slicing is not None
        dtype, dpath = kid.slicing.discriminators[0] if kid.slicing.discriminators else ("", "")
        if dtype in ("value", "pattern") and "(" not in dpath:
            idx = SliceIndex(dpath)
            for k, snode in enumerate(kid.slices.values()):
                target = v.trees.node_at(snode, dpath)
                expected = None if target is None else (target.fixed if target.fixed is not None
                                                        else target.pattern)
                idx.add(k, _keys(expected))
            hit = idx
        memo[key] = hit
    return hit  # type: ignore[no-any-return]


def _keys(value: Any) -> set[Any] | None:
    """Index keys of a fixed/pattern value: (system, code) for codings, the value for primitives; None when
    the value cannot be indexed (the slice then stays a candidate for every item)."""
    if value is None:
        return None
    if isinstance(value, dict):
        codings = content.objects(value.get("coding")) if "coding" in value else [value] if "code" in value else []
        if not codings:
            return None
        # instance content may put objects where system and code belong: such a coding matches no slice key
        return {(s, c) for s, c in ((c.get("system"), c.get("code")) for c in codings)
                if isinstance(s, _SCALAR) and isinstance(c, _SCALAR)}
    if isinstance(value, list):
        return None
    return {value}


class SliceIndex:
    def __init__(self, path: str) -> None:
        self.path = path
        self.by_key: dict[Any, list[int]] = {}
        self.always: list[int] = []

    def add(self, slice_no: int, keys: set[Any] | None) -> None:
        if keys is None:
            self.always.append(slice_no)
        for k in keys or ():
            self.by_key.setdefault(k, []).append(slice_no)

    def candidates(self, value: Any, resolve: Any) -> list[int]:
        found = set(self.always)
        for x in values_at(value, self.path, resolve):
            for k in _keys(x) or ():
                found.update(self.by_key.get(k, ()))
                if isinstance(k, tuple):  # a coding with extra elements still carries system and code
                    found.update(self.by_key.get((k[0], k[1]), ()))
        return sorted(found)
