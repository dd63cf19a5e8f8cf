"""ORU^R01 → FHIR on authored edge cases (inputs/*.hl7 and inline messages): what cannot be justified is not emitted
(invalid times, identifier types outside table 0203, flags outside table 0078, vital signs that cannot conform),
URIs are valid, documents become presentedForm, genetic variables are recognised by name or local code (site
entries too), hostile sizes are refused naming the limit, and every output validates with 0 errors."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.conversion import Conversion
from mappers.exceptions import EmitError, ParseError, UnsupportedMessage
from mappers.hl7v2 import Options, parse_message, to_fhir
from mappers.hl7v2.datatypes import hd_system, local_name, local_system
from mappers.hl7v2.parse import LimitExceeded, Limits
from mappers.hl7v2.variable_names import is_loinc, parse_site_entries
from mappers.toolkit.origins import source_of
from mappers.toolkit.registry import ConvertOptions, get
from tests.mappers.hl7v2.facts import component, has_profile, resources

INPUTS = Path(__file__).parent / "inputs"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
HEAD = "MSH|^~\\&|LIS|LAB|GW|HOSP|20250101120000+0000||ORU^R01^ORU_R01|{id}|P|2.5.1\rPID|1||P1^^^HOSP^MR||Doe^Jo\r"


def valid(conv: Conversion, validator: Any) -> Conversion:
    errors = [(i.expression, i.message) for i in validator.validate(conv.bundle) if i.severity in ("error", "fatal")]
    assert errors == []
    return conv


def convert(data: bytes, validator: Any, **opts: Any) -> Conversion:
    conv = to_fhir(data, Options(**opts))
    assert orjson.dumps(to_fhir(data, Options(**opts)).bundle) == orjson.dumps(conv.bundle)
    return valid(conv, validator)


def issue(conv: Conversion, details: str, expression: str | None = None) -> Any:
    found = [i for i in conv.issues if i.details == details and (expression is None or i.expression == expression)]
    assert found, (details, expression, [(i.details, i.expression) for i in conv.issues])
    return found[0]


def by_code(bundle: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [o for o in resources(bundle, "Observation")
            if any(c.get("code") == code for c in o["code"].get("coding", [])) or code in o["code"].get("text", "")]


# --- lab-quirks.hl7 ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quirks(validator: Any) -> Conversion:
    return convert((INPUTS / "lab-quirks.hl7").read_bytes(), validator)


def test_invalid_times_are_dropped_with_a_warning_naming_the_field(quirks: Conversion) -> None:
    pat = resources(quirks.bundle, "Patient")[0]
    assert "birthDate" not in pat
    assert issue(quirks, "hl7v2-bad-datetime", "PID[1]-7").message == \
        "PID-7 '19701301' is not a real date; birthDate not mapped"
    chol = by_code(quirks.bundle, "2093-3")[0]
    assert chol["effectiveDateTime"] == "2025-04-01T08:30:00+02:00"  # OBX-14 0000 dropped: the order's time
    assert quirks.origins[f"{chol['id']}:effectiveDateTime"] == "OBR[1]-7"
    assert issue(quirks, "hl7v2-bad-datetime", "OBX[1]-14").severity == "warning"
    due = by_code(quirks.bundle, "33747-0")[0]
    assert due["valueString"] == "20251301"  # a DT value that is no date stays the sender's text
    assert issue(quirks, "hl7v2-bad-datetime", "OBX[5]-5")


def test_identifier_types_outside_0203_are_text_and_systems_valid_uris(quirks: Conversion) -> None:
    mrn, nhs = resources(quirks.bundle, "Patient")[0]["identifier"]
    assert mrn == {"type": {"text": "MRN"}, "system": "urn:id:SIMULATOR%20MRN", "value": "P-77",
                   "assigner": {"display": "SIMULATOR MRN"}}
    assert nhs["type"] == {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NH"}]}
    assert issue(quirks, "hl7v2-identifier-type-unknown", "PID[1]-3.5").severity == "warning"


def test_interpretation_flags_go_through_conceptmap_0078(quirks: Conversion) -> None:
    assert by_code(quirks.bundle, "2093-3")[0]["interpretation"] == [{"text": "HIGH"}]
    assert issue(quirks, "hl7v2-interpretation-unmapped", "OBX[1]-8").severity == "warning"
    assert by_code(quirks.bundle, "2571-8")[0]["interpretation"] == [
        {"coding": [{"system": V3, "code": "H", "display": "High"}]},
        {"coding": [{"system": V3, "code": "A", "display": "Abnormal"}]}]


def test_vital_signs_conform_or_keep_their_code_as_text(quirks: Conversion) -> None:
    no_unit, bpm = by_code(quirks.bundle, "8867-4")
    assert no_unit["code"] == {"text": "Heart rate (LOINC 8867-4)"} and no_unit["valueQuantity"] == {"value": 72}
    assert "a value in /min (UCUM)" in issue(quirks, "hl7v2-vital-sign-not-conformant", "OBX[3]-3").message
    assert bpm["code"]["coding"][0]["code"] == "8867-4"
    assert bpm["valueQuantity"] == {"value": 64, "unit": "bpm", "system": "http://unitsofmeasure.org",
                                    "code": "/min"}
    assert "vital-signs" in [c["coding"][0]["code"] for c in bpm["category"]]


def test_misspelt_segment_and_z_segment_are_warnings(quirks: Conversion) -> None:
    assert issue(quirks, "hl7v2-unknown-segment", "OXB[1]").severity == "warning"
    assert issue(quirks, "hl7v2-segment-not-mapped", "ZLB[1]").severity == "warning"
    assert len(resources(quirks.bundle, "Observation")) == 5


def test_validation_errors_are_located_in_the_source_through_origins(quirks: Conversion) -> None:
    bundle = quirks.bundle
    index = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Patient")
    # a list element's own origin first, then the list's (which names the source of each of its items)
    assert source_of(bundle, quirks.origins, f"Bundle.entry[{index}].resource.identifier[0].system") == "PID[1]-3"
    assert source_of(bundle, {k: v for k, v in quirks.origins.items() if "identifier[" not in k},
                     f"Bundle.entry[{index}].resource.identifier[0].system") == "PID[1]-3, PID[1]-3(2)"
    assert quirks.origins[f"{bundle['entry'][index]['resource']['id']}:identifier[1]"] == "PID[1]-3(2)"
    obs = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Observation")
    assert source_of(bundle, quirks.origins, f"Bundle.entry[{obs}].resource.interpretation[0]") == "OBX[1]-8"
    assert source_of(bundle, quirks.origins, f"Bundle.entry[{obs}].resource") == "OBX[1]"


# --- documents.hl7 -----------------------------------------------------------------------------------------------


def test_documents_become_presented_form(validator: Any) -> None:
    conv = convert((INPUTS / "documents.hl7").read_bytes(), validator)
    report = resources(conv.bundle, "DiagnosticReport")[0]
    assert has_profile(report, "genomic-report")
    pdf, jpeg, dicom = report["presentedForm"]
    raw = base64.b64decode(pdf["data"])
    assert raw.startswith(b"%PDF-") and pdf["size"] == len(raw) == 125
    assert pdf["contentType"] == "application/pdf" and pdf["title"] == "Genetic analysis report"
    assert pdf["hash"] == base64.b64encode(hashlib.sha1(raw).digest()).decode()
    assert pdf["creation"] == "2025-04-03T08:59:00+00:00"
    assert jpeg == {"contentType": "image/jpeg", "url": "https://pacs.example.org/studies/1.2.3",
                    "title": "Diagnostic imaging study"}
    assert dicom == {"contentType": "application/dicom", "title": "Diagnostic imaging study: studies/4.5.6"}
    assert issue(conv, "hl7v2-bad-base64", "OBX[4]-5.5").severity == "warning"
    assert issue(conv, "hl7v2-pointer-not-a-url", "OBX[6]-5.1")
    observations = resources(conv.bundle, "Observation")
    assert len(observations) == 1 and has_profile(observations[0], "variant")  # no document as an Observation value
    assert conv.origins[f"{report['id']}:presentedForm[0]"] == "OBX[3]-5"


def test_a_pdf_that_is_not_one_is_kept_with_a_warning(validator: Any) -> None:
    fake = base64.b64encode(b"<html>not a pdf</html>").decode()
    msg = (HEAD.format(id="ED2") + "OBR|1||F1|11502-2^Lab report^LN\r"
           f"OBX|1|ED|11502-2^Lab report^LN||^AP^PDF^Base64^{fake}||||||F\r")
    conv = convert(msg.encode(), validator)
    (form,) = resources(conv.bundle, "DiagnosticReport")[0]["presentedForm"]
    assert form["contentType"] == "application/pdf" and base64.b64decode(form["data"]) == b"<html>not a pdf</html>"
    assert issue(conv, "hl7v2-document-content-mismatch", "OBX[1]-5")


def test_a_message_whose_only_result_cannot_be_kept_is_refused() -> None:
    msg = (HEAD.format(id="ED3") + "OBR|1||F1|11502-2^Lab report^LN\r"
           "OBX|1|ED|11502-2^Lab report^LN||^AP^PDF^Base64^@@@||||||F\r")
    with pytest.raises(EmitError, match="none of the message's results could be converted"):
        to_fhir(msg.encode())


# --- genetic variables by name, local code and site entries -----------------------------------------------------

NAMED = (HEAD.format(id="N1") + "OBR|1||F1|PANEL^Gene panel^L\r"
         "OBX|1|CWE|G^Gene name^L|2a|HGNC:3236^EGFR^HGNC||||||F\r"
         "OBX|2|ST|MUT^Mutation^L|2a|NM_005228.5:c.2573T>G||||||F\r"
         "OBX|3|NM|COV^Coverage^L|2a|128||||||F\r")


def test_names_are_recognised_and_generic_ones_only_in_a_genetic_order(validator: Any) -> None:
    conv = convert(NAMED.encode(), validator)
    (var,) = [o for o in resources(conv.bundle, "Observation") if has_profile(o, "variant")]
    assert component(var, "48018-6")[0]["valueCodeableConcept"]["coding"][0]["code"] == "HGNC:3236"
    assert component(var, "82121-5")[0]["valueQuantity"] == {"value": 128}  # "Coverage": generic, order genetic
    assert not component(var, "48004-6")  # "Mutation" is no name the table knows: an unsliced component
    unsliced = [c for c in var["component"] if c["code"].get("coding", [{}])[0].get("code") == "MUT"]
    assert unsliced and unsliced[0]["valueString"] == "NM_005228.5:c.2573T>G"
    taken = issue(conv, "hl7v2-variable-recognised", "OBX[1]-3.2")
    assert taken.severity == "information" and "text 'Gene name' taken for LOINC 48018-6" in taken.message
    # outside a genetic order, a generic name is not enough
    plain = to_fhir((HEAD.format(id="N2") + "OBR|1||F2|X^Panel^L\rOBX|1|NM|COV^Coverage^L||12||||||F\r").encode())
    assert not [o for o in resources(plain.bundle, "Observation") if has_profile(o, "variant")]


def test_site_entries_extend_the_table(validator: Any) -> None:
    site = parse_site_entries('{"Mutation": "48004-6"}')
    conv = convert(NAMED.encode(), validator, variable_names=site)
    (var,) = [o for o in resources(conv.bundle, "Observation") if has_profile(o, "variant")]
    hgvs = component(var, "48004-6")[0]
    assert hgvs["valueCodeableConcept"]["coding"][0]["code"] == "NM_005228.5:c.2573T>G"
    assert hgvs["code"]["coding"][1] == {"system": "urn:id:L", "code": "MUT", "display": "Mutation"}
    # the format option takes the same JSON (the edge may read it from a site file)
    fmt = get("hl7v2")
    via_format = fmt.to_fhir(NAMED.encode(), ConvertOptions(params=(("variableNames", '{"Mutation": "48004-6"}'),)))
    assert orjson.dumps(via_format.bundle) == orjson.dumps(conv.bundle)
    with pytest.raises(ParseError, match="not a LOINC code"):
        fmt.to_fhir(NAMED.encode(), ConvertOptions(params=(("variableNames", '{"Mutation": "48004-7"}'),)))
    with pytest.raises(ParseError, match="not JSON"):
        fmt.to_fhir(NAMED.encode(), ConvertOptions(params=(("variableNames", "{"),)))


def test_alternate_loinc_coding_and_code_name_conflicts() -> None:
    msg = (HEAD.format(id="N3") + "OBR|1||F3|81247-9^panel^LN\r"
           "OBX|1|CWE|G1^Gen^L^48018-6^Gene studied^LN|2a|HGNC:1100^BRCA1^HGNC||||||F\r"
           "OBX|2|ST|48004-6^Amino acid change^LN|2a|NP_009225.1:p.Glu23fs||||||F\r")
    conv = to_fhir(msg.encode())
    (var,) = [o for o in resources(conv.bundle, "Observation") if has_profile(o, "variant")]
    assert component(var, "48018-6")
    assert issue(conv, "hl7v2-variable-recognised", "OBX[1]-3.4")
    # coded c.HGVS but named p.HGVS: neither slice is justified; the row stays a result of its own
    assert not component(var, "48004-6") and not component(var, "48005-3")
    assert issue(conv, "hl7v2-variable-code-name-conflict", "OBX[2]-3").severity == "warning"
    assert by_code(conv.bundle, "48004-6")[0]["valueString"] == "NP_009225.1:p.Glu23fs"


def test_a_second_row_for_a_single_slice_stays_a_separate_result(validator: Any) -> None:
    msg = (HEAD.format(id="N4") + "OBR|1||F4|81247-9^panel^LN\r"
           "OBX|1|CWE|48004-6^DNA change^LN|2a|NM_005228.5:c.2573T>G^^HGVS.c||||||F\r"
           "OBX|2|ST|HGVSC|2a|NM_005228.5:c.2573T>G||||||F\r")
    conv = convert(msg.encode(), validator)
    (var,) = [o for o in resources(conv.bundle, "Observation") if has_profile(o, "variant")]
    assert len(component(var, "48004-6")) == 1
    assert issue(conv, "hl7v2-variable-repeated", "OBX[2]-3")


def test_loinc_check_digits() -> None:
    assert is_loinc("48018-6") and is_loinc("53037-8") and not is_loinc("48018-5") and not is_loinc("LA6668-3")


# --- URIs -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Baseline West MC", "GHH LAB", "100%", "a/b:c", "Zoë's lab", "张医院"])
def test_local_systems_are_valid_uris_and_give_the_name_back(name: str) -> None:
    uri = local_system(name)
    assert " " not in uri and uri.isascii() and local_name(uri) == name


def test_assigning_authorities_pick_the_right_uri() -> None:
    assert hd_system("NS", "2.16.840.1.113883.19.5", "ISO") == "urn:oid:2.16.840.1.113883.19.5"
    assert hd_system("Baseline West MC", "33D1234567", "L") == "urn:id:Baseline%20West%20MC"
    assert hd_system("", "33D1234567", "CLIA") == "urn:id:33D1234567"
    assert hd_system("", "33D1234567", "ISO") == "urn:id:33D1234567"  # not an OID, whatever HD-3 says
    assert hd_system("", "https://example.org/ids", "URI") == "https://example.org/ids"
    assert hd_system("", "not a uri", "URI") == "urn:id:not%20a%20uri"


# --- results required, structure, limits (issue 12) ---------------------------------------------------------------


def test_orders_without_results_are_refused_unless_results_are_pending(validator: Any) -> None:
    cut = (HEAD.format(id="T1") + "OBR|1||F1|24331-1^Lipid panel^LN|||20250101|||||||||||||||||F\r").encode()
    with pytest.raises(UnsupportedMessage, match="may be truncated") as err:
        to_fhir(cut)
    assert err.value.issues[0].details == "hl7v2-no-result"
    with pytest.raises(UnsupportedMessage, match="without an OBR"):
        to_fhir((HEAD.format(id="T2") + "ORC|RE|O1\r").encode())
    # OBR-25 I: specimen received, no result yet. The message truly has none; its report says so.
    pending = (HEAD.format(id="T3") + "OBR|1||F1|24331-1^Lipid panel^LN|||||||||||||||||||||I\r").encode()
    conv = valid(to_fhir(pending), validator)
    report = resources(conv.bundle, "DiagnosticReport")[0]
    assert report["status"] == "registered" and "result" not in report


def test_limits_refuse_hostile_sizes_naming_the_limit() -> None:
    obx = "OBX|{n}|NM|2093-3^Chol^LN||1||||||F\r"
    many = (HEAD.format(id="L1") + "OBR|1||F1|X^x^L\r" + "".join(obx.format(n=i) for i in range(50))).encode()
    with pytest.raises(LimitExceeded, match="limit max_segments") as err:
        to_fhir(many, Options(limits=Limits(max_segments=40)))
    assert err.value.issues[0].details == "hl7v2-limit-segments"
    assert to_fhir(many).bundle  # within the default
    long_field = (HEAD.format(id="L2") + "OBR|1||F1|X^x^L\rOBX|1|ST|1^x^L||" + "a" * 200 + "||||||F\r").encode()
    with pytest.raises(LimitExceeded, match=r"OBX\[1\]-5 is 200 characters long.*max_field_length"):
        to_fhir(long_field, Options(limits=Limits(max_field_length=100)))
    reps = (HEAD.format(id="L3") + "OBR|1||F1|X^x^L\rOBX|1|ST|1^x^L||" + "a~" * 30 + "||||||F\r").encode()
    with pytest.raises(LimitExceeded, match="max_repetitions"):
        to_fhir(reps, Options(limits=Limits(max_repetitions=10)))
    fields = (HEAD.format(id="L4") + "OBR|1||F1|X^x^L\rOBX" + "|" * 600 + "\r").encode()
    with pytest.raises(LimitExceeded, match="max_fields"):
        to_fhir(fields)


def test_a_huge_message_is_refused_fast_and_without_building_it() -> None:
    """10 MB of OBX segments (the reproducer of issue 12: 1.7 M segments took > 9.7 GB) is refused by a scan."""
    big = (HEAD.format(id="L5") + "OBR|1||F1|X^x^L\r").encode() + b"OBX|1|NM|1^x^L||1\r" * 600_000
    start = time.perf_counter()
    with pytest.raises(LimitExceeded, match="more than 10000 segments"):
        to_fhir(big)
    assert time.perf_counter() - start < 2.0


def test_parse_limits_apply_to_text_input_too() -> None:
    text = HEAD.format(id="L6") + "NTE|1||x\r" * 20
    with pytest.raises(LimitExceeded):
        parse_message(text, Limits(max_segments=10))


def test_components_are_capped_and_their_report_summarised() -> None:
    obr = "OBR|1||F1|X^x^L\r"
    with pytest.raises(LimitExceeded, match="more than 100 components in one repetition") as err:
        to_fhir((HEAD.format(id="C1") + obr + "OBX|1|ST|1^x^L||v|" + "a^" * 200 + "|||||F\r").encode())
    assert err.value.issues[0].details == "hl7v2-limit-components"
    with pytest.raises(LimitExceeded, match="subcomponents"):
        to_fhir((HEAD.format(id="C2") + obr + "OBX|1|ST|1^x^L||v|" + "a&" * 200 + "|||||F\r").encode())
    # 60 components of OBX-3, 9 of them read: 20 listed one by one, then one line for the rest
    conv = to_fhir((HEAD.format(id="C3") + obr + "OBX|1|ST|1^x^L" + "^y" * 60 + "||v||||||F\r").encode())
    listed = [i for i in conv.issues if i.details == "hl7v2-component-not-mapped" and "OBX-3" in i.message]
    assert len(listed) == 21 and listed[-1].message == "34 more components of OBX-3 were not mapped"


def test_format_options_are_checked() -> None:
    fmt = get("hl7v2")
    data = (HEAD.format(id="O1") + "OBR|1||F1|X^x^L\rOBX|1|NM|2093-3^Chol^LN||1||||||F|||20250101120000\r").encode()
    with pytest.raises(ParseError, match="timezone '\\+5' is not"):
        fmt.to_fhir(data, ConvertOptions(timezone="+5"))
    conv = fmt.to_fhir(data, ConvertOptions(timezone="+05:00", recorded="2025-01-01T00:00:00Z"))
    assert resources(conv.bundle, "Observation")[0]["effectiveDateTime"] == "2025-01-01T12:00:00+05:00"
