"""Verdicts remembered by content: a datatype value whose verdict depends on nothing outside it (a Coding, a
Quantity, ...) is checked once per element it fills, and an identical value later gets the same issues replayed;
the slice an item falls in likewise when the discriminators read the item alone."""

from __future__ import annotations

from typing import Any

import orjson

# Datatypes whose verdict depends only on their own content and the element they fill (no references, no
# resolve(), no %resource in their invariants).
CONTEXT_FREE = frozenset({"Coding", "CodeableConcept", "Quantity", "Range", "Period", "HumanName", "Address",
                          "ContactPoint", "Ratio"})
LIMIT = 100_000  # entries per memo before it is emptied (content recurs: a full memo is a memo of rare values)
# ... or bytes of keys and replayed issues: fuzzed or generated content is large and rarely recurs, and 100,000 keys
# of any size had no bound (an average key of the FHIR JSON fuzz run is ~730 bytes, the largest hundreds of KB)
BYTES = 64 * 1024 * 1024
ISSUE_BYTES = 256  # what a remembered issue holds (a tuple of five short strings), counted against BYTES


# The bytes a memo holds are counted under this key of its own: the memos stay plain dicts, whose lookups (the hot
# path) a subclass would slow down, and clear() resets the count with the rest
SIZE = (-1, "bytes held", b"", None)


def keep(memo: dict[Any, Any], key: Any, value: Any, size: int) -> None:
    """Remember `value` under `key` in `memo`, emptying it first when it would pass LIMIT entries or BYTES bytes;
    `size`: the bytes the pair holds beyond a small constant (the key's content, the value's issues)."""
    held = memo.get(SIZE, 0) + size
    if held > BYTES or len(memo) > LIMIT:
        memo.clear()
        held = size
    memo[SIZE] = held
    memo[key] = value


def held(memo: dict[Any, Any]) -> int:
    """The bytes `memo` holds, as keep() counted them."""
    return memo.get(SIZE, 0)  # type: ignore[no-any-return]


def content_key(value: Any) -> bytes | None:
    """A JSON object's content as memo key bytes; None for other values and for what orjson cannot write (integers
    beyond 64 bits, which the XML reader and Python's json module can produce)."""
    if not isinstance(value, dict):
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
