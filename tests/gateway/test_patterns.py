"""Issue 12: every regular expression in gateway/ (most applied to what clients send) is fed its ~100 KB worst case
(tests/gateway/worst_cases.py; found and run under a CPU limit by tests/patterns_support.py). The three rewritten to be
linear are compared with the old ones."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from gateway.auth import ratelimit
from gateway.facade import patch
from gateway.facade.addresses import Addresses
from gateway.openapi import document as openapi_document
from tests.gateway.worst_cases import DYNAMIC
from tests.patterns_support import CPU_SECONDS, _limit_cpu, _modules, pattern_tests, words

test_every_pattern_and_each_way_it_is_called_has_a_worst_case, \
    test_every_worst_case_finishes_under_a_cpu_limit_with_the_expected_result = \
    pattern_tests("gateway", "tests.gateway.worst_cases", at_least=30)


def test_the_upstream_address_representative_is_what_the_facade_builds() -> None:
    built = Addresses(["http://upstream:8080/fhir"])
    (source, _), (text_source, _), _ = DYNAMIC.values()
    assert built._pattern.pattern.decode("latin-1") == source == text_source == built._text.pattern


# --- the rewritten patterns match what the old ones matched

def test_rate_limit_spec_reads_as_before() -> None:
    old = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*(?:burst\s+(\d+))?\s*\Z")
    examples = ["20/s burst 40", "600/min", " 5 / h  burst  10 ", "5/hburst 10", "5/h burst", "5/h burst10",
                "1.5/s", "1./s", "/s", "5/ burst 1", "5/sburstburst 1", "5/s\tburst\n3\n", "5/s burst 3 4", ""]
    for text in examples + words([" ", "1", "/", "s", "burst", ".", "\t", "x"], 6):
        a, b = old.match(text), ratelimit._SPEC.match(text)
        assert (a and (a.span(), a.groups())) == (b and (b.span(), b.groups())), repr(text)
    assert ratelimit.parse_limit("20/s   burst 40").burst == 40
    assert ratelimit.parse_limit("5/hburst 10").rate == 5 / 3600  # the unit ends where "burst" begins


def _old_names(path: str) -> list[str]:
    return re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.sub(r"'(?:[^'\\]|\\.)*'", "''", path))


def _new_names(path: str) -> list[str]:  # as _check_path reads them
    return patch._CALL.findall(patch._STRING.sub(patch._emptied, path))


def test_patch_path_function_names_are_read_as_before() -> None:
    examples = ["Patient.name.where(use='official').given", "name.where(x = 'a(b)').first()", "a.exists ()",
                "x.where(y='it\\'s(').z", "x.where(y='open", "'a\\\nb'c(", "1a(", "12ab(", "a1b(", "_x(", "é(",
                "a.b(c(d()))", "'\\'' f(", "''g(", "x.where(v='\\\\').h()", "''''", "'", "\\'", ""]
    for path in examples + words(["'", "\\", "a", "1", "(", " ", "\n"], 6):
        assert _old_names(path) == _new_names(path), repr(path)
    for path in words(["a", "1", "_", " ", "(", "é", "."], 5):
        assert re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", path) == patch._CALL.findall(path), repr(path)
    assert patch._check_path("Patient.name.where(use='x(').given") == "Patient.name.where(use='x(').given"
    with pytest.raises(patch.PatchError, match=r"the function resolve\(\) is not supported"):
        patch._check_path("Observation.subject.resolve().name")
    with pytest.raises(patch.PatchError, match=r"the function resolve\(\) is not supported"):
        patch._check_path("x.where(y='unclosed).resolve()")  # an unclosed quote hides nothing


# --- the `pattern` strings of gateway's JSON Schemas (jsonschema applies them with re.search)

def _schema_patterns(value: object, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        if isinstance(value.get("pattern"), str):
            found.add(value["pattern"])
        for v in value.values():
            _schema_patterns(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _schema_patterns(v, found)
    return found


_SCHEMA_CHILD = """
import json, re, sys
for p in json.loads(sys.argv[1]):
    for c in "Aa0.*-+: ":
        for text in (c * 100_000, "A" + c * 100_000 + "!", ("A" + c) * 50_000 + "\\n", "A" + (c + ".") * 50_000):
            re.search(p, text)
    print(p, flush=True)
"""


def test_every_json_schema_pattern_is_linear_on_long_runs() -> None:
    """Each `pattern` of a module-level schema in gateway/ (exchange rules, OpenAPI parameters) runs over 100 KB runs
    of every character class it names, in a child under the shared CPU limit: a backtracking blow-up is killed."""
    found: set[str] = set()
    for module in _modules("gateway"):
        for value in vars(module).values():
            if isinstance(value, dict | list | tuple):
                _schema_patterns(value, found)
    found |= _schema_patterns(openapi_document(), set())
    assert len(found) >= 7, found  # the exchange rules' and the OpenAPI document's patterns
    run = subprocess.run([sys.executable, "-c", _SCHEMA_CHILD, json.dumps(sorted(found))], capture_output=True,
                         text=True, preexec_fn=_limit_cpu, timeout=10 * CPU_SECONDS)
    done = run.stdout.splitlines()
    assert run.returncode == 0 and len(done) == len(found), \
        f"killed (CPU limit {CPU_SECONDS} s) after {done}: {run.stderr[-1000:]}"
