"""profiles/patterns.py: every regular expression the validator applies to input runs on RE2, with Java's meaning of
the FHIR regexes; the few patterns RE2 cannot run get a bounded fallback. No timings are asserted: a backtracking
engine would not finish these inputs at all (bench/bench_patterns.py has the times)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from profiles import fhirpath, patterns
from profiles.elements import Constraint
from profiles.validator import Validator
from tests.conftest import ROOT
from tests.profiles.worst_cases import SIZE, WORST


def test_each_r4_primitive_pattern_meets_its_worst_case(validator: Validator) -> None:
    assert set(validator.regex) == set(WORST), "a primitive type without a worst case in tests/profiles/worst_cases.py"
    for type_code, rx in validator.regex.items():
        bad, good = WORST[type_code]
        assert rx.engine == "re2", type_code
        assert len(bad) >= SIZE
        assert not rx.full(bad), type_code
        assert rx.full(good), type_code


def test_the_base64_reproducer_is_reported_by_the_validator(validator: Validator) -> None:
    for data in ("AAAA  " * 25 + "AAA!", WORST["base64Binary"][0]):  # 170 bytes (~28 s on `re`), and 10 KB
        issues = validator.validate({"resourceType": "Binary", "contentType": "text/plain", "data": data})
        assert [i.expression for i in issues if "not a valid base64Binary" in i.message] == ["Binary.data"]
    assert validator.validate({"resourceType": "Binary", "contentType": "text/plain", "data": "AAAA  AAAA"}) == []


def test_java_white_space_and_full_match_semantics() -> None:
    string = patterns.compile(r"[ \r\n\t\S]+")  # the R4 string regex
    assert string.full("a\u00a0b")  # java.util.regex: U+00A0 is not \s (Python's `re` refused it)
    assert not string.full("a\x0bb") and not string.full("a\fb")  # \x0B and \f are \s in Java, and not listed
    assert patterns.compile(r"[0]|([1-9][0-9]*)").full("10")  # an alternation must match the whole value
    assert not patterns.compile("^abc$").full("abc\n")  # $ is the end of the text
    assert patterns.compile(r"\u00e9+").full("éé")
    assert patterns.compile(r"[]a]+").full("]a")


def test_matches_groups_and_substitution_over_non_ascii_text() -> None:
    ref = patterns.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")
    m = ref.match("Patient/p1")
    assert m is not None and m.groups() == ("Patient", "p1", None) and m.span(2) == (8, 10)
    tag = patterns.compile(r"<[^>]*>")
    assert tag.sub("", "<p>检验<b>报告</b></p>é") == "检验报告é"
    assert tag.sub("", "<" * 100_000) == "<" * 100_000  # quadratic on a backtracking engine
    assert patterns.compile("x*").sub("-", "aé") == "-a-é-"
    assert patterns.compile(r"%([a-z]+)").findall("%a + %bé %c") == ["a", "b", "c"]
    assert patterns.compile(r"\sid\s*=\s*[\"']([^\"']*)[\"']").findall('<p id="a"/><p id=\'b\'/>') == ["a", "b"]
    assert patterns.compile("x").found("a\ud800x")  # a lone surrogate does not stop the match elsewhere
    assert patterns.compile("AB", patterns.IGNORECASE).full("ab")
    assert patterns.compile("a.b", patterns.DOTALL).full("a\nb") and not patterns.compile("a.b").full("a\nb")


def test_patterns_re2_cannot_run_fall_back_with_a_time_budget() -> None:
    backref = patterns.compile(r"(a|b)\1")
    assert backref.engine == "regex"
    assert backref.full("aa") and not backref.full("ab") and backref.findall("xaabb") == ["a", "b"]
    with pytest.raises(patterns.PatternTimeout):
        patterns.compile(r"(a|aa)+\1b").found("a" * 60)


def test_fhirpath_matches_and_replace_matches_run_on_re2() -> None:
    base64 = r"(\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+"
    value = WORST["base64Binary"][0]
    assert fhirpath.select(f"Binary.data.matches('^{base64}$')", {"resourceType": "Binary", "data": value}) == [False]
    assert fhirpath.select(f"Binary.data.matches('{base64}')", {"resourceType": "Binary", "data": value}) == [True]
    doc = {"resourceType": "Patient", "id": "ab12"}
    assert fhirpath.select("Patient.id.replaceMatches('([a-z]+)([0-9]+)', '$2-$1')", doc) == ["12-ab"]
    assert fhirpath.select("Patient.id.matches('a.\\\\d')", doc) == [True]  # found anywhere: 'ab1'
    assert fhirpath.select("Patient.id.matches('^a\\\\d')", doc) == [False]


def test_an_invariant_whose_regex_times_out_is_reported_not_checked(validator: Validator) -> None:
    node = validator.node("http://hl7.org/fhir/StructureDefinition/Patient")
    assert node is not None
    slow = Constraint("test-1", "error", "slow", "id.matches('(a|aa)+\\\\1b')", "test")  # a backreference
    run = validator.new_run({"resourceType": "Patient", "id": "a" * 60})
    saved = node.constraints
    node.constraints = (slow,)
    try:
        validator.check_invariants(run.root, node, "Patient", run)
    finally:
        node.constraints = saved
    assert [(i.severity, i.code) for i in run.issues] == [("warning", "too-costly")]


def _regex_users(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names]
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    return [m for m in ("re", "regex") if m in names or m in modules]


def test_no_backtracking_regex_module_is_used_on_input() -> None:
    files = [*sorted((ROOT / "profiles").rglob("*.py")), *sorted((ROOT / "gateway").glob("validate*.py"))]
    offenders = {str(f.relative_to(ROOT)): users for f in files if f.name != "patterns.py"
                 if (users := _regex_users(f))}
    assert offenders == {}, "match input through profiles/patterns.py (RE2), not Python's backtracking re"
