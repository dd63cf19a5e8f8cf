"""Nothing lost in silence: every CDA element with content that no emitter used is listed by XPath, once per
distinct path with a count, bounded; header elements with a FHIR home are mapped."""

from __future__ import annotations

from mappers.cda_cn import to_fhir
from mappers.cda_cn.coverage import MAX_PATHS
from tests.mappers.cda_cn.helpers import DOCUMENTS, SAMPLES, one

UNMAPPED = (SAMPLES / "edge" / "lab-unmapped-elements.utf8.xml").read_bytes()
BODY = "/ClinicalDocument/component/structuredBody/component"


def _listed(issues: tuple) -> dict[str, str]:  # type: ignore[type-arg]
    return {i.expression: i.message for i in issues if i.details == "cda-element-not-mapped"}


def test_unmapped_elements_are_listed_by_path_with_counts() -> None:
    c = to_fhir(UNMAPPED)
    listed = _listed(c.issues)
    assert set(listed) == {
        "/ClinicalDocument/setId",
        "/ClinicalDocument/legalAuthenticator/signatureCode",
        f"{BODY}/section/text",
        f"{BODY}/section/entry/organizer/component/observation/methodCode",
    }
    method = listed[f"{BODY}/section/entry/organizer/component/observation/methodCode"]
    assert method.startswith("2 element(s)") and "(@code, @codeSystem, @displayName)" in method
    assert f"first: {BODY}[1]/section/entry[1]/organizer/component[2]/observation/methodCode (line " in method
    named = {i.expression: i.message for i in c.issues if i.details == "cda-entry-not-mapped"}
    assert named == {  # whole entries no reader knows are named once, with what they are
        f"{BODY}[1]/section/entry[3]/procedure": "entry <procedure> was not mapped (line 130)",
        f"{BODY}[2]/section/entry[2]/observation": "entry DE04.10.188.00 was not mapped (line 148)",
    }
    assert all(i.severity == "information" for i in c.issues if i.details.endswith("not-mapped"))


def test_version_and_replaced_document_are_mapped() -> None:
    comp = one(to_fhir(UNMAPPED).bundle, "Composition")
    assert comp["extension"] == [{"url": "http://hl7.org/fhir/StructureDefinition/"
                                         "composition-clinicaldocument-versionNumber", "valueString": "2"}]
    assert comp["relatesTo"] == [{"code": "replaces", "targetIdentifier": {
        "system": "urn:oid:2.16.156.10011.1.1", "value": "DOC-LAB-20240612-0008-V1"}}]
    assert comp["language"] == "zh-CN" and comp["confidentiality"] == "N"


def test_the_authored_samples_lose_nothing() -> None:
    """Every element of the regular samples has a FHIR home (the placeholders of the templates are not content)."""
    for path in DOCUMENTS:
        c = to_fhir(path.read_bytes())
        assert not _listed(c.issues), (path.name, _listed(c.issues))


def test_the_list_is_bounded() -> None:
    extra = b"".join(b"<x%d a='1'/>" % n for n in range(MAX_PATHS + 7))
    data = UNMAPPED.replace(b"<methodCode ", extra + b"<methodCode ", 1)
    listed = [i for i in to_fhir(data).issues if i.details == "cda-element-not-mapped"]
    assert len(listed) == MAX_PATHS + 1
    assert listed[-1].message == "11 more path(s) with 12 unmapped element(s) are not listed"  # methodCode: 2


def test_a_confidentiality_code_outside_the_required_binding_is_not_emitted() -> None:
    data = (SAMPLES / "lab-cbc.utf8.xml").read_bytes().replace(b'<confidentialityCode code="N"',
                                                               b'<confidentialityCode code="X9"')
    c = to_fhir(data)
    assert "confidentiality" not in one(c.bundle, "Composition")
    assert any(i.details == "cda-confidentiality-not-mapped" and "'X9'" in i.message for i in c.issues)
