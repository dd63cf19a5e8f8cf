"""conformance.suites and the model: bundled suites load, name their requirements, and expand over inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

import conformance
from conformance import CHECKS, SuiteError, check, load_suite, suite_names
from conformance.model import REQUIREMENT_KINDS
from tests.conftest import ROOT

MESSAGES = ROOT / "tests" / "mappers" / "hl7v2" / "messages"


def test_public_api_is_sorted_and_exported() -> None:
    names = conformance.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))  # ruff's RUF022 order
    assert all(hasattr(conformance, n) for n in names)


@pytest.mark.parametrize("name", ["gateway", "converter", "genomics-server"])
def test_bundled_suite_loads_and_every_test_names_its_requirement(name: str) -> None:
    assert name in suite_names()
    suite = load_suite(name)
    tests = [t for _, t in suite.tests()]
    assert len(tests) >= 20
    assert len({t.id for t in tests}) == len(tests)
    for t in tests:
        assert t.check in CHECKS
        assert t.requirement.kind in REQUIREMENT_KINDS
        assert t.requirement.source.startswith("https://") and t.requirement.text


def test_server_suite_covers_the_three_profiles_and_the_interactions() -> None:
    suite = load_suite("genomics-server")
    profiles = {t.params.get("profile", "").rsplit("/", 1)[-1] for _, t in suite.tests() if t.check == "read-validates"}
    assert profiles == {"variant", "diagnostic-implication", "genomic-report"}
    checks = {t.check for _, t in suite.tests()}
    assert {"create", "read", "search", "reject", "capability-profiles", "capability-search-params"} <= checks
    optional = {t.id for _, t in suite.tests() if not t.required}
    assert optional == {t.id for _, t in suite.tests() if t.params.get("declared")}  # only declared-param searches


def _write_suite(tmp_path: Path, tests: list[dict], **extra: object) -> Path:
    path = tmp_path / "custom.json"
    doc = {"id": "custom", "title": "Custom", "version": "0", "groups": [{"id": "g", "title": "G", "tests": tests}],
           **extra}
    path.write_bytes(orjson.dumps(doc))
    return path


REQ = {"kind": "rest", "text": "t", "source": "https://hl7.org/fhir/R4/http.html"}


def test_malformed_suites_are_refused_with_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="check 'no-such-check' is not registered"):
        load_suite(str(_write_suite(tmp_path, [{"id": "a", "title": "A", "check": "no-such-check",
                                                 "requirement": REQ}])))
    with pytest.raises(SuiteError, match="a: needs 'b', which is not an earlier test"):
        load_suite(str(_write_suite(tmp_path, [
            {"id": "a", "title": "A", "check": "capability-statement", "requirement": REQ, "needs": ["b"]},
            {"id": "b", "title": "B", "check": "capability-statement", "requirement": REQ}])))
    with pytest.raises(SuiteError, match="duplicate test id"):
        load_suite(str(_write_suite(tmp_path, [
            {"id": "a", "title": "A", "check": "capability-statement", "requirement": REQ}] * 2)))
    with pytest.raises(SuiteError, match="missing 'title'"):
        load_suite(str(_write_suite(tmp_path, [{"id": "a", "check": "capability-statement", "requirement": REQ}])))
    with pytest.raises(SuiteError, match="must be a URL"):
        load_suite(str(_write_suite(tmp_path, [{"id": "a", "title": "A", "check": "capability-statement",
                                                 "requirement": {**REQ, "source": "the spec"}}])))
    with pytest.raises(SuiteError, match="unknown requirement 'nope'"):
        load_suite(str(_write_suite(tmp_path, [{"id": "a", "title": "A", "check": "capability-statement",
                                                 "requirement": "nope"}])))
    with pytest.raises(SuiteError, match="no suite named 'nonesuch'; the kit has: converter, exchange, gateway"):
        load_suite("nonesuch")


def test_named_requirements_are_shared(tmp_path: Path) -> None:
    suite = load_suite(str(_write_suite(tmp_path, [
        {"id": "a", "title": "A", "check": "capability-statement", "requirement": "caps"}],
        requirements={"caps": REQ})))
    assert next(suite.tests())[1].requirement.source == REQ["source"]


def test_checks_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        check("read")(lambda ctx: None)


def test_inputs_expand_per_file_and_facts_only_where_stated(tmp_path: Path) -> None:
    msgs = tmp_path / "tests" / "mappers" / "hl7v2" / "messages"
    msgs.mkdir(parents=True)
    first = sorted(MESSAGES.glob("*.hl7"))[0]
    shutil.copy(first, msgs / "A Message.hl7")
    shutil.copy(first.with_suffix(".facts.json"), msgs / "A Message.facts.json")
    shutil.copy(first, msgs / "b.hl7")
    suite = load_suite("converter", inputs=[tmp_path], formats={"hl7v2"})
    groups = {g.id: g for g in suite.groups}
    assert [t.id for t in groups["hl7v2"].tests] == [
        "v2-a-message-convert", "v2-a-message-facts", "v2-a-message-valid", "v2-content-type", "v2-parameters",
        "v2-b-convert", "v2-b-valid"]
    facts = next(t for t in groups["hl7v2"].tests if t.id == "v2-a-message-facts")
    assert facts.needs == ("v2-a-message-convert",) and facts.title.startswith("a-message:")
    assert facts.params["input"]["facts"].endswith("A Message.facts.json")
    # a format this build does not convert: one optional placeholder that says so
    vcf = groups["vcf"].tests
    assert len(vcf) == 1 and not vcf[0].required and "no vcf → FHIR converter" in vcf[0].params["reason"]


def test_missing_inputs_are_a_required_skip_for_hl7v2_and_optional_for_formats_to_come(tmp_path: Path) -> None:
    suite = load_suite("converter", inputs=[tmp_path], formats={"hl7v2", "vcf"})
    groups = {g.id: g.tests for g in suite.groups}
    assert [(t.id, t.required) for t in groups["hl7v2"]] == [("hl7v2-inputs", True)]
    assert [(t.id, t.required) for t in groups["vcf"]] == [("vcf-inputs", False)]
    assert "pass --inputs DIR" in groups["hl7v2"][0].params["reason"]


def test_a_group_may_take_inputs_of_several_formats(tmp_path: Path) -> None:
    """The EU document groups convert a China CDA and an HL7 v2 ORU to one target: one input spec per format, a
    placeholder per spec whose format this build does not convert."""
    examples = tmp_path / "examples"
    examples.mkdir()
    shutil.copy(ROOT / "examples" / "oru-egfr-somatic.hl7", examples)
    suite = load_suite("converter", inputs=[tmp_path], formats={"hl7v2"})
    tests = {g.id: g.tests for g in suite.groups}["to-ips"]
    assert [(t.id, t.required) for t in tests] == [
        ("to-ips-inputs-1", False), ("to-ips-oru-egfr-somatic-convert", True),
        ("to-ips-oru-egfr-somatic-document", True), ("to-ips-oru-egfr-somatic-valid", True)]
    assert "no cda-cn → FHIR converter" in tests[0].params["reason"]
    assert tests[1].params["input"]["query"] == {"target": "ips"}
    both = load_suite("converter", inputs=[tmp_path], formats={"hl7v2", "cda-cn"})
    cda = {g.id: g.tests for g in both.groups}["to-ehdsi-cda"]
    assert [(t.id, t.required) for t in cda] == [("to-ehdsi-cda-inputs-1", False),
                                                 ("to-ehdsi-cda-oru-egfr-somatic", True)]
    assert cda[1].params["input"]["query"] == {"target": "ehdsi-cda", "language": "en-GB"}
