"""Shared by tests/mappers/test_patterns.py and tests/gateway/test_patterns.py: every regular expression a package
applies runs in time linear in the input on Python's backtracking `re`.

The patterns are found in the code, not listed by hand: every module-level compiled pattern of the package (also in
a tuple, list, set or dict), every `re.<function>("literal", ...)` call, and the calls made on each (match,
fullmatch, or a scan: search, sub, split...) where the pattern is named by a module-level name, `module.NAME` or
`NAME["key"]`. A worst-cases module (WORST, DYNAMIC, SIZE) gives each its worst case (~100 KB) for each way it is
called; a pattern or a way of calling it without one fails. All worst cases run in one child process under a
CPU-time limit: a quadratic pattern takes minutes on 100 KB, a linear one milliseconds, so finishing is the bound
(no speed target).

Worst-cases module: WORST maps a pattern's source (as written) → call → (input, expected span or None); DYNAMIC maps
(file, the source of the pattern argument of a pattern built at run time) → (a representative source, call → case).
Calls: "match", "fullmatch", or "search", which stands for every call that scans the input from each position in
turn (search, sub, subn, split, findall, finditer).
"""

from __future__ import annotations

import ast
import functools
import importlib
import itertools
import json
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CPU_SECONDS = 20
# how each call walks the input: the scanning calls all try a match from each position in turn, as search does
KINDS = {"match": "match", "fullmatch": "fullmatch", "search": "search", "sub": "search", "subn": "search",
         "split": "search", "findall": "search", "finditer": "search"}
_FLAGS_AT = {"compile": 1, "match": 2, "fullmatch": 2, "search": 2, "findall": 2, "finditer": 2, "split": 3,
             "sub": 4, "subn": 4}  # position of `flags` in re.<function>(...)

Key = tuple[str | bytes, int]  # (pattern source, flags as given)
Inventory = tuple[dict[Key, set[str]], dict[tuple[str, str], set[str]], list[str]]
Case = tuple[str, re.Pattern, str, str | bytes, tuple[int, int] | None]  # name, pattern, call, input, expected
Step = tuple[int, int, str]  # (index in WORST, or -1 - index in DYNAMIC; flags; call)


def _modules(package: str) -> list[ModuleType]:
    """Every module file under the package, also in folders without __init__.py (pkgutil does not walk those)."""
    files = sorted((ROOT / package).rglob("*.py"))
    names = [".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for f in files]
    return [importlib.import_module(name) for name in names]


def _patterns_in(value: Any, depth: int = 0) -> list[re.Pattern]:
    if isinstance(value, re.Pattern):
        return [value]
    if depth < 2 and isinstance(value, tuple | list | frozenset | set):
        return [p for v in value for p in _patterns_in(v, depth + 1)]
    if depth < 2 and isinstance(value, dict):
        return [p for v in value.values() for p in _patterns_in(v, depth + 1)]
    return []


def _flags(call: ast.Call, fn: str) -> int:
    given = [k.value for k in call.keywords if k.arg == "flags"]
    if len(call.args) > _FLAGS_AT[fn]:
        given.append(call.args[_FLAGS_AT[fn]])
    return int(eval(ast.unparse(given[0]), {"re": re})) if given else 0  # re.I, re.I | re.S: constants only


def _named(node: ast.expr, names: dict[str, Any]) -> Any:
    """What NAME, module.NAME or NAME["key"] is at module level (None for anything else: no code runs)."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _named(node.value, names)
        return getattr(owner, node.attr, None) if isinstance(owner, ModuleType) else None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        owner = _named(node.value, names)
        return owner.get(node.slice.value) if isinstance(owner, dict) else None
    return None


@functools.cache
def inventory(package: str) -> Inventory:
    """(pattern → the kinds of call made on it, dynamic pattern → kinds, problems found) over `package`."""
    found: dict[Key, set[str]] = defaultdict(set)
    dynamic: dict[tuple[str, str], set[str]] = defaultdict(set)
    problems: list[str] = []
    for module in _modules(package):
        names = vars(module)
        for value in names.values():
            for p in _patterns_in(value):
                found.setdefault((p.pattern, p.flags & ~re.UNICODE), set())  # every module-level one, called or not
        path = Path(module.__file__ or "")
        where, text = str(path.relative_to(ROOT)), path.read_text()
        if "re." not in text and "import re" not in text and not any(
                f"{n}." in text or f"{n}[" in text for n, v in names.items() if _patterns_in(v)):
            continue  # no regex in this file (parsing every file is most of the collector's time)
        for node in ast.walk(ast.parse(text)):
            imported = [(a.name, a.asname) for a in node.names] if isinstance(node, ast.Import) else \
                [(node.module, "from")] if isinstance(node, ast.ImportFrom) else []
            if any(name in ("re", "regex", "re2") and (name, alias) != ("re", None) for name, alias in imported):
                problems.append(f"{where}:{node.lineno}: only a plain `import re` is seen by this test")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner, fn = node.func.value, node.func.attr
            if isinstance(owner, ast.Name) and owner.id == "re" and fn in _FLAGS_AT:
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str | bytes):
                    kinds = found[(arg.value, _flags(node, fn))]
                else:
                    kinds = dynamic[(where, ast.unparse(arg) if arg else "")]
                if fn != "compile":
                    kinds.add(KINDS[fn])
            elif fn in KINDS and isinstance(p := _named(owner, names), re.Pattern):
                found[(p.pattern, p.flags & ~re.UNICODE)].add(KINDS[fn])
    return dict(found), dict(dynamic), problems


def _tables(worst_module: str) -> tuple[dict, dict, int]:
    m = importlib.import_module(worst_module)
    return m.WORST, m.DYNAMIC, m.SIZE


def check_coverage(package: str, worst_module: str, at_least: int) -> None:
    """Every pattern of `package`, and each way it is called, has a worst case; none is left over."""
    found, dynamic, problems = inventory(package)
    worst, dyn, size = _tables(worst_module)
    assert problems == [], problems
    assert len(found) >= at_least, len(found)  # the scan sees the package (a broken walk would find nothing and pass)
    sources = {source for source, _ in found}
    missing, unused = sorted(map(repr, sources - set(worst))), sorted(map(repr, set(worst) - sources))
    assert missing == [], f"no worst case in {worst_module}: {missing}"
    assert unused == [], f"a worst case for a pattern {package} no longer uses: {unused}"
    uncovered = {repr(s): sorted(kinds - set(worst[s])) for (s, _), kinds in found.items() if kinds - set(worst[s])}
    assert uncovered == {}, f"called in a way its worst case does not cover: {uncovered}"
    assert set(dynamic) == set(dyn), f"a pattern built at run time without a representative: {set(dynamic) ^ set(dyn)}"
    uncovered = {k: sorted(v - set(dyn[k][1])) for k, v in dynamic.items() if v - set(dyn[k][1])}
    assert uncovered == {}, uncovered
    for calls in [*worst.values(), *(c for _, c in dyn.values())]:
        for call, (text, _) in calls.items():
            assert call in ("match", "fullmatch", "search") and len(text) >= size, (call, text[:80])


def _plan(package: str, worst_module: str) -> list[Step]:
    """Each pattern found, with its flags, once per call in its worst cases; then the dynamic ones."""
    found, _, _ = inventory(package)
    worst, dyn, _ = _tables(worst_module)
    keys, dyn_keys = list(worst), list(dyn)
    return [(keys.index(source), flags, call) for source, flags in sorted(found, key=repr)
            for call in worst.get(source, {})] \
        + [(-1 - i, 0, call) for i, key in enumerate(dyn_keys) for call in dyn[key][1]]


def _case(worst_module: str, which: int, flags: int, call: str) -> Case:
    worst, dyn, _ = _tables(worst_module)
    if which < 0:  # a pattern built at run time: its representative
        key = list(dyn)[-1 - which]
        source, calls = dyn[key]
        return f"{key[0]}: {source!r}", re.compile(source), call, *calls[call]
    key = list(worst)[which]
    return repr(key), re.compile(key, flags), call, *worst[key][call]


def run_worst_cases(worst_module: str, plan: str) -> None:
    """In the child (the parent found the patterns; this compiles their sources): each case with a line before it,
    so a kill names the case, and one after it with the result."""
    for i, step in enumerate(json.loads(plan)):
        name, pattern, call, text, _ = _case(worst_module, *step)
        print(json.dumps({"begin": i, "name": name, "call": call}), flush=True)
        t0 = time.process_time()
        m = getattr(pattern, call)(text)
        print(json.dumps({"end": i, "span": m.span() if m else None, "cpu": time.process_time() - t0}), flush=True)


def _limit_cpu() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def check_worst_cases(package: str, worst_module: str) -> None:
    """All worst cases in one child under RLIMIT_CPU: it must finish, each with its expected result."""
    plan = _plan(package, worst_module)
    cases = [_case(worst_module, *step) for step in plan]
    assert len(cases) >= len(_tables(worst_module)[0])
    code = "import sys; from tests.patterns_support import run_worst_cases as r; r(sys.argv[1], sys.argv[2])"
    run = subprocess.run([sys.executable, "-c", code, worst_module, json.dumps(plan)], cwd=ROOT,
                         capture_output=True, text=True, preexec_fn=_limit_cpu, timeout=10 * CPU_SECONDS)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    begun = [x for x in lines if "begin" in x]
    assert run.returncode == 0, f"killed or failed (CPU limit {CPU_SECONDS} s) in {begun[-1] if begun else None}: " \
                                f"{run.stderr[-2000:]}"
    ended = {x["end"]: x for x in lines if "end" in x}
    assert sorted(ended) == list(range(len(cases))), run.stderr[-2000:]
    wrong = {f"{name} {call}": ended[i]["span"] for i, (name, _, call, _, expected) in enumerate(cases)
             if (tuple(ended[i]["span"]) if ended[i]["span"] else None) != expected}
    assert wrong == {}, f"not the expected result: {wrong}"  # (pytest rewrites only test modules)
    slowest = max(ended.values(), key=lambda x: x["cpu"])
    assert slowest["cpu"] < CPU_SECONDS, begun[slowest["end"]]


def words(tokens: list[Any], longest: int) -> list[Any]:
    """Every concatenation of up to `longest` tokens: inputs for comparing a rewritten pattern with the old one."""
    empty = tokens[0][:0]
    return [empty.join(w) for n in range(longest + 1) for w in itertools.product(tokens, repeat=n)]


def pattern_tests(package: str, worst_module: str, at_least: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """The two tests for a package, for its test module to bind to test_ names."""
    def test_every_pattern_and_each_way_it_is_called_has_a_worst_case() -> None:
        check_coverage(package, worst_module, at_least)

    def test_every_worst_case_finishes_under_a_cpu_limit_with_the_expected_result() -> None:
        check_worst_cases(package, worst_module)

    return test_every_pattern_and_each_way_it_is_called_has_a_worst_case, \
        test_every_worst_case_finishes_under_a_cpu_limit_with_the_expected_result
