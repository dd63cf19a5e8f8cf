"""Every regular expression the mappers apply to input runs in time linear in the input on Python's backtracking `re`.

The patterns are found in the code, not listed by hand: every module-level compiled pattern of the mappers package,
every `re.<function>("literal", ...)` call, and the calls made on each (match, fullmatch, or a scan: search, sub,
split...). tests/mappers/worst_cases.py gives each its worst case (~100 KB) for each way it is called; a pattern or a
way of calling it without one fails here. All worst cases run in one child process under a CPU-time limit: a
quadratic pattern takes minutes on 100 KB, a linear one milliseconds, so finishing is the bound (no speed target).

The four patterns rewritten to be linear are compared with the old ones on hand-picked and enumerated inputs.
"""

from __future__ import annotations

import ast
import functools
import importlib
import itertools
import json
import pkgutil
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import mappers
from mappers.cda_cn import safexml
from mappers.cda_cn.emit import results
from mappers.exceptions import ParseError
from mappers.hl7v2 import datatypes
from mappers.toolkit import origins
from tests.mappers.worst_cases import DYNAMIC, SIZE, WORST

ROOT = Path(__file__).resolve().parents[2]
CPU_SECONDS = 20
WORST_KEYS, DYNAMIC_KEYS = list(WORST), list(DYNAMIC)
# how each call walks the input: the scanning calls all try a match from each position in turn, as search does
KINDS = {"match": "match", "fullmatch": "fullmatch", "search": "search", "sub": "search", "subn": "search",
         "split": "search", "findall": "search", "finditer": "search"}
_FLAGS_AT = {"compile": 1, "match": 2, "fullmatch": 2, "search": 2, "findall": 2, "finditer": 2, "split": 3,
             "sub": 4, "subn": 4}  # position of `flags` in re.<function>(...)

Key = tuple[str | bytes, int]  # (pattern source, flags as given)


def _modules() -> list[ModuleType]:
    return [mappers, *(importlib.import_module(m.name) for m in pkgutil.walk_packages(mappers.__path__, "mappers."))]


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


@functools.cache
def inventory() -> tuple[dict[Key, set[str]], dict[tuple[str, str], set[str]], list[str]]:
    """(pattern → the kinds of call made on it, dynamic pattern → kinds, problems found) over the mappers package."""
    found: dict[Key, set[str]] = defaultdict(set)
    dynamic: dict[tuple[str, str], set[str]] = defaultdict(set)
    problems: list[str] = []
    for module in _modules():
        names = vars(module)
        for value in names.values():
            for p in _patterns_in(value):
                found.setdefault((p.pattern, p.flags & ~re.UNICODE), set())  # every module-level one, called or not
        path = Path(module.__file__ or "")
        where, text = str(path.relative_to(ROOT)), path.read_text()
        if "re." not in text and "import re" not in text and not any(
                f"{n}." in text for n, v in names.items() if isinstance(v, re.Pattern)):
            continue  # no regex in this file (parsing all 130 files is most of this test's time)
        tree = ast.parse(text)
        for node in ast.walk(tree):
            imported = [(a.name, a.asname) for a in node.names] if isinstance(node, ast.Import) else \
                [(node.module, "from")] if isinstance(node, ast.ImportFrom) else []
            if any(name in ("re", "regex", "re2") and (name, alias) != ("re", None) for name, alias in imported):
                problems.append(f"{where}:{node.lineno}: only a plain `import re` is seen by this test")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)):
                continue
            owner, fn = node.func.value.id, node.func.attr
            if owner == "re" and fn in _FLAGS_AT:
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str | bytes):
                    kinds = found[(arg.value, _flags(node, fn))]
                    if fn != "compile":
                        kinds.add(KINDS[fn])
                else:
                    kinds = dynamic[(where, ast.unparse(arg) if arg else "")]
                    if fn != "compile":
                        kinds.add(KINDS[fn])
            elif fn in KINDS and isinstance(names.get(owner), re.Pattern):
                p = names[owner]
                found[(p.pattern, p.flags & ~re.UNICODE)].add(KINDS[fn])
    return dict(found), dict(dynamic), problems


Case = tuple[str, re.Pattern, str, str | bytes, tuple[int, int] | None]  # name, pattern, call, input, expected
Step = tuple[int, int, str]  # (index in WORST_KEYS, or -1 - index in DYNAMIC_KEYS; flags; call)


def _plan() -> list[Step]:
    """Each pattern found, with its flags, once per call in its worst cases; then the dynamic ones."""
    found, _, _ = inventory()
    return [(WORST_KEYS.index(source), flags, call) for source, flags in sorted(found, key=repr)
            for call in WORST.get(source, {})] \
        + [(-1 - i, 0, call) for i, key in enumerate(DYNAMIC_KEYS) for call in DYNAMIC[key][1]]


def _case(which: int, flags: int, call: str) -> Case:
    if which < 0:  # a pattern built at run time: its representative
        where, _ = DYNAMIC_KEYS[-1 - which]
        source, calls = DYNAMIC[DYNAMIC_KEYS[-1 - which]]
        return f"{where}: {source!r}", re.compile(source), call, *calls[call]
    key = WORST_KEYS[which]
    return repr(key), re.compile(key, flags), call, *WORST[key][call]


def run_worst_cases(plan: str) -> None:
    """In the child (the parent found the patterns; this compiles their sources): each case with a line before it,
    so a kill names the case, and one after it with the result."""
    for i, step in enumerate(json.loads(plan)):
        name, pattern, call, text, _ = _case(*step)
        print(json.dumps({"begin": i, "name": name, "call": call}), flush=True)
        t0 = time.process_time()
        m = getattr(pattern, call)(text)
        print(json.dumps({"end": i, "span": m.span() if m else None, "cpu": time.process_time() - t0}), flush=True)


def _limit_cpu() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def test_every_pattern_and_each_way_it_is_called_has_a_worst_case() -> None:
    found, dynamic, problems = inventory()
    assert problems == []
    assert len(found) >= 60  # the scan sees the package (a broken walk would find nothing and pass)
    sources = {source for source, _ in found}
    assert sorted(map(repr, sources - set(WORST))) == [], "no worst case in tests/mappers/worst_cases.py"
    assert sorted(map(repr, set(WORST) - sources)) == [], "a worst case for a pattern the mappers no longer use"
    uncovered = {repr(s): sorted(kinds - set(WORST[s])) for (s, _), kinds in found.items() if kinds - set(WORST[s])}
    assert uncovered == {}, "called in a way its worst case does not cover"
    assert set(dynamic) == set(DYNAMIC), "a pattern built at run time without a representative worst case"
    assert {k: sorted(v - set(DYNAMIC[k][1])) for k, v in dynamic.items() if v - set(DYNAMIC[k][1])} == {}
    for calls in [*WORST.values(), *(c for _, c in DYNAMIC.values())]:
        for call, (text, _) in calls.items():
            assert call in ("match", "fullmatch", "search") and len(text) >= SIZE


def test_every_worst_case_finishes_under_a_cpu_limit_with_the_expected_result() -> None:
    plan = _plan()
    cases = [_case(*step) for step in plan]
    assert len(cases) >= len(WORST)
    code = "import sys; from tests.mappers.test_patterns import run_worst_cases as r; r(sys.argv[1])"
    run = subprocess.run([sys.executable, "-c", code, json.dumps(plan)], cwd=ROOT, capture_output=True, text=True,
                         preexec_fn=_limit_cpu, timeout=10 * CPU_SECONDS)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    begun = [x for x in lines if "begin" in x]
    assert run.returncode == 0, f"killed or failed (CPU limit {CPU_SECONDS} s) in {begun[-1] if begun else None}: " \
                                f"{run.stderr[-2000:]}"
    ended = {x["end"]: x for x in lines if "end" in x}
    assert sorted(ended) == list(range(len(cases)))
    wrong = {f"{name} {call}": ended[i]["span"] for i, (name, _, call, _, expected) in enumerate(cases)
             if (tuple(ended[i]["span"]) if ended[i]["span"] else None) != expected}
    assert wrong == {}
    slowest = max(ended.values(), key=lambda x: x["cpu"])
    assert slowest["cpu"] < CPU_SECONDS, begun[slowest["end"]]


# --- the rewritten patterns match what the old ones matched

def _words(tokens: list[Any], longest: int) -> list[Any]:
    empty = tokens[0][:0]
    return [empty.join(w) for n in range(longest + 1) for w in itertools.product(tokens, repeat=n)]


def test_hgvs_lrg_matches_as_before() -> None:
    old = re.compile(r"^(?:[A-Z]{1,3}_?\d+(?:\.\d+)?(?:\([^)]*\))?|LRG_\d+\w*):[cgmnopr]\.")
    examples = ["LRG_1:g.123A>G", "LRG_199t1:c.79_80del", "LRG_1p1:p.Gly2Ser", "LRG_:c.1", "LRG_a1:c.",
                "LRG_1_2:c.", "LRG_١٢:c.1", "LRG_1²:c.", "NM_000088.3:c.589G>T", "NC_000001.11(NM_1):g.1",
                "lrg_1:c.", "LRG_1:x.", "LRG_1c.", "", "LRG_12345", "LRG_1 :c."]
    inputs = examples + _words(["LRG_", "1", "١", "a", "_", ":", "c", ".", "²", "NM"], 5)
    for text in inputs:
        a, b = old.match(text), datatypes._HGVS.match(text)
        assert (a and a.span()) == (b and b.span()), text
    assert datatypes.is_hgvs("LRG_199t1:c.79_80del") and not datatypes.is_hgvs("LRG_x:c.1")


def test_cn_lab_number_matches_as_before() -> None:
    old = re.compile(r"^\s*([<>]=?)?\s*([-+]?\d+(?:\.\d+)?)\s*$")
    examples = ["1", " 12.5 ", "<5", "<= 5", ">=5.0", "> -3", "<<5", "=5", "< ", "5 <", "+1.", ".5", "1.2.3",
                "\t>\n7\n", "", " ", "<=  +2.50  ", "１２", "5\n", ">=\u00a05", "> = 5"]
    for text in examples + _words([" ", "<", ">", "=", "1", ".", "-", "\n"], 6):
        a, b = old.match(text), results._NUMBER.match(text)
        assert (a and (a.span(), a.groups())) == (b and (b.span(), b.groups())), repr(text)


def _old_declared(data: bytes) -> bytes | None:
    m = re.match(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>", data)
    return m.group(1) if m else None


def _new_declared(data: bytes) -> bytes | None:  # as safexml.decode reads it
    decl = safexml._DECL.match(data)
    m = safexml._ENCODING.search(decl.group()) if decl else None
    return m.group(1) if m else None


def test_cda_declared_encoding_is_read_as_before() -> None:
    examples = [b'<?xml version="1.0" encoding="UTF-8"?>', b"<?xml version='1.0' encoding='GB18030' ?>",
                b'  <?xml encoding="a" encoding="b"?>', b'<?xml encoding = "gbk"?><root/>', b'<?xml version="1.0"?>',
                b'<?xml encoding="utf-8">', b'<?xml encoding="utf 8"?>', b'<?xml encoding="" encoding="x"?>',
                b'<?xmlencoding="x"?>', b"<?xml encoding=\"x'?>", b'<?xml encoding="a"?><?xml encoding="b"?>',
                b"<?xml x=\"encoding='q'\"?>", b'<?xml encoding="a"', b'<root encoding="a"?>',
                b'\n<?xml encoding="a"?>', b'<?xml encoding="a">?>', b'<?xml encoding="a"?' + b" " * 600 + b">"]
    tokens = [b" ", b"encoding", b"=", b'"', b"'", b"a", b"?>", b">", b"?"]
    for data in examples + [b"<?xml" + w for w in _words(tokens, 5)]:
        assert _old_declared(data) == _new_declared(data), data
    assert safexml.decode('<?xml version="1.0" encoding="GBK"?><a>检验</a>'.encode("gb18030"))[1] == "gb18030"
    try:
        safexml.decode(b'<?xml version="1.0" encoding="latin-1" encoding="utf-8"?><a/>')
    except ParseError as e:
        assert "'latin-1' is not supported" in str(e)
    else:
        raise AssertionError("the first declared encoding is the one read")


def test_of_type_choice_names_are_read_as_before() -> None:
    def old(expression: str) -> str:
        return re.sub(r"(\w+)\.ofType\((\w)(\w*)\)", lambda c: c.group(1) + c.group(2).upper() + c.group(3),
                      expression)

    examples = ["Observation.value.ofType(Quantity)", "effective.ofType(dateTime).value", "a.ofType(b)c.ofType(d)",
                "x.ofType(A).ofType(B)", "value.ofType()", "é.ofType(x)", "_a.ofType(b)", "a-b.ofType(c)",
                "Bundle.entry[0].resource.ofType(Patient).name", ""]
    for text in examples + _words(["a", "b1", ".", "ofType(", ")", "-", "é", "X"], 5):
        assert old(text) == origins.readable(text), text
    assert origins.readable("component[0].value.ofType(Quantity)") == "component[0].valueQuantity"
