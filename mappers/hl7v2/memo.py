"""Memos of what the mapper works out from vocabulary (OBX-3 identifiers, coding-system names, times): the same
few values come on many rows and messages. Only short texts are kept, and few of them, so hostile input (fields
of megabytes, endless distinct codes) cannot make the process hold on to it."""

from __future__ import annotations

from typing import Any

SIZE = 4096  # entries per memo; a full memo is emptied
SHORT = 256  # characters: a longer text is worked out each time, never kept


def remember(memo: dict[Any, Any], key: Any, value: Any) -> Any:
    """Keep `value` under `key` in `memo` (emptied when it holds SIZE entries), and return it."""
    if len(memo) >= SIZE:
        memo.clear()
    memo[key] = value
    return value
