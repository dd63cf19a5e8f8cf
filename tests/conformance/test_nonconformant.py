"""The kit against a server that breaks on purpose fails exactly the tests that check what it breaks, and
nothing else (every other test passes, none is an `error`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import FAIL, PASS, RunReport, load_suite, run_suite
from tests.conformance.conftest import served
from tests.conformance.servers import DEFECTS, ReferenceServer
from tests.conftest import ROOT

MESSAGES = sorted((ROOT / "tests" / "mappers" / "hl7v2" / "messages").glob("*.hl7"))[:3]
EXAMPLE = ROOT / "examples" / "oru-egfr-somatic.hl7"  # also converted to the EU documents (ips, eu-lab, ehdsi-cda)
V2_IDS = [p.stem for p in MESSAGES] + [EXAMPLE.stem]

# Tests that check the content type of successful answers / of error answers.
CONTENT_TYPE = {
    "gateway": {"neg-format-json", "neg-format-fhir-json", "neg-format-application-json", "neg-accept-fhir-json",
                "neg-accept-json", "neg-format-overrides-accept"},
    "genomics-server": {"read-content-type"},
    "converter": {"v2-content-type", f"to-ehdsi-cda-{EXAMPLE.stem}"},
}
ERROR_CONTENT_TYPE = {"gateway": {"err-content-type"}}
# Tests that check an error answer carries an OperationOutcome.
OUTCOME = {
    "gateway": {"neg-format-xml", "neg-accept-xml", "val-unparseable", "err-unknown-path", "err-method",
                "err-convert-media-type", "err-convert-unreadable", "err-convert-empty"},
    "genomics-server": {"reject-profile-invalid", "reject-base-invalid", "reject-unparseable", "reject-wrong-type",
                        "read-unknown"},
    "converter": {"conv-reject-adt", "conv-reject-unreadable", "conv-reject-media-type"},
}
# Tests that validate what the server gives back, and that it refuses what is invalid.
VALIDITY = {
    "genomics-server": {"read-variant-valid", "read-implication-valid", "read-report-valid"},
    "converter": {f"v2-{i}-valid" for i in V2_IDS} | {f"to-{t}-{EXAMPLE.stem}-valid" for t in ("ips", "eu-lab")},
}
REFUSAL = {"genomics-server": {"reject-profile-invalid", "reject-base-invalid"}}
# Tests that check an EU document links its parts: the IPS Results section and the EU Lab Composition name the
# DiagnosticReport; the eHDSI CDA has a languageCode.
DOCUMENTS = {"converter": {f"to-ips-{EXAMPLE.stem}-document", f"to-eu-lab-{EXAMPLE.stem}-document",
                           f"to-ehdsi-cda-{EXAMPLE.stem}"}}


def _union(*parts: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for part in parts:
        for suite, ids in part.items():
            out.setdefault(suite, set()).update(ids)
    return out


EXPECTED = {
    "wrong-content-type": _union(CONTENT_TYPE, ERROR_CONTENT_TYPE),
    "invalid-resources": VALIDITY,
    "accepts-invalid": REFUSAL,
    "no-outcome": OUTCOME,
    "html-errors": _union(OUTCOME, ERROR_CONTENT_TYPE),
    "loose-documents": DOCUMENTS,
    "no-pinyin": {},  # the example ORU's patient has a Latin name: see test_a_han_name_needs_its_pinyin_form
}
assert set(EXPECTED) == set(DEFECTS)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Three of the authored messages and the example ORU (with their facts) as the converter suite's inputs, to
    keep runs short."""
    root = tmp_path_factory.mktemp("inputs")
    for p in [*MESSAGES, EXAMPLE]:
        target = root / p.parent.relative_to(ROOT)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target / p.name)
        shutil.copy(p.with_suffix(".facts.json"), target / p.with_suffix(".facts.json").name)
    yield root


def _run_all(base: str, inputs: Path) -> dict[str, RunReport]:
    return {name: run_suite(load_suite(name, inputs=[inputs], formats={"hl7v2"}), base)
            for name in ("gateway", "genomics-server", "converter")}


def _check(reports: dict[str, RunReport], expected: dict[str, set[str]]) -> None:
    for name, report in reports.items():
        failed = {r.test.id for r in report.results if r.status == FAIL}
        assert failed == expected.get(name, set()), f"{name}: " + "\n".join(
            f"{r.test.id}: {r.message}" for r in report.results if r.status == FAIL)
        others = {r.test.id: r.status for r in report.results if r.status != FAIL and r.test.required}
        assert set(others.values()) <= {PASS}, f"{name}: {others}"
        assert report.counts()["error"] == 0


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_defect_fails_exactly_the_tests_that_check_it(defect: str, inputs: Path) -> None:
    with served(ReferenceServer([defect]).app()) as url:
        reports = _run_all(url + "/fhir", inputs)
    _check(reports, EXPECTED[defect])
    assert not any(r.passed for r in reports.values() if EXPECTED[defect].get(r.suite.id))


def test_all_defects_at_once(inputs: Path) -> None:
    with served(ReferenceServer(DEFECTS).app()) as url:
        reports = _run_all(url + "/fhir", inputs)
    _check(reports, _union(*EXPECTED.values()))


def test_failures_say_what_is_wrong(inputs: Path) -> None:
    with served(ReferenceServer(["html-errors", "accepts-invalid"]).app()) as url:
        report = run_suite(load_suite("genomics-server"), url + "/fhir")
    by_id = {r.test.id: r for r in report.results}
    assert by_id["read-unknown"].message == 'the 404 answer carries no OperationOutcome: HTTP 404, text/html ' \
                                           '(an HTML page: "404 Error")'
    accepted = by_id["reject-profile-invalid"].message
    assert accepted.startswith("the server accepted an invalid Observation (201); it breaks: ")
    assert "geCategory" in accepted  # the validator's reason is quoted
    assert by_id["reject-profile-invalid"].exchanges[0].status == 201


def test_a_han_name_needs_its_pinyin_form(tmp_path: Path) -> None:
    """The China lab record's eHDSI CDA without the pinyin name fails the eHDSI test, and only that one (its header
    rules still hold: the Han name has family and given)."""
    examples = tmp_path / "examples"
    examples.mkdir()
    shutil.copy(ROOT / "examples" / "cn-lab-record.utf8.xml", examples)
    suite = load_suite("converter", inputs=[tmp_path], formats={"cda-cn"})
    with served(ReferenceServer(["no-pinyin"]).app()) as url:
        report = run_suite(suite, url + "/fhir")
    failed = {r.test.id: r.message for r in report.results if r.status == FAIL}
    assert failed == {"to-ehdsi-cda-cn-lab-record": "the patient's Han-character name has no pinyin form beside it "
                                                    "(name use IDE and ABC)"}
    eu = {r.test.id: r.status for r in report.results if r.group.id.startswith("to-") and r.test.required}
    assert len(eu) == 7 and set(eu.values()) == {PASS, FAIL}
    assert report.counts()["error"] == 0
