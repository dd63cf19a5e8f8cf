"""Structured meta-information values: `<ID=1,length=249250621,Description="a, b">` → attributes.

A hand-written scanner, not a regular expression: header lines may be megabytes long, and the obvious pattern
backtracks quadratically on a long run of name characters without `=`.
"""

from __future__ import annotations


def structured(value: str) -> dict[str, str]:
    """Attributes of a structured meta value (VCF 4.3 §1.4: `key=value` pairs separated by commas, values quoted
    with `"` when they hold commas, `\\"` and `\\\\` escaped inside quotes). Quotes are removed, escapes kept."""
    inner = value[1:] if value.startswith("<") else value
    inner = inner[:-1] if inner.endswith(">") else inner
    out: dict[str, str] = {}
    i, n = 0, len(inner)
    while i < n:
        eq = inner.find("=", i)
        if eq < 0:
            break
        i = inner.rfind(",", i, eq) + 1 or i  # bare words without a value before the key are skipped
        key = inner[i:eq].strip()
        j = eq + 1
        if j < n and inner[j] == '"':
            k = j + 1
            while k < n and inner[k] != '"':
                k += 2 if inner[k] == "\\" else 1
            val = inner[j + 1:min(k, n)]
            end = inner.find(",", k)
        else:
            end = inner.find(",", j)
            val = inner[j:end if end >= 0 else n]
        if key and key not in out:
            out[key] = val
        if end < 0:
            break
        i = end + 1
    return out
