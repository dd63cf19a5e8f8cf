"""Measure and MeasureReport rules (profiles/rules/measure.py): the fhir-test-cases inputs with the Java
validator's verdicts, and inline resources for the scoring rules."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.packages import closure, conformance_resources
from profiles.validator import Validator
from profiles.xml import xml_to_json
from tests.profiles import corpus

BASE = ("hl7.fhir.r4.core#4.0.1", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1")
POP = "http://terminology.hl7.org/CodeSystem/measure-population"
SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"


def read(name: str) -> dict[str, Any]:
    data = corpus.case_file(name).read_bytes()
    return xml_to_json(data, None) if name.endswith(".xml") else orjson.loads(data)


def population(code: str, count: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": {"coding": [{"system": POP, "code": code}]}}
    if count is not None:
        out["count"] = count
    return out


def measure(scoring: str, url: str = "http://example.org/Measure/m") -> dict[str, Any]:
    return {"resourceType": "Measure", "id": "m", "url": url, "status": "active",
            "scoring": {"coding": [{"system": SCORING, "code": scoring}]},
            "group": [{"population": [
                {**population("numerator"), "criteria": {"language": "text/plain", "expression": "n"}},
                {**population("denominator"), "criteria": {"language": "text/plain", "expression": "d"}}]}]}


MEASURES = {s: measure(s, f"http://example.org/Measure/{s}") for s in ("proportion", "ratio", "cohort")}


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return list(conformance_resources(closure(BASE), CONFORMANCE_TYPES))


@pytest.fixture(scope="module")
def v(base: list[dict[str, Any]]) -> Validator:
    extra = [read("mr-m-simple.xml"), read("mr-covid-m2-cql.json"), read("mr-covid-m5.json"), read("measure-ihe.json"),
             read("measure-ihe-cs.json"), *MEASURES.values()]
    return Validator(Definitions([*base, *extra]), security_checks=False)


def errors(v: Validator, res: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.expression or "", i.message) for i in v.validate(res) if i.severity in ("error", "fatal")]


def report(scoring: str, group: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"resourceType": "MeasureReport", "status": "complete", "type": "summary",
            "measure": f"http://example.org/Measure/{scoring}",
            "period": {"start": "2024-01-01", "end": "2024-12-31"},
            "group": [{"population": [population("numerator", 5), population("denominator", 10)], **group}], **more}


# --- Measure -------------------------------------------------------------------------------------------------------

def test_a_relative_library_canonical_and_cql_without_a_library(v: Validator) -> None:
    res = read("mr-m-simple-nossystem.xml")
    assert errors(v, res) == [
        ("Measure.library[0]", "Canonical URLs must be absolute URLs if they are not fragment references "
                               "(Library/library-cms146-example)"),
        ("Measure.group[0].stratifier[0].criteria", "No CQL Libraries found on this Measure")]
    info = [i for i in v.validate(res) if i.severity == "information" and i.code == "not-found"]
    assert [i.message for i in info] == ["The Library Library/library-cms146-example could not be resolved, so "
                                         "expression validation may not be correct"]


def test_a_stratifier_names_a_definition_missing_from_the_library_elm(v: Validator) -> None:
    assert errors(v, read("mr-m-cql-library.xml")) == [
        ("Measure.group[0].stratifier[0].criteria", "The function AgesUpToNine does not exist in the library "
                                                    "http://open.epic.com/Library/COVID19Screening")]


def test_a_stratifier_naming_a_definition_of_the_library_is_clean(v: Validator) -> None:
    res = read("mr-m-cql-library.xml")
    res["group"][0]["stratifier"][0]["criteria"]["expression"] = "COVID19Screening.Initial Population"
    assert errors(v, res) == []
    res["group"][0]["stratifier"][0]["criteria"]["expression"] = "Other.Initial Population"
    assert errors(v, res) == [("Measure.group[0].stratifier[0].criteria",
                               "No matching Library found for the namespace Other")]


# --- MeasureReport against its Measure -----------------------------------------------------------------------------

def test_a_report_that_matches_its_measure(v: Validator) -> None:
    res = read("mr-single-good.xml")
    assert errors(v, res) == []
    info = [(i.expression, i.message) for i in v.validate(res) if i.severity == "information"]
    assert ("MeasureReport.measure", "The scoring system in this measure is unknown, so the measureScore values "
                                     "cannot be checked") in info


def test_groups_without_codes_when_more_than_one(v: Validator) -> None:
    assert sorted(errors(v, read("mr-single-two-groups.xml"))) == sorted([
        ("MeasureReport.group[0]", "Group should have a code that matches the group definition in the measure"),
        ("MeasureReport.group[1]", "Group should have a code that matches the group definition in the measure"),
        ("MeasureReport", "The MeasureReport does not include a group for the group with code ''"),
        ("MeasureReport.group[1]", "Duplicate id value 'CMS146-group-1'")])  # both groups have that element id


def test_a_population_unknown_to_the_measure(v: Validator) -> None:
    assert errors(v, read("mr-single-bad-2.xml")) == [
        ("MeasureReport.group[0].population[1]", "The code for this group population has no match in the measure "
                                                 "definition")]


def test_subjects_only_in_subject_list_reports(v: Validator) -> None:
    res = read("mr-single-not-subj-list.xml")
    assert errors(v, res) == [("MeasureReport.group[0].population[0]", "Reports where type is not 'subject-list' "
                                                                       "don't have subjects listed")]
    warnings = [(i.expression, i.message) for i in v.validate(res) if i.severity == "warning"]
    assert ("MeasureReport.group[0].population[0]", "Count should be present for reports where type is not "
                                                    "'subject-list'") in warnings


def test_a_subject_list_count_is_the_number_of_subjects(v: Validator) -> None:
    got = errors(v, read("mr-single-subj-list.xml"))
    assert ("MeasureReport.group[0].population[0]", "Mismatch between count 500 and number of subjects 1") in got
    res = read("mr-single-subj-list.xml")
    res["group"][0]["population"][0]["count"] = 1
    assert not [e for e in errors(v, res) if "Mismatch" in e[1]]


def test_no_measure_score_for_a_cohort_measure(v: Validator) -> None:
    assert errors(v, read("mr-covid-mr1.json")) == [
        ("MeasureReport.group[0].measureScore", "No measureScore when the scoring of the message is 'cohort'")]
    res = read("mr-covid-mr1.json")
    del res["group"][0]["measureScore"]
    assert errors(v, res) == []


def test_stratifiers_matched_by_code(v: Validator) -> None:
    assert errors(v, read("measure-report-ihe.json")) == [
        ("MeasureReport.group[0].stratifier[0]", "Group should have a code that matches the group stratifier "
                                                 "definition in the measure"),
        ("MeasureReport.group[0].stratifier[1]", "Group should have a code that matches the group stratifier "
                                                 "definition in the measure"),
        ("MeasureReport.group[0]", "The MeasureReport does not include a stratifier for the stratifier with code '' "
                                   "(id = 'group-stratifier1-id')"),
        ("MeasureReport.group[0]", "The MeasureReport does not include a stratifier for the stratifier with code '' "
                                   "(id = 'group-stratifier2-id')")]


# --- MeasureReport scoring (inline) --------------------------------------------------------------------------------

def test_a_proportion_score_is_a_unitless_number_from_0_to_1(v: Validator) -> None:
    assert errors(v, report("proportion", {"measureScore": {"value": 0.5}})) == []
    assert errors(v, report("proportion", {"measureScore": {"value": 1.5}})) == [
        ("MeasureReport.group[0].measureScore.value", "The value is invalid - it must be between 0 and 1")]
    assert errors(v, report("proportion", {"measureScore": {"value": 0.5, "unit": "%"}})) == [
        ("MeasureReport.group[0].measureScore.unit", "A measureScore for this Measure Scoring (proportion) should "
                                                     "not have units")]
    assert errors(v, report("proportion", {})) == [
        ("MeasureReport.group[0]", "A measureScore is required when the Measure.scoring=proportion")]


def test_a_ratio_score_needs_a_value_and_should_have_a_unit(v: Validator) -> None:
    res = report("ratio", {"measureScore": {"value": 2.5}})
    assert errors(v, res) == []
    assert [i.message for i in v.validate(res) if i.severity == "warning"
            and i.expression == "MeasureReport.group[0].measureScore"] == [
        "A unit should be present when the scoring type is ratio"]


def test_missing_and_duplicated_populations(v: Validator) -> None:
    res = report("cohort", {})
    res["group"][0]["population"] = [population("numerator", 5), population("numerator", 5)]
    assert errors(v, res) == [
        ("MeasureReport.group[0].population[1]", "The code for this group population is duplicated with another "
                                                 "group"),
        ("MeasureReport.group[0]", "The MeasureReport does not include a population for the population with code "
                                   "'denominator'")]


def test_groups_matched_by_code_and_data_collection_reports(v: Validator) -> None:
    m = copy.deepcopy(MEASURES["cohort"])
    m["group"] = [{"code": {"coding": [{"system": "http://example.org/g", "code": c}]},
                   "population": m["group"][0]["population"]} for c in ("a", "b")]
    res = report("cohort", {"code": {"coding": [{"system": "http://example.org/g", "code": "a"}]}})
    res["measure"] = "#m"
    res["contained"] = [m]
    assert errors(v, res) == [("MeasureReport", "The MeasureReport does not include a group for the group with "
                                                "code 'b'")]
    res["type"] = "data-collection"  # may report on some groups only (mrp-1 has its say on groups there)
    assert not [e for e in errors(v, res) if "does not include" in e[1]]
    res["type"] = "summary"
    res["group"][0]["code"]["coding"][0]["code"] = "c"
    assert errors(v, res) == [
        ("MeasureReport.group[0]", "The code for this group has no match in the measure definition"),
        ("MeasureReport", "The MeasureReport does not include a group for the group with code 'a'"),
        ("MeasureReport", "The MeasureReport does not include a group for the group with code 'b'")]


def test_a_measure_that_cannot_be_found_is_only_a_warning(v: Validator) -> None:
    res = report("cohort", {})
    res["measure"] = "http://example.org/Measure/unknown"
    assert errors(v, res) == []
    assert [i.message for i in v.validate(res) if i.severity == "warning" and "Measure" in i.message] == [
        "The Measure 'http://example.org/Measure/unknown' could not be resolved, so no validation can be performed "
        "against the Measure"]


# --- the HL7 corpus ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", corpus.cases("measure"), ids=lambda c: c["name"])
def test_corpus_error_counts_match_java(case: dict[str, Any], base: list[dict[str, Any]]) -> None:
    corpus.assert_error_counts_match(case, base)
