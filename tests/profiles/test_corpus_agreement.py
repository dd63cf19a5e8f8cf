"""Agreement with the HL7 Java validator's recorded verdicts on the R4 cases of FHIR/fhir-test-cases (the corpus
fhir-test-cases, located by tests/corpora.py), as measured by bench/validator_accuracy.py. The threshold only
ratchets up: raise it when the validator improves (current figures and every disagreement class: bench/README.md)."""

from __future__ import annotations

from tests.profiles import corpus

THRESHOLD = 0.97  # verdict agreement over all base and profile steps, JSON and XML
# Error-count agreement (same number of errors as Java): 412/431 = 95.6 % when issue 14 asked that it not fall.
COUNT_THRESHOLD = 0.955


def test_verdict_agreement_with_the_java_validator() -> None:
    harness = corpus.harness()  # skips, or fails under CI, without the corpus
    rows = harness.evaluate()
    assert len(rows) >= 400
    crashes = [r for r in rows if r["got"] < 0]
    assert crashes == []
    share = sum(map(harness.agrees, rows)) / len(rows)
    assert share >= THRESHOLD, f"verdict agreement fell to {share:.1%}"
    counts = sum(r["got"] == r["expected"] for r in rows) / len(rows)
    assert counts >= COUNT_THRESHOLD, f"error-count agreement fell to {counts:.1%}"
