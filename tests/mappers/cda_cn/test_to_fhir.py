"""WS/T 500 lab and exam documents → FHIR: the facts each authored sample states, read back from the Bundle."""

from __future__ import annotations

import pytest

from mappers.cda_cn import Options, to_fhir
from mappers.cda_cn import systems as S
from mappers.exceptions import ParseError, UnsupportedMessage
from tests.mappers.cda_cn.helpers import SAMPLES, by_url, details, ext, observation, one, resources


def convert(name: str, **options: object):  # type: ignore[no-untyped-def]
    return to_fhir((SAMPLES / name).read_bytes(), Options(**options))  # type: ignore[arg-type]


def test_lab_record_patient() -> None:
    c = convert("lab-cbc.utf8.xml")
    p = one(c.bundle, "Patient")
    resident = next(i for i in p["identifier"] if i["system"] == S.RESIDENT_ID_SYSTEM)
    assert resident["value"] == "110105198503121234"
    assert resident["system"] == "urn:oid:2.16.156.10011.1.3"
    assert resident["type"]["coding"][0]["code"] == "NI"
    assert p["name"] == [{"use": "official", "text": "欧阳明", "family": "欧阳", "given": ["明"]}]
    assert p["gender"] == "male"
    assert ext(p, S.EXT_GB_SEX)["valueCoding"]["code"] == "1"
    # The lab template has no birthTime: the date comes from the ID number and is flagged as derived.
    assert p["birthDate"] == "1985-03-12"
    assert p["_birthDate"]["extension"][0]["url"] == S.EXT_DERIVED
    assert "resident-id-derived-birth-date" in details(c.issues)
    assert ext(p, S.EXT_AGE)["valueAge"] == {"value": 39, "unit": "岁", "system": S.UCUM, "code": "a"}
    nationality = ext(p, S.NATIONALITY_EXT)["extension"][0]["valueCodeableConcept"]["coding"]
    assert [(c["system"], c["code"]) for c in nationality] == [(S.COUNTRY_SYSTEM, "CHN"), (S.ISO3166, "CN")]
    ethnic = ext(p, S.EXT_ETHNIC_GROUP)["valueCodeableConcept"]["coding"]
    assert [(c["code"]) for c in ethnic] == ["01", "HA"]
    assert p["telecom"] == [{"system": "phone", "value": "13800000001"}]


def test_lab_record_encounter_organizations_practitioners() -> None:
    b = convert("lab-cbc.utf8.xml").bundle
    urls = by_url(b)
    enc = one(b, "Encounter")
    assert enc["identifier"][0]["system"] == "urn:oid:2.16.156.10011.1.11"
    assert enc["identifier"][0]["value"] == "MZ20240315007"
    assert enc["class"]["code"] == "AMB"
    assert enc["type"][0]["coding"][0] == {"system": S.PATIENT_TYPE_SYSTEM, "code": "1", "display": "门诊"}
    assert enc["period"] == {"start": "2024-03-15T08:30:00+08:00"}
    custodian = urls[enc["serviceProvider"]["reference"]]
    assert custodian["name"] == "北京市示例医院"
    assert custodian["identifier"][0] == {"system": "urn:oid:2.16.156.10011.1.5", "value": "12110000400000001X",
                                          "type": custodian["identifier"][0]["type"]}
    names = {p["name"][0]["text"] for p in resources(b, "Practitioner")}
    assert names == {"李建国", "王芳", "赵磊"}
    comp = one(b, "Composition")
    assert [a["mode"] for a in comp["attester"]] == ["legal", "professional"]
    assert urls[comp["attester"][0]["party"]["reference"]]["name"][0]["text"] == "王芳"
    assert comp["identifier"] == {"system": "urn:oid:2.16.156.10011.1.1", "value": "DOC-LAB-20240315-0001"}
    assert [c["code"] for c in comp["type"]["coding"]] == ["C0007", "11502-2"]
    assert comp["date"] == "2024-03-15T10:30:00+08:00"
    request = one(b, "ServiceRequest")
    assert request["identifier"][0]["value"] == "SQ20240315033"
    assert urls[request["requester"]["reference"]]["name"] == "普通外科门诊"


def test_lab_record_report_and_results() -> None:
    c = convert("lab-cbc.utf8.xml")
    b, urls = c.bundle, by_url(c.bundle)
    dr = one(b, "DiagnosticReport")
    assert dr["identifier"][0]["system"] == "urn:oid:2.16.156.10011.1.33"
    assert dr["category"][0]["coding"][0]["code"] == "LAB" and dr["category"][0]["text"] == "临床血液学检验"
    assert dr["conclusion"] == "白细胞计数及C反应蛋白升高，提示急性炎症。"
    assert dr["extension"][0]["valueAnnotation"]["text"] == "标本溶血轻微，不影响结果。"
    assert dr["effectiveDateTime"] == "2024-03-15T09:30:00+08:00" and dr["issued"] == "2024-03-15T10:30:00+08:00"
    performer = urls[dr["performer"][-1]["reference"]]
    assert performer["name"] == "检验科" and urls[performer["partOf"]["reference"]]["name"] == "北京市示例医院"
    assert len(dr["result"]) == 3
    wbc = observation(b, "WBC")
    assert wbc["code"]["coding"][0]["system"] == "urn:helixgate:cn:local:12110000400000001X:lab-item"
    assert wbc["code"]["text"] == "白细胞计数"
    assert wbc["valueQuantity"] == {"value": 11.2, "unit": "×10^9/L", "system": S.UCUM, "code": "10*9/L"}
    assert wbc["interpretation"][0]["coding"][0]["code"] == "H"
    assert wbc["interpretation"][1]["coding"][0] == {"system": S.RESULT_CODE_SYSTEM, "code": "2", "display": "异常"}
    assert wbc["referenceRange"][0]["low"]["value"] == 3.5 and wbc["referenceRange"][0]["high"]["value"] == 9.5
    assert wbc["method"] == {"text": "流式细胞术"}
    hgb = observation(b, "718-7")  # a LOINC code with a valid check digit is recognised as LOINC
    assert hgb["code"]["coding"][0]["system"] == S.LOINC
    crp = observation(b, "CRP")
    assert crp["valueQuantity"] == {"value": 36.5, "unit": "毫克每升"}  # no UCUM for this spelling: text kept
    assert crp["referenceRange"] == [{"text": "<10"}]
    assert "cn-unit-not-ucum" in details(c.issues)
    specimen = one(b, "Specimen")  # the CRP organizer names none: it shares the document's one specimen
    assert {o["specimen"]["reference"] for o in resources(b, "Observation")} == {f"urn:uuid:{specimen['id']}"}
    assert specimen["accessionIdentifier"]["value"] == "BB20240315088"
    assert specimen["type"]["text"] == "静脉血" and specimen["condition"][0]["text"] == "合格"
    assert specimen["collection"]["collectedDateTime"] == "2024-03-15T08:45:00+08:00"
    assert specimen["receivedTime"] == "2024-03-15T09:00:00+08:00"
    cond = one(b, "Condition")
    assert [(c["system"], c["code"]) for c in cond["code"]["coding"]] == [
        (S.ICD10_CN_SYSTEM, "K35.800x001"), (S.ICD10_WHO, "K35.8")]


def test_genetic_results_in_gb18030() -> None:
    c = convert("lab-genetic.gb18030.xml")
    b = c.bundle
    p = one(b, "Patient")
    assert p["name"][0]["family"] == "诸葛" and p["gender"] == "female"
    assert ext(p, S.NATIONALITY_EXT)["extension"][0]["valueCodeableConcept"]["coding"][1]["code"] == "CN"  # 156
    dr = one(b, "DiagnosticReport")
    assert [c["code"] for c in dr["category"][0]["coding"]] == ["LAB", "GE"]
    assert "EGFR-TKI" in dr["conclusion"]
    egfr = observation(b, "EGFR-MUT")
    assert egfr["valueString"].startswith("检出EGFR第19外显子缺失突变")
    assert observation(b, "EGFR-VAF")["valueQuantity"] == {"value": 12.5, "unit": "%", "system": S.UCUM, "code": "%"}
    alk = observation(b, "ALK-FUS")
    assert alk["valueCodeableConcept"]["coding"][0] == {"system": S.RESULT_CODE_SYSTEM, "code": "1", "display": "阴性"}
    spec = one(b, "Specimen")
    assert spec["container"][0]["additiveCodeableConcept"]["text"] == "10%中性福尔马林"
    assert spec["accessionIdentifier"]["value"] == "BL2024-0412"
    enc = one(b, "Encounter")
    assert enc["class"]["code"] == "IMP"
    assert [(loc["location"]["display"], loc.get("physicalType", {}).get("coding", [{}])[0].get("code"))
            for loc in enc["location"]] == [("12床", "bd"), ("605病房", "ro"), ("胸外科", None), ("胸外科一病区", "wa")]
    cond = one(b, "Condition")
    assert cond["code"]["coding"][1]["code"] == "C34.1"


def test_exam_report_with_legacy_id() -> None:
    c = convert("exam-ct.utf8.xml")
    b = c.bundle
    p = one(b, "Patient")
    assert p["identifier"][0]["value"] == "510104196508172611"  # upgraded from 510104650817261
    assert "resident-id-legacy" in details(c.issues)
    assert p["birthDate"] == "1965-08-17" and p["name"][0]["family"] == "司马"
    dr = one(b, "DiagnosticReport")
    assert dr["code"]["coding"] == [{"system": S.DOC_TYPE_SYSTEM, "code": "C0006", "display": "检查报告"}]
    assert dr["category"][0]["coding"][0]["code"] == "RAD"
    assert dr["conclusion"] == "右肺下叶炎症，建议抗感染治疗后复查。"
    findings = observation(b, "DE04.50.131.00")
    assert findings["valueString"].startswith("右肺下叶见斑片状高密度影")
    assert observation(b, "DE04.01.119.00")["valueString"] == "咳嗽、发热两周"
    ct = observation(b, "CT0101")
    assert ct["category"][0]["coding"][0]["code"] == "imaging"
    assert ct["valueCodeableConcept"]["coding"][0]["display"] == "异常"
    assert one(b, "DiagnosticReport")["identifier"][0]["system"] == "urn:oid:2.16.156.10011.1.32"


def test_exam_report_gb18030_stated_birth_date() -> None:
    c = convert("exam-ultrasound.gb18030.xml")
    p = one(c.bundle, "Patient")
    assert p["birthDate"] == "1990-11-11" and "_birthDate" not in p
    assert p["maritalStatus"]["coding"][0]["code"] == "20"
    assert observation(c.bundle, "US0203-GB")["valueQuantity"]["code"] == "cm"
    assert not [i for i in c.issues if i.severity == "warning"]


def test_invalid_and_mismatching_resident_ids_are_reported() -> None:
    bad = convert("lab-invalid-id.utf8.xml")
    warning = next(i for i in bad.issues if i.details == "resident-id-check-digit")
    assert warning.severity == "warning" and "'5', but the first 17 digits give '4'" in warning.message
    p = one(bad.bundle, "Patient")
    assert p["identifier"][0]["value"] == "110105198503121235" and "birthDate" not in p  # kept, nothing derived
    mismatch = convert("lab-id-mismatch.utf8.xml")
    found = {i.details: i for i in mismatch.issues}
    assert "encodes female" in found["resident-id-sex-mismatch"].message
    assert "52岁" in found["cn-age-mismatch"].message
    assert one(mismatch.bundle, "Patient")["gender"] == "male"  # the document's statement wins


def test_ids_are_deterministic_and_transactions_are_conditional() -> None:
    a = convert("lab-cbc.utf8.xml").bundle
    assert a == convert("lab-cbc.utf8.xml").bundle
    t = convert("lab-cbc.utf8.xml", bundle_type="transaction").bundle
    assert t["type"] == "transaction"
    patient_entry = next(e for e in t["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient_entry["request"] == {"method": "POST", "url": "Patient",
                                        "ifNoneExist": f"identifier={S.RESIDENT_ID_SYSTEM}|110105198503121234"}
    refs = [v["reference"] for e in a["entry"] for v in _refs(e["resource"])]
    urls = {e["fullUrl"] for e in a["entry"]}
    assert refs and all(r in urls for r in refs)  # no dangling references


def _refs(node: object) -> list[dict]:
    if isinstance(node, dict):
        own = [node] if "reference" in node and isinstance(node["reference"], str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_recognised_but_unsupported_and_unknown_documents() -> None:
    data = (SAMPLES / "lab-cbc.utf8.xml").read_bytes()
    admission = data.replace(b'code="C0007"', b'code="C0034"').replace(b"2.16.156.10011.2.1.1.27",
                                                                      b"2.16.156.10011.2.1.1.54")
    with pytest.raises(UnsupportedMessage, match="part 34 入院记录 \\(C0034\\) is recognised but not converted"):
        to_fhir(admission)
    unknown = data.replace(b'code="C0007"', b'code="X9"').replace(b"2.16.156.10011.2.1.1.27", b"1.2.3")
    with pytest.raises(UnsupportedMessage, match="not a recognised WS/T 500 document") as e:
        to_fhir(unknown)
    assert e.value.issues[0].expression == "/ClinicalDocument/code"  # issues name the source element by XPath
    # The template id alone is enough when the code is missing; the mismatch is reported.
    no_code = data.replace(b'<code code="C0007" codeSystem="2.16.156.10011.2.4"', b'<code')
    assert "cda-document-code" in details(to_fhir(no_code).issues)
    with pytest.raises(ParseError, match="not <ClinicalDocument>"):
        to_fhir(b'<?xml version="1.0"?><Bundle xmlns="urn:hl7-org:v3"/>')


def test_placeholders_and_unmapped_entries() -> None:
    data = (SAMPLES / "lab-cbc.utf8.xml").read_bytes()
    data = data.replace(b'<id extension="MZ20240315007"', b'<id extension="NA"')
    extra = (b'<entry><observation classCode="OBS" moodCode="EVN"><code code="DE04.10.188.00" '
             b'codeSystem="2.16.156.10011.2.2.1"/><value xsi:type="ST">x</value></observation></entry></section>')
    data = data.replace(b"</section>", extra, 1)
    c = to_fhir(data)
    enc = one(c.bundle, "Encounter")
    assert "identifier" not in enc  # 'NA' is the templates' placeholder, not a number
    issue = next(i for i in c.issues if i.details == "cda-entry-not-mapped")
    assert "DE04.10.188.00" in issue.message and "(line 125)" in issue.message
    assert issue.expression == "/ClinicalDocument/component/structuredBody/component[1]/section/entry[2]/observation"
