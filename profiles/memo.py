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


def content_key(value: Any) -> bytes | None:
    """A JSON object's content as memo key bytes; None for other values and for what orjson cannot write (integers
    beyond 64 bits, which the XML reader and Python's json module can produce)."""
    if not isinstance(value, dict):
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
