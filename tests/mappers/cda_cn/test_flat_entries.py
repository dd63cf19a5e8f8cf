"""Results as flat section entries (no organizer) give the Observations an organizer would give; a lab or exam report
with no readable result is refused naming why, unless it states it has none."""

from __future__ import annotations

import pytest

from mappers.cda_cn import from_fhir, to_fhir
from mappers.cda_cn import systems as S
from mappers.exceptions import UnsupportedMessage
from tests.mappers.cda_cn.helpers import SAMPLES, details, observation, one, resources

EDGE = SAMPLES / "edge"
FLAT = (SAMPLES / "lab-flat-entries.utf8.xml").read_bytes()


def test_flat_entries_give_one_observation_per_item() -> None:
    c = to_fhir(FLAT)
    b = c.bundle
    dr = one(b, "DiagnosticReport")
    assert len(dr["result"]) == 3 and len(resources(b, "Observation")) == 3
    glu = observation(b, "GLU")
    assert glu["code"]["text"] == "空腹血糖"
    assert glu["valueQuantity"] == {"value": 6.8, "unit": "mmol/L", "system": S.UCUM, "code": "mmol/L"}
    assert glu["interpretation"][0]["coding"][0]["code"] == "H"
    assert glu["interpretation"][1]["coding"][0] == {"system": S.RESULT_CODE_SYSTEM, "code": "2", "display": "异常"}
    assert glu["referenceRange"] == [{"low": {"value": 3.9, "unit": "mmol/L", "system": S.UCUM, "code": "mmol/L"},
                                      "high": {"value": 6.1, "unit": "mmol/L", "system": S.UCUM, "code": "mmol/L"}}]
    assert glu["effectiveDateTime"] == "2024-06-11T14:30:00+08:00"
    alt = observation(b, "1742-6")  # the name arrived as a sibling DE04.30.020.00 entry
    assert alt["code"]["coding"][0] == {"system": S.LOINC, "code": "1742-6", "display": "丙氨酸氨基转移酶"}
    assert alt["valueQuantity"]["value"] == 58 and alt["valueQuantity"]["unit"] == "U/L"
    hbsag = observation(b, "HBsAg")
    assert hbsag["valueCodeableConcept"]["coding"][0] == {"system": S.RESULT_CODE_SYSTEM, "code": "1",
                                                           "display": "阴性"}
    specimen = one(b, "Specimen")  # nested under the first item code, shared by the items that name none
    assert specimen["type"]["text"] == "血清" and specimen["accessionIdentifier"]["value"] == "BB20240611201"
    assert specimen["collection"]["collectedDateTime"] == "2024-06-11T08:05:00+08:00"
    assert {o["specimen"]["reference"] for o in resources(b, "Observation")} == {f"urn:uuid:{specimen['id']}"}
    assert dr["conclusion"].startswith("空腹血糖及谷丙转氨酶升高")
    assert not [i for i in c.issues if i.severity == "warning"]
    assert "cda-element-not-mapped" not in details(c.issues) and "cda-entry-not-mapped" not in details(c.issues)


def test_flat_entries_equal_their_organizer_twin() -> None:
    """The CDA written back uses organizers; read again, it gives the very same Observations and Specimen."""
    flat = to_fhir(FLAT).bundle
    organized_cda = from_fhir(flat).data
    assert b"<organizer" in organized_cda and b"<organizer" not in FLAT
    organized = to_fhir(organized_cda).bundle
    for rtype in ("Observation", "Specimen", "DiagnosticReport"):
        assert resources(organized, rtype) == resources(flat, rtype)


def test_a_repeated_data_element_starts_the_next_item() -> None:
    """Three value entries in a row, no item codes: three items, each reported as having no code."""
    value = (b'<entry><observation classCode="OBS" moodCode="EVN"><code code="DE04.30.015.00" '
             b'codeSystem="2.16.156.10011.2.2.1"/><value xsi:type="REAL" value="%d"/></observation></entry>')
    data = FLAT.replace(b"<!-- item 1:", b"".join(value % n for n in (1, 2, 3)) + b"<!-- item 1:", 1)
    c = to_fhir(data)
    assert len(resources(c.bundle, "Observation")) == 6
    assert details(c.issues).count("cda-item-without-code") == 3


def test_a_coded_result_observation_is_a_result() -> None:
    """An entry coded with the test itself (LOINC) and carrying a PQ value, the way generic CDA writes results."""
    coded = (b'<entry><observation classCode="OBS" moodCode="EVN"><code code="2345-7" '
             b'codeSystem="2.16.840.1.113883.6.1" displayName="Glucose"/><statusCode code="completed"/>'
             b'<effectiveTime value="20240611143000"/>'
             b'<value xsi:type="PQ" value="5.2" unit="mmol/L"/><interpretationCode code="N" '
             b'codeSystem="2.16.840.1.113883.5.83"/></observation></entry>')
    data = FLAT.replace(b"<!-- item 1:", coded + b"<!-- item 1:", 1)
    b = to_fhir(data).bundle
    glucose = observation(b, "2345-7")
    assert glucose["code"]["coding"][0]["system"] == S.LOINC and glucose["status"] == "final"
    assert glucose["valueQuantity"] == {"value": 5.2, "unit": "mmol/L", "system": S.UCUM, "code": "mmol/L"}
    assert len(one(b, "DiagnosticReport")["result"]) == 4


def test_a_value_given_as_a_null_flavor_is_a_data_absent_reason() -> None:
    b = to_fhir((EDGE / "lab-no-time.utf8.xml").read_bytes()).bundle
    ft4 = observation(b, "FT4")
    assert "valueQuantity" not in ft4
    assert ft4["dataAbsentReason"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "temp-unknown",
        "display": "Temporarily Unknown"}  # nullFlavor NAV, by the v3-nullflavor-to-data-absent-reason ConceptMap


def test_an_organizer_status_maps_through_the_concept_map() -> None:
    data = (SAMPLES / "lab-cbc.utf8.xml").read_bytes().replace(b'<statusCode code="completed"/>',
                                                               b'<statusCode code="aborted"/>', 1)
    c = to_fhir(data)
    statuses = [o["status"] for o in resources(c.bundle, "Observation")]
    assert statuses == ["cancelled", "final", "final"]
    odd = to_fhir(data.replace(b'<statusCode code="aborted"/>', b'<statusCode code="held"/>'))
    assert resources(odd.bundle, "Observation")[0]["status"] == "unknown"
    assert "cn-status-unmapped" in details(odd.issues)


def test_a_blank_template_is_refused() -> None:
    with pytest.raises(UnsupportedMessage) as e:
        to_fhir((EDGE / "lab-blank-template.utf8.xml").read_bytes())
    issue = e.value.issues[0]
    assert issue.details == "cn-no-results"
    assert "1 result item in its body carries no value" in issue.message
    assert issue.expression == "/ClinicalDocument/component/structuredBody/component[1]/section/entry[1]/observation"


def test_entries_in_no_result_form_are_refused_naming_the_first() -> None:
    """Results written as something this mapper does not read (here procedures) are not silently an empty report."""
    data = (EDGE / "lab-unmapped-elements.utf8.xml").read_bytes()
    start, end = data.index(b"<entry>\n            <organizer"), data.index(b"<entry>\n            <procedure")
    data = data[:start] + data[end:]
    data = data.replace(b'<value xsi:type="ST">\xe7\x94\xb5\xe8\xa7\xa3\xe8\xb4\xa8\xe6\xad\xa3\xe5\xb8\xb8\xe3\x80\x82'
                        b'</value>', b'<value xsi:type="ST"/>')  # 电解质正常。: no report result text either
    with pytest.raises(UnsupportedMessage) as e:
        to_fhir(data)
    issue = e.value.issues[0]
    assert issue.details == "cn-no-results" and "2 body entries hold content in no form read as a result" in \
        issue.message
    assert issue.expression == "/ClinicalDocument/component/structuredBody/component[1]/section/entry/procedure"


def test_no_body_at_all_is_refused() -> None:
    data = (SAMPLES / "lab-cbc.utf8.xml").read_bytes()
    data = data[:data.index(b"<component>\n    <structuredBody>")] + b"</ClinicalDocument>"
    with pytest.raises(UnsupportedMessage, match="holds no results: no result item") as e:
        to_fhir(data)
    assert e.value.issues[0].details == "cn-no-results"


def test_a_report_that_states_it_has_no_results_converts() -> None:
    """'Truly none' in WS/T 500: the results section carries a nullFlavor (here NA: the test was not performed)."""
    c = to_fhir((EDGE / "lab-results-stated-absent.utf8.xml").read_bytes())
    dr = one(c.bundle, "DiagnosticReport")
    assert "result" not in dr and not resources(c.bundle, "Observation")
    assert dr["extension"][0]["valueAnnotation"]["text"].startswith("标本严重溶血")
    warning = next(i for i in c.issues if i.details == "cn-no-results")
    assert warning.severity == "warning" and "nullFlavor NA" in warning.message


def test_an_exam_report_with_findings_only_has_results() -> None:
    """An exam report's findings text (DE04.50.131.00) is its result: an Observation, not a refusal."""
    data = (SAMPLES / "exam-ct.utf8.xml").read_bytes()
    start = data.index(b"<entry>\n            <organizer")
    end = data.index(b"</entry>", start) + len(b"</entry>")
    b = to_fhir(data[:start] + data[end:]).bundle
    assert [o["code"]["coding"][0]["code"] for o in resources(b, "Observation")] == ["DE04.50.131.00",
                                                                                   "DE04.01.119.00"]
