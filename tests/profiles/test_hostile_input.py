"""Inputs that crashed the validator or the FHIR XML reader (issue 12, and the fuzz harnesses in bench/fuzz/), kept in
tests/profiles/regressions/: each is now read and validated as `$validate` does it, with an OperationOutcome that
orjson writes, or refused as unreadable (ParseError, the route's 400)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.validate import read_resource
from mappers.exceptions import ParseError, operation_outcome
from profiles.validator import MAX_DEPTH, Validator

REGRESSIONS = Path(__file__).parent / "regressions"
# what each input must produce: an issue message fragment (validated) or a ParseError fragment (refused)
EXPECTED = {
    "coding-object-as-slice-key.json": "a uri must be a JSON string",
    "language-object-as-memo-key.json": "a code must be a JSON string",
    "meta-string-in-bundle-entries.json": "Meta must be a JSON object, found str",
    "extension-nested-300-deep.json": f"nested more than {MAX_DEPTH} deep",
    "encoding-unknown.xml": "refused: the declared encoding cannot be read",
    "encoding-gb18030.xml": "refused: the declared encoding cannot be read",
    "extension-nested-600-deep.xml": "refused: nested too deeply",
    "integer-5000-digits.xml": "a integer must be a JSON integer, found str",  # Python reads 4300 digits at most
    "decimal-5000-digits.xml": "a decimal must be a JSON number, found str",
    # 17 KB that took 2.2 s of CPU (dom-3 on fhirpathpy and nested generators, quadratic in the depth): now 40 ms
    "contained-nested-99-deep.json": "The contained resource 'p' is not referenced",
    # fuzzed: IPS's Bundle.entry slices discriminate on resolve()'s type, which lower-cased `resourceType: true`
    "resource-type-true-in-sliced-entry.json": "Unknown resource type True",
}


def test_every_regression_input_has_an_expectation() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_regression_input_is_reported_not_raised(name: str, validator: Validator) -> None:
    data = (REGRESSIONS / name).read_bytes()
    media = "application/fhir+xml" if name.endswith(".xml") else "application/fhir+json"
    expected = EXPECTED[name]
    if expected.startswith("refused: "):
        with pytest.raises(ParseError) as refused:
            read_resource(data, media)
        assert expected.removeprefix("refused: ") in refused.value.issues[0].message
        return
    issues = validator.validate(read_resource(data, media))
    orjson.dumps(operation_outcome(issues))  # the route writes it
    assert any(expected in i.message for i in issues), [i.message for i in issues]


def test_nesting_within_the_limit_is_validated(validator: Validator) -> None:
    """Questionnaire items a few dozen levels deep are real content: validated, no depth issue."""
    item: dict = {"linkId": "leaf", "type": "string"}
    for i in range(40):
        item = {"linkId": f"g{i}", "type": "group", "item": [item]}
    issues = validator.validate({"resourceType": "Questionnaire", "status": "active", "item": [item]})
    assert not any(i.code == "too-costly" for i in issues), [i.message for i in issues]


def test_fhirpath_strings_stop_at_1_mb() -> None:
    """An instance's own expressions (a Questionnaire's enableWhen expression) can chain replace('', ...), which
    triples a string per call: past FHIR's 1 MB string limit the expression is reported as not evaluable."""
    from profiles import fhirpath

    doc = {"resourceType": "Patient", "id": "ab"}
    assert fhirpath.select("Patient.id" + ".replace('', 'xx')" * 20 + ".length()", doc) is None
    assert fhirpath.select("Patient.id.replace('', '-')", doc) == ["-a-b-"]
    assert fhirpath.select("Patient.id" + ".replaceMatches('', 'xx')" * 20 + ".length()", doc) is None


def test_discriminator_paths_take_what_the_instance_holds() -> None:
    """A type or value discriminator's path walks input: a non-string resourceType or reference and a non-list
    or non-object extension are no value of a type, not an exception."""
    from profiles.matching import typed_values_at

    found = {"r": {"resourceType": "Patient"}}
    assert typed_values_at({"x": {"reference": "r"}}, "x.resolve()", found.get) == [(found["r"], "Patient")]
    assert typed_values_at({"x": {"reference": "r"}}, "x.resolve()", {"r": {"resourceType": True}}.get) == [
        ({"resourceType": True}, None)]
    assert typed_values_at({"x": {"reference": ["r"]}}, "x.resolve()", found.get) == []
    assert typed_values_at({"resource": {"resourceType": 7}}, "resource", found.get) == [({"resourceType": 7}, None)]
    for bad in ("text", {"url": "u"}, ["text", 3, None]):
        assert typed_values_at({"extension": bad}, "extension('u')", found.get) == []
