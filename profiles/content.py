"""Reading instance content that may be malformed: the structure checks report an object where an array belongs
(and the like); everything else reads such content as absent rather than failing on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def items(value: Any) -> list[Any]:
    """A repeating element's items; nothing when the content is not an array."""
    return value if isinstance(value, list) else []


def objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects among a repeating element's items."""
    return [v for v in items(value) if isinstance(v, dict)]


def objects_at(node: Any, key: str) -> list[dict[str, Any]]:
    """The objects of the repeating element `key` of `node` (nothing when `node` is not an object)."""
    return objects(node.get(key)) if isinstance(node, dict) else []


def every_object(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in `value`, `value` included, at any depth (iteratively: fuzzed content nests thousands
    deep)."""
    stack = [value]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            yield x
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
