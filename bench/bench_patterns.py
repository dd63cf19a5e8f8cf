"""Worst-case time of each R4 primitive type regex at 10 KB of input: Python's backtracking `re` (what the validator
used) against RE2 through profiles/patterns.py (what it uses now), on the inputs of tests/profiles/worst_cases.py.

    python bench/bench_patterns.py [--limit 10] [--json out.json]

Each `re` measurement runs in a child process killed after --limit seconds (the base64Binary case would never
finish: its time triples with each "AAAA  " group); RE2 is timed in process, best of 20. A second table follows the
base64Binary regex on `re` as the number of groups grows, and a third times both engines on ordinary short values
(the normal path, where RE2's fixed cost per call matters more than its worst case; profiles/patterns.py remembers
its verdicts on short values, so the table gives both the remembered and the computed cost).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.profiles.worst_cases import WORST  # noqa: E402

ORDINARY = {"boolean": "true", "code": "final", "date": "2024-02-29", "dateTime": "2024-02-29T10:00:00+01:00",
            "decimal": "12.5", "id": "example-1", "string": "Genetic variant assessment",
            "uri": "http://loinc.org", "base64Binary": "SGVsbG8gd29ybGQ="}


def _re_child(pattern: str, text: str, out: Any) -> None:
    import re

    rx = re.compile(pattern)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        rx.fullmatch(text)
        best = min(best, time.perf_counter() - t0)
    out.put(best)


def time_re(pattern: str, text: str, limit: float) -> float | None:
    """Best of 3 fullmatch times on `re`, or None when the child had not finished after `limit` seconds."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_re_child, args=(pattern, text, out))
    child.start()
    child.join(limit)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return out.get()


def time_best(fn: Any, arg: str, rounds: int = 20) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best


def _fmt(seconds: float | None, limit: float) -> str:
    if seconds is None:
        return f"> {limit:g} s (stopped)"
    return f"{seconds * 1e3:,.3f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=float, default=10.0, help="seconds before a `re` child is stopped (default 10)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    from profiles.context import default_validator

    regexes = default_validator().regex
    rows = []
    for name in sorted(regexes):
        rx = regexes[name]
        bad = WORST[name][0]
        rows.append({"type": name, "pattern": rx.pattern, "bytes": len(bad.encode()),
                     "re": time_re(rx.pattern, bad, args.limit), "re2": time_best(rx.full, bad)})
        print(f"  {name}", file=sys.stderr)

    growth = []
    b64 = regexes["base64Binary"]
    for groups in (10, 12, 14, 16, 18, 20, 22, 24):
        text = "AAAA  " * groups + "!"
        seconds = time_re(b64.pattern, text, args.limit)
        growth.append({"groups": groups, "bytes": len(text), "re": seconds, "re2": time_best(b64.full, text)})
        if seconds is None:
            break

    import re

    ordinary = []
    for name, value in ORDINARY.items():
        compiled = re.compile(regexes[name].pattern)
        reps = 20_000
        t0 = time.perf_counter()
        for _ in range(reps):
            compiled.fullmatch(value)
        t_re = (time.perf_counter() - t0) / reps
        rx = regexes[name]
        t0 = time.perf_counter()
        for _ in range(reps):
            rx.full(value)
        t_seen = (time.perf_counter() - t0) / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            rx._seen.clear()  # the verdict computed each time (a value not met before)
            rx.full(value)
        ordinary.append({"type": name, "value": value, "re": t_re, "re2": t_seen,
                         "re2_first": (time.perf_counter() - t0) / reps})

    print(f"Python {platform.python_version()}, google-re2 via profiles/patterns.py, `re` stopped after "
          f"{args.limit:g} s\n")
    print("| Type | Worst-case input | `re` fullmatch | RE2 full match |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['type']} | {r['bytes']:,} B | {_fmt(r['re'], args.limit)} | {_fmt(r['re2'], args.limit)} |")
    print("\n| base64Binary, \"AAAA  \" × n + \"!\" | Bytes | `re` | RE2 |")
    print("| ---: | ---: | ---: | ---: |")
    for g in growth:
        print(f"| {g['groups']} | {g['bytes']} | {_fmt(g['re'], args.limit)} | {_fmt(g['re2'], args.limit)} |")
    print("\n| Ordinary value | `re` per call | RE2, value met before | RE2, new value |")
    print("| --- | ---: | ---: | ---: |")
    for o in ordinary:
        print(f"| {o['type']} `{o['value']}` | {o['re'] * 1e6:.2f} µs | {o['re2'] * 1e6:.2f} µs | "
              f"{o['re2_first'] * 1e6:.2f} µs |")
    if args.json:
        args.json.write_text(json.dumps({"worst": rows, "base64_growth": growth, "ordinary": ordinary}, indent=2))


if __name__ == "__main__":
    main()
