"""Questionnaire / QuestionnaireResponse rules (profiles/rules/questionnaire.py): enableWhen targets in the
Questionnaire, and a response checked against its Questionnaire (linkIds, types, options, required, repeats,
enableWhen). Small inline resources, plus the questionnaire cases of the HL7 test corpus against the Java
validator's recorded error counts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from profiles.definitions import CONFORMANCE_TYPES, Definitions
from profiles.packages import closure, conformance_resources
from profiles.validator import Validator
from tests.profiles import corpus

BASE = ("hl7.fhir.r4.core#4.0.1", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1")
Q_URL = "http://helixgate.test/Questionnaire/intake"

INTAKE: dict[str, Any] = {
    "resourceType": "Questionnaire", "id": "intake", "url": Q_URL, "status": "active",
    "item": [
        {"linkId": "smoker", "text": "Do you smoke?", "type": "boolean", "required": True},
        {"linkId": "packs", "text": "Packs a day", "type": "integer", "required": True,
         "enableWhen": [{"question": "smoker", "operator": "=", "answerBoolean": True}]},
        {"linkId": "colour", "text": "Colour", "type": "choice",
         "answerOption": [{"valueCoding": {"system": "http://helixgate.test/cs", "code": "red"}},
                          {"valueCoding": {"system": "http://helixgate.test/cs", "code": "blue"}}]},
        {"linkId": "pet", "text": "Pet", "type": "open-choice",
         "answerOption": [{"valueCoding": {"system": "http://helixgate.test/cs", "code": "dog", "display": "Dog"}}]},
        {"linkId": "visit", "text": "Visit", "type": "group", "repeats": True, "item": [
            {"linkId": "visit.ok", "text": "Went well", "type": "boolean"},
            {"linkId": "visit.why", "text": "Why not", "type": "string", "required": True,
             "enableWhen": [{"question": "visit.ok", "operator": "=", "answerBoolean": False}]},
        ]},
        {"linkId": "note", "text": "Note", "type": "string", "enableWhen": [
            {"question": "smoker", "operator": "exists", "answerBoolean": True}]},
    ],
}


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return list(conformance_resources(closure(BASE), CONFORMANCE_TYPES))


EXPR: dict[str, Any] = {  # 'b' is enabled by an SDC enableWhenExpression instead of enableWhen
    "resourceType": "Questionnaire", "id": "expr", "url": "http://helixgate.test/Questionnaire/expr",
    "status": "active", "item": [
        {"linkId": "a", "text": "A", "type": "boolean"},
        {"linkId": "b", "text": "B", "type": "string", "extension": [{
            "url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression",
            "valueExpression": {"language": "text/fhirpath",
                                "expression": "%resource.item.where(linkId='a').answer.value"}}]},
        {"linkId": "c", "text": "C", "type": "string", "extension": [{
            "url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression",
            "valueExpression": {"language": "text/fhirpath", "expression": "%patient.gender = 'male'"}}]},
    ]}
VSQ: dict[str, Any] = {  # answers from a ValueSet the Questionnaire contains
    "resourceType": "Questionnaire", "id": "vsq", "url": "http://helixgate.test/Questionnaire/vsq",
    "status": "active",
    "contained": [{"resourceType": "ValueSet", "id": "yn", "status": "active", "compose": {"include": [
        {"system": "http://helixgate.test/cs", "concept": [{"code": "y"}, {"code": "n"}]}]}}],
    "item": [{"linkId": "a", "text": "A", "type": "choice", "answerValueSet": "#yn"}]}


@pytest.fixture(scope="module")
def v(base: list[dict[str, Any]]) -> Validator:
    return Validator(Definitions([*base, INTAKE, EXPR, VSQ]), security_checks=False)


def qr(*items: dict[str, Any], status: str = "completed", questionnaire: str = Q_URL) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "questionnaire": questionnaire, "status": status,
            "item": list(items)}


def item(link: str, *answers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": link, **extra}
    if answers:
        out["answer"] = list(answers)
    return out


def issues(v: Validator, res: dict[str, Any], severities: tuple[str, ...] = ("error", "fatal")
           ) -> list[tuple[str, str, str]]:
    return [(i.code, i.expression or "", i.message) for i in v.validate(res) if i.severity in severities
            and not i.message.startswith("Constraint failed: dom-6")]  # no narrative in these small examples


SMOKER_NO = item("smoker", {"valueBoolean": False})
SMOKER_YES = item("smoker", {"valueBoolean": True})


# ---- QuestionnaireResponse ----

def test_valid_response_has_no_errors(v: Validator) -> None:
    res = qr(SMOKER_YES, item("packs", {"valueInteger": 2}),
             item("colour", {"valueCoding": {"system": "http://helixgate.test/cs", "code": "red"}}),
             item("pet", {"valueString": "Hamster"}),
             item("visit", item=[item("visit.ok", {"valueBoolean": True})]),
             item("visit", item=[item("visit.ok", {"valueBoolean": False}), item("visit.why", {"valueString": "x"})]),
             item("note", {"valueString": "n"}))
    assert issues(v, res, ("error", "fatal", "warning")) == []


def test_unknown_link_id(v: Validator) -> None:
    got = issues(v, qr(SMOKER_NO, item("nope", {"valueString": "x"})))
    assert got == [("not-found", "QuestionnaireResponse", "LinkId 'nope' not found in questionnaire")]


def test_answer_to_a_disabled_question(v: Validator) -> None:
    got = issues(v, qr(SMOKER_NO, item("packs", {"valueInteger": 2})))
    assert got == [("invalid", "QuestionnaireResponse.item[1]",
                    "Item has answer, even though it is not enabled (item id = 'packs')")]


def test_required_enabled_question_missing(v: Validator) -> None:
    got = issues(v, qr(SMOKER_YES))
    assert got == [("required", "QuestionnaireResponse", "No response answer found for required item 'packs'")]
    # a response still in progress only gets a warning
    assert issues(v, qr(SMOKER_YES, status="in-progress")) == []
    assert any("packs" in m for _, _, m in issues(v, qr(SMOKER_YES, status="in-progress"), ("warning",)))


def test_exists_operator(v: Validator) -> None:
    # 'note' is enabled once 'smoker' has any answer; with no answer at all it is not
    res = qr(item("note", {"valueString": "n"}), status="in-progress")
    assert issues(v, res) == [("invalid", "QuestionnaireResponse.item[0]",
                               "Item has answer, even though it is not enabled (item id = 'note')")]


def test_wrong_answer_type(v: Validator) -> None:
    got = issues(v, qr(SMOKER_YES, item("packs", {"valueString": "two"})))
    assert [(c, e) for c, e, _ in got] == [("structure", "QuestionnaireResponse.item[1].answer[0].valueString")]
    assert "Answer value must be of type integer" in got[0][2]


def test_choice_answers_checked_against_options(v: Validator) -> None:
    got = issues(v, qr(SMOKER_NO, item("colour", {"valueCoding": {"system": "http://helixgate.test/cs",
                                                                   "code": "green"}})))
    assert got == [("invariant", "QuestionnaireResponse.item[1].answer[0].valueCoding",
                    "The code http://helixgate.test/cs::green is not a valid option")]
    got = issues(v, qr(SMOKER_NO, item("colour", {"valueString": "red"})))
    assert got == [("invariant", "QuestionnaireResponse.item[1].answer[0].valueString",
                    "Option list has no option values of type string")]


def test_open_choice_takes_free_text(v: Validator) -> None:
    res = qr(SMOKER_NO, item("pet", {"valueString": "dog"}))
    assert issues(v, res) == []
    assert [m for _, _, m in issues(v, res, ("warning",))] == [
        "The string value 'dog' matches an entry in the list of valid Codings, so this is probably an error"]


def test_repeats(v: Validator) -> None:
    got = issues(v, qr(SMOKER_YES, item("packs", {"valueInteger": 1}, {"valueInteger": 2})))
    assert got == [("invalid", "QuestionnaireResponse.item[1].answer[1]",
                    "Only one response answer item with this linkId allowed")]
    got = issues(v, qr(SMOKER_YES, item("packs", {"valueInteger": 1}), item("packs", {"valueInteger": 2})))
    assert [(c, e) for c, e, _ in got] == [("invalid", "QuestionnaireResponse.item[2]")]


def test_order_and_text(v: Validator) -> None:
    got = issues(v, qr(item("colour"), SMOKER_NO))
    assert ("structure", "QuestionnaireResponse", "Structural Error: items are out of order") in got
    got = issues(v, qr(item("smoker", {"valueBoolean": False}, text="Smoker?")))
    assert got == [("invalid", "QuestionnaireResponse.item[0]",
                    "If text exists, it must match the questionnaire definition for linkId smoker")]


def test_repeating_groups_decide_enable_when_each(v: Validator) -> None:
    res = qr(SMOKER_NO,
             item("visit", item=[item("visit.ok", {"valueBoolean": True}), item("visit.why", {"valueString": "x"})]),
             item("visit", item=[item("visit.ok", {"valueBoolean": False})]))
    assert issues(v, res) == [
        ("invalid", "QuestionnaireResponse.item[1].item[1]",
         "Item has answer, even though it is not enabled (item id = 'visit.why')"),
        ("required", "QuestionnaireResponse.item[2]", "No response answer found for required item 'visit.why'")]


def test_enable_when_expression(v: Validator) -> None:
    url = EXPR["url"]
    res = qr(item("a", {"valueBoolean": False}), item("b", {"valueString": "x"}), questionnaire=url)
    assert [(c, e) for c, e, _ in issues(v, res)] == [("invalid", "QuestionnaireResponse.item[1]")]
    res = qr(item("a", {"valueBoolean": True}), item("b", {"valueString": "x"}), questionnaire=url)
    assert issues(v, res) == []
    # an expression needing a launch context (%patient) cannot be judged here: the answer is not blamed
    res = qr(item("a", {"valueBoolean": False}), item("c", {"valueString": "x"}), questionnaire=url)
    assert issues(v, res) == []


def test_contained_questionnaire(v: Validator) -> None:
    q = {k: val for k, val in copy.deepcopy(INTAKE).items() if k != "url"}
    res = qr(SMOKER_NO, item("packs", {"valueInteger": 2}), questionnaire="#intake")
    res["contained"] = [q]
    assert [(c, e) for c, e, _ in issues(v, res)] == [("invalid", "QuestionnaireResponse.item[1]")]


def test_questionnaire_in_the_same_bundle(v: Validator) -> None:
    q = copy.deepcopy(INTAKE)
    q["url"] = "http://helixgate.test/Questionnaire/bundled"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://helixgate.test/fhir/Questionnaire/bundled", "resource": {**q, "id": "bundled"}},
        {"fullUrl": "http://helixgate.test/fhir/QuestionnaireResponse/r1",
         "resource": {**qr(SMOKER_NO, item("packs", {"valueInteger": 2}), questionnaire=q["url"]), "id": "r1"}}]}
    got = issues(v, bundle)
    assert [(c, e) for c, e, _ in got] == [("invalid", "Bundle.entry[1].resource.item[1]")]


def test_answer_value_set_contained(v: Validator) -> None:
    res = qr(item("a", {"valueCoding": {"system": "http://helixgate.test/cs", "code": "y"}}), questionnaire=VSQ["url"])
    assert issues(v, res) == []
    res["item"][0]["answer"][0]["valueCoding"]["code"] = "maybe"
    assert [(c, e) for c, e, _ in issues(v, res)] == [
        ("code-invalid", "QuestionnaireResponse.item[0].answer[0].valueCoding")]


def test_unresolved_questionnaire_is_only_a_warning(v: Validator) -> None:
    res = qr(item("x", {"valueString": "y"}), questionnaire="http://helixgate.test/Questionnaire/unknown")
    assert issues(v, res) == []
    assert [c for c, _, _ in issues(v, res, ("warning",))] == ["required"]


# ---- Questionnaire ----

def q_with(*items: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Questionnaire", "status": "draft", "item": list(items)}


def test_enable_when_targets(v: Validator) -> None:
    a = {"linkId": "a", "type": "boolean"}
    inner = {"linkId": "g", "type": "group", "item": [{"linkId": "g.1", "type": "boolean"}],
             "enableWhen": [{"question": "g.1", "operator": "=", "answerBoolean": True}]}
    assert issues(v, q_with(inner)) == [("business-rule", "Questionnaire.item[0]", "Questions with an enableWhen "
                                         "cannot refer to an inner question for its enableWhen condition")]
    missing = {"linkId": "b", "type": "boolean", "enableWhen": [{"question": "zz", "operator": "=",
                                                                 "answerBoolean": True}]}
    assert issues(v, q_with(a, missing)) == [("business-rule", "Questionnaire.item[1]", "Unable to find an item "
                                              "with the linkId 'zz' which is referenced in the enableWhen for 'b'")]
    own = {"linkId": "b", "type": "boolean", "enableWhen": [{"question": "b", "operator": "exists",
                                                             "answerBoolean": True}]}
    assert [m for _, _, m in issues(v, q_with(own))] == ["Target for this question enableWhen can't reference itself"]
    later = {"linkId": "b", "type": "boolean", "enableWhen": [{"question": "a", "operator": "=",
                                                               "answerBoolean": True}]}
    assert issues(v, q_with(later, a)) == []
    assert [m for _, _, m in issues(v, q_with(later, a), ("warning",)) if "enableWhen" in m] == [
        "The target of this enableWhen rule (a) comes after the question itself"]
    assert issues(v, q_with(a, later), ("error", "warning")) == []


def test_enable_when_order_in_nested_items(v: Validator) -> None:
    # a question may depend on the question holding it, or on one listed earlier in another group
    parent = {"linkId": "p", "type": "boolean", "item": [
        {"linkId": "p.1", "type": "string", "enableWhen": [{"question": "p", "operator": "exists",
                                                            "answerBoolean": True}]}]}
    g1 = {"linkId": "g1", "type": "group", "item": [{"linkId": "g1.a", "type": "boolean"}]}
    g2 = {"linkId": "g2", "type": "group", "item": [
        {"linkId": "g2.a", "type": "boolean", "enableWhen": [{"question": "g1.a", "operator": "=",
                                                              "answerBoolean": True}]}]}
    assert issues(v, q_with(parent, g1, g2), ("error", "warning")) == []
    # ... but one in a later group comes after it
    assert [(e, m) for _, e, m in issues(v, q_with(g2, g1), ("warning",)) if "enableWhen" in m] == [
        ("Questionnaire.item[0].item[0]", "The target of this enableWhen rule (g1.a) comes after the question itself")]


def test_que_12_counts_two_conditions(v: Validator) -> None:
    a, b = {"linkId": "a", "type": "boolean"}, {"linkId": "b", "type": "boolean"}
    c = {"linkId": "c", "type": "boolean", "enableWhen": [
        {"question": "a", "operator": "=", "answerBoolean": True},
        {"question": "b", "operator": "=", "answerBoolean": True}]}
    assert issues(v, q_with(a, b, c)) == [("invariant", "Questionnaire.item[2]", "Constraint failed: que-12: 'If "
                                           "there are more than one enableWhen, enableBehavior must be specified'")]
    assert issues(v, q_with(a, b, {**c, "enableBehavior": "all"})) == []


# ---- the HL7 corpus ----

@pytest.mark.parametrize("case", corpus.cases("questionnaire"), ids=lambda c: c["name"])
def test_corpus_error_counts_match_java(case: dict[str, Any], base: list[dict[str, Any]]) -> None:
    corpus.assert_error_counts_match(case, base)
