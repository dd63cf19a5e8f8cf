"""StructureDefinitions compiled into element trees (profiles/elements.py), once per set of definitions: shared by
every Validator over the same Definitions, so a new validator (another option set, a new request) starts with the
profiles already compiled. Also what the checks look up in the trees: an element by path, a type's children, the
element a discriminator path names (memoised per element)."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from profiles.definitions import Definitions
from profiles.elements import Node, compile_snapshot
from profiles.matching import split_path
from profiles.snapshot import generate

NO_CHILDREN: dict[str, Node] = {}  # one shared empty set: caches key children sets by id()
_MISSING: Any = object()


class Trees:
    """The compiled trees of one Definitions; thread-safe to fill."""

    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self.lock = threading.RLock()
        self.nodes: dict[str, Node | None] = {}
        self.paths: dict[str, dict[str, Node]] = {}
        self.type_nodes: dict[str, Node | None] = {}
        self.node_memo: dict[tuple[int, str], Any] = {}  # (id(element), discriminator path or tag) → answer
        self._tx: Any = None
        self._regexes: Any = None

    def terminology(self) -> Any:
        """The value sets and code systems of the definitions, with their expansions (made once, shared)."""
        if self._tx is None:
            from profiles.valuesets import Terminology

            self._tx = Terminology(self.defs)
        return self._tx

    def regexes(self) -> Any:
        """The primitive types' regular expressions (profiles/primitives.py), compiled once."""
        if self._regexes is None:
            from profiles.primitives import regexes

            self._regexes = regexes(self.defs)
        return self._regexes

    def node(self, url: str) -> Node | None:
        """Root element node of a StructureDefinition (compiled once), or None when unknown."""
        hit = self.nodes.get(url, _MISSING)
        if hit is not _MISSING:
            return hit
        with self.lock:
            if url in self.nodes:
                return self.nodes[url]
            sd = self.defs.structure(url)
            if sd is None:  # not remembered: the URLs a client can name are unbounded (a meta.profile per request)
                return None
            known = sd.get("url")
            if isinstance(known, str) and known != url and self.defs.structure(known) is sd:
                # `url|version` (or a bare url) naming the definition another spelling names: compiled once
                self.nodes[url] = self.node(known)
                if known in self.paths:
                    self.paths[url] = self.paths[known]
                return self.nodes[url]
            root = None
            if sd is not None:
                try:
                    root = compile_snapshot(generate(sd, self.defs))
                except (ValueError, TypeError, AttributeError, KeyError):  # SnapshotError, or a malformed definition:
                    # reported as a profile that is not known
                    root = None
            if root is not None:
                index: dict[str, Node] = {}
                stack = [root]
                while stack:
                    n = stack.pop()
                    index.setdefault(n.path, n)
                    stack.extend(n.children.values())
                self.paths[url] = index
            self.nodes[url] = root
            return root

    def type_node(self, code: str) -> Node | None:
        """Root node of the base definition of type `code` (Observation, CodeableConcept, string)."""
        hit = self.type_nodes.get(code, _MISSING)
        if hit is _MISSING:
            sd = self.defs.type_definition(code)
            if not sd:  # not remembered: the names a client can send (resourceType) are unbounded
                return None
            hit = self.type_nodes[code] = self.node(sd["url"])
        return hit  # type: ignore[no-any-return]

    def element(self, url: str, path: str) -> Node | None:
        """The element at `path` (Observation.value[x]) of the StructureDefinition `url`."""
        if self.node(url) is None:
            return None
        return self.paths[url].get(path)

    def children(self, node: Node, typ: str) -> dict[str, Node]:
        """The children an element of type `typ` has: its own, its content reference's, its type profile's, else the
        type's base definition's."""
        if node.children:
            return node.children
        if node.content_ref:
            url, _, path = node.content_ref.partition("#")
            target = self.element(url or node.profile_url, path)
            if target is not None:
                return target.children
        ref = next((t for t in node.types if t.code == typ), None)
        if ref and ref.profiles:
            prof = self.node(ref.profiles[0])
            if prof is not None:
                return prof.children
        base = self.type_node(typ)
        return base.children if base else NO_CHILDREN

    def node_at(self, snode: Node, dpath: str) -> Node | None:
        """The element a discriminator path names from slice `snode` (memoised)."""
        key = (id(snode), dpath)
        memo = self.node_memo.get(key, _MISSING)
        if memo is not _MISSING:
            return memo  # type: ignore[no-any-return]
        found = self._node_at(snode, dpath)
        self.node_memo[key] = found
        return found

    def _node_at(self, snode: Node, dpath: str) -> Node | None:
        node: Node | None = snode
        for step in [s for s in split_path(dpath) if s not in ("$this", "")]:
            if node is None:
                return None
            if step.startswith(("resolve(", "ofType(", "as(")):
                continue
            if step.startswith("extension("):
                url = step[len("extension("):-1].strip("'\"")
                ext = node.children.get("extension")
                hits = [(name, s) for name, s in (ext.slices.items() if ext else [])
                        if any(url in t.profiles for t in s.types)]
                hits.sort(key=lambda h: "/" not in h[0])  # a re-slice says more than the slice it refines
                node = hits[0][1] if hits else None
                continue
            nxt = node.children.get(step) or node.children.get(step + "[x]")
            if nxt is None and not node.children and node.types:
                nxt = self.children(node, node.types[0].code).get(step)
            if nxt is not None and nxt.slicing is not None and nxt.slices and nxt.fixed is None \
                    and nxt.pattern is None:
                # A step onto an element the slice slices again (bp's component:SystolicBP.code.coding, sliced into
                # SBPCode) reads the discriminator's value from its first slice, where the profile fixes it; the
                # element itself fixes nothing, and every item would match the first component slice. The HL7
                # validator's FHIRPath walk over the definition likewise skips the slicing entry for the slice.
                nxt = next(iter(nxt.slices.values()))
            node = nxt
        return node


_TREES: weakref.WeakKeyDictionary[Definitions, Trees] = weakref.WeakKeyDictionary()
_TREES_LOCK = threading.Lock()


def trees(defs: Definitions) -> Trees:
    """The compiled trees of `defs`, made on first use and kept as long as `defs` lives."""
    hit = _TREES.get(defs)
    if hit is None:
        with _TREES_LOCK:
            hit = _TREES.get(defs)
            if hit is None:
                hit = _TREES[defs] = Trees(defs)
    return hit
