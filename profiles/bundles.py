"""Bundle rules the base definitions carry only as prose (R4 bundle.html): unique link relations, a fullUrl on every
entry outside transactions and batches, absolute and unique fullUrls, RESTful fullUrls ending with the entry's type
and id."""

from __future__ import annotations

from typing import Any

from profiles import content
from profiles import references as references_module


def check(bundle: dict[str, Any], path: str, run: Any) -> None:
    """Bundle rules the base definitions carry only as prose: unique fullUrls and ids, absolute fullUrls."""
    seen: dict[str, int] = {}
    btype = bundle.get("type")
    relations: dict[str, int] = {}
    for i, link in enumerate(content.items(bundle.get("link"))):
        rel = link.get("relation") if isinstance(link, dict) else None
        if not isinstance(rel, str):
            continue
        if rel in ("self", "first", "previous", "prev", "next", "last") and rel in relations:
            run.add("error", "invalid", f"{path}.link[{i}]", f"The link relationship type '{rel}' can only occur "
                    "once")
        relations[rel] = i
    for i, entry in enumerate(content.items(bundle.get("entry"))):
        if entry.__class__ is not dict and not isinstance(entry, dict):
            continue
        full = entry.get("fullUrl")
        res = entry.get("resource")
        if res.__class__ is not dict and not isinstance(res, dict):
            res = {}
        if res and not full and btype not in ("transaction", "batch", "transaction-response",
                                              "batch-response"):
            run.add("error", "invalid", f"{path}.entry[{i}]", "Except for transactions and batches, each entry "
                    "in a Bundle must have a fullUrl which is the identity of the resource in the entry")
        if full.__class__ is str or isinstance(full, str):
            # is_absolute(), its usual answer first: a converted Bundle's fullUrls are urn:uuid: ones
            if not full.startswith("urn:uuid:") and not references_module.is_absolute(full):
                run.add("error", "invalid", f"{path}.entry[{i}]", f"The fullUrl must be an absolute URL (not "
                        f"'{full}')")
            meta = res.get("meta")
            key = full + "|" + str(meta.get("versionId", "") if isinstance(meta, dict) else "")
            if key in seen:
                run.add("error", "invalid", f"{path}.entry[{i}]", f"Duplicate fullUrl {full} (also entry "
                        f"[{seen[key]}])")
            seen.setdefault(key, i)
            rest = references_module.RESTFUL_FULL_URL.match(full) if full[:1] == "h" else None
            if rest and res and (rest.group(1), rest.group(2)) != (res.get("resourceType"), res.get("id")):
                why = "the resource has no id" if not res.get("id") else (
                    f"it must end with the correct type and id (/{res.get('resourceType')}/{res['id']})")
                run.add("error", "invalid", f"{path}.entry[{i}]", f"The fullUrl '{full}' looks like a RESTful "
                        f"server URL, but {why}")
