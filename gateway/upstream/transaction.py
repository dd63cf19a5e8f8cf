"""Delivering a transaction Bundle so that delivering it again changes nothing.

Creates are conditional (ifNoneExist on an identifier; the hl7v2 mapper gives every resource one in a
transaction), and an unconditional POST of a resource that has no identifier element (Provenance) becomes a PUT to
its deterministic id. Servers that cap conditional transactions (Medplum: 8 entries) get the Bundle in
dependency order, in chunks of at most `max_entries`: references to entries of earlier chunks are rewritten to the
ids the upstream gave them. A crash between chunks is harmless, as the replay finds what the first chunks created.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from gateway.upstream.client import Upstream, UpstreamRejected


@dataclass(slots=True)
class Delivered:
    """What the upstream did with each entry: `created` (201) and `matched` (200: it existed) as 'Type/id'."""

    created: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    transactions: int = 0

    @property
    def references(self) -> list[str]:
        return [*self.created, *self.matched]


def idempotent_requests(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle with each unconditional POST of a resource with an id turned into PUT Type/id (update as create)."""
    entries = []
    for entry in bundle.get("entry", []):
        req, res = entry.get("request") or {}, entry.get("resource") or {}
        if req.get("method") == "POST" and not req.get("ifNoneExist") and res.get("id") and res.get("resourceType"):
            entry = {**entry, "request": {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}}
        entries.append(entry)
    return {**bundle, "entry": entries}


def _references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            if isinstance(value, dict | list):
                _references(value, found)
    elif isinstance(node, list):
        for item in node:
            _references(item, found)


def _rewrite(node: Any, resolved: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, resolved) if isinstance(v, dict | list) else v for k, v in node.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in resolved:
            out["reference"] = resolved[ref]
        return out
    if isinstance(node, list):
        return [_rewrite(v, resolved) for v in node]
    return node


def dependency_order(entries: list[dict[str, Any]]) -> list[int]:
    """Entry indexes so that each entry comes after the entries it references (stable otherwise).

    Raises ValueError when the references form a cycle.
    """
    index = {e.get("fullUrl"): i for i, e in enumerate(entries) if e.get("fullUrl")}
    needs: list[set[int]] = []
    for i, entry in enumerate(entries):
        refs: set[str] = set()
        _references(entry.get("resource"), refs)
        needs.append({index[r] for r in refs if r in index and index[r] != i})
    users: dict[int, list[int]] = {}
    for i, deps in enumerate(needs):
        for d in deps:
            users.setdefault(d, []).append(i)
    waiting = [len(d) for d in needs]
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(entries):
        raise ValueError("the Bundle's entries reference each other in a cycle; it cannot be split")
    return order


def _local(location: str, base: str) -> str:
    """'Type/id' from a response location (absolute or relative, with or without _history)."""
    path = location[len(base):] if location.startswith(base) else location
    parts = path.strip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:])


async def deliver(upstream: Upstream, bundle: dict[str, Any], *, max_entries: int | None = None) -> Delivered:
    """POST `bundle` (a transaction) to the upstream, idempotently, split when `max_entries` (or the upstream's
    setting) asks for it. Raises UpstreamRejected for a refused transaction, UpstreamUnavailable when it is down.
    """
    bundle = idempotent_requests(bundle)
    limit = upstream.transaction_max_entries if max_entries is None else max_entries
    entries = bundle.get("entry", [])
    if not limit or len(entries) <= limit:
        chunks = [entries]
    else:
        order = dependency_order(entries)
        chunks = [[entries[i] for i in order[k:k + limit]] for k in range(0, len(order), limit)]
    result = Delivered()
    resolved: dict[str, str] = {}
    for chunk in chunks:
        if resolved:
            chunk = [{**e, "resource": _rewrite(e.get("resource"), resolved)} for e in chunk]
        body = {"resourceType": "Bundle", "type": "transaction", "entry": chunk}
        _, response, _ = await upstream.json("POST", "", body=body)
        replies = response.get("entry", [])
        if response.get("resourceType") != "Bundle" or len(replies) != len(chunk):
            raise UpstreamRejected(502, None, "the upstream's transaction response does not list every entry")
        result.transactions += 1
        for sent, reply in zip(chunk, replies, strict=True):
            status = str((reply.get("response") or {}).get("status", ""))
            location = (reply.get("response") or {}).get("location") or ""
            local = _local(location, upstream.base_url) if location else ""
            if sent.get("fullUrl") and local:
                resolved[sent["fullUrl"]] = local
            (result.created if status.startswith("201") else result.matched).append(local)
    return result
