"""A resource, at the root or nested (Bundle entries, contained resources, Parameters): the profiles it is checked
against (those asked for and those it claims in meta.profile, else its base definition), its id, the Bundle rules,
then its elements and invariants against each profile, then the rules of profiles/rules/."""

from __future__ import annotations

from typing import Any

from profiles import bundles, content, invariants, patterns, rules
from profiles.elements import Node

_ID = patterns.compile(r"[A-Za-z0-9\-.]{1,64}")
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."


def check(v: Any, res: dict[str, Any], path: str, profiles: list[str], run: Any) -> None:
    rtype = res.get("resourceType")
    base = v.trees.type_node(rtype) if isinstance(rtype, str) else None
    if base is None:
        run.add("error", "structure", path, f"Unknown resource type {rtype!r}")
        return
    meta = res.get("meta")
    profiles_claimed = content.items(meta.get("profile")) if isinstance(meta, dict) else []
    claimed = [p for p in profiles_claimed if isinstance(p, str)]
    roots: list[Node] = []
    for url in dict.fromkeys([*profiles, *claimed]) if profiles or len(claimed) > 1 else claimed:
        node = v.node(url)
        if node is None:
            sev = "error" if url in profiles else "warning"
            run.add(sev, "not-found", path, f"Profile {url} is not known locally, so it was not checked")
        elif node.path != rtype:
            run.add("error", "structure", path, f"Profile {url} is for {node.path}, not {rtype}")
        else:
            roots.append(node)
    rid = res.get("id")
    # an id of 1-64 of those characters is one _ID accepts (strip() leaves nothing): the regex judges the rest
    if isinstance(rid, str) and not (0 < len(rid) <= 64 and not rid.strip(_ID_CHARS)) and not _ID.full(rid):
        run.add("error", "invalid", f"{path}.id", f"Invalid Resource id {rid!r}: ids are 1-64 of A-Z a-z 0-9 - .")
    if rtype == "Bundle":
        bundles.check(res, path, run)
    outer, outer_container, outer_bundle = run.resource, run.container, run.bundle
    if "contained[" in path and path.rsplit(".", 1)[-1].startswith("contained["):
        run.container = outer
    run.resource = res
    if rtype == "Bundle":
        run.bundle = res
    try:
        for root in roots or [base]:
            against(v, res, root, path, run)
        run.applied = [r.profile_url for r in roots]
        rules.apply(v, res, path, run)
    finally:
        run.resource, run.container, run.bundle = outer, outer_container, outer_bundle


def against(v: Any, res: dict[str, Any], root: Node, path: str, run: Any) -> None:
    """`res`'s elements and invariants against one profile (its compiled root `root`)."""
    v.checkers.object(root, root.children, root.path)(res, path, run, True)
    if root.constraints:
        invariants.check(v.checkers.planned(root), root.path, res, path, run)
