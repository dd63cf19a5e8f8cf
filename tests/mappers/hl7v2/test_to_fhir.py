"""ORU^R01 → FHIR: the authored genetic messages (messages/*.hl7) against their stated facts, and the
IG-shaped structure of every Bundle."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from mappers.exceptions import ParseError, UnsupportedMessage
from mappers.hl7v2 import Options, parse_message, to_fhir
from tests.mappers.hl7v2.facts import GR, LOINC, by_url, component, facts, has_profile, resources

MESSAGES = sorted((Path(__file__).parent / "messages").glob("*.hl7"))
IDS = [p.stem for p in MESSAGES]
SLICE_CODES = {
    "81252-9", "48018-6", "51958-7", "48004-6", "48005-3", "81290-9", "81291-7", "48019-4", "48013-7", "69547-8",
    "81254-5", "69551-0", "92822-6", "48001-2", "48000-4", "62374-4", "48002-0", "53034-5", "81258-6", "82121-5",
    "94186-4", "82309-6", "82155-3", "81301-4", "81302-2",
}
LL1971_2 = {"LA9633-4", "LA9634-2", "LA18198-4", "LA11884-6"}


def convert(path: Path, **opts: object):  # type: ignore[no-untyped-def]
    return to_fhir(path.read_bytes(), Options(**opts))  # type: ignore[arg-type]


def test_there_are_enough_authored_messages() -> None:
    assert len(MESSAGES) >= 10


@pytest.mark.parametrize("path", MESSAGES, ids=IDS)
def test_facts_match(path: Path) -> None:
    expected = json.loads(path.with_suffix(".facts.json").read_text("utf-8"))
    got = facts(convert(path).bundle)
    exp_pat = expected["patient"]
    pat = got["patient"]
    assert [i["value"] for i in pat["identifiers"]] == [i["value"] for i in exp_pat["identifiers"]]
    for have, want in zip(pat["identifiers"], exp_pat["identifiers"], strict=True):
        if want["assigner"] is None:
            assert have["system"] is None
        else:
            assert want["assigner"] == have["assigner"] or have["system"] in (
                f"urn:oid:{want['assigner']}", f"urn:id:{want['assigner']}")
    assert pat["family"] == exp_pat["family"]
    assert pat["given"] == exp_pat["given"]
    assert pat["birth_date"] == exp_pat["birth_date"]
    assert pat["gender"] == exp_pat["gender"]
    assert got["report"] == expected["report"]
    want_variants = [{k: v for k, v in var.items() if k != "group"} for var in expected["variants"]]
    assert got["variants"] == want_variants
    assert got["lab_observations"] == expected["lab_observations"]
    assert got["has_specimen"] == expected["has_specimen"]


@pytest.mark.parametrize("path", MESSAGES, ids=IDS)
def test_variants_follow_the_ig_profile(path: Path) -> None:
    bundle = convert(path).bundle
    variants = [o for o in resources(bundle, "Observation") if has_profile(o, "variant")]
    assert variants
    for var in variants:
        cats = {c["coding"][0]["code"] for c in var["category"]}
        assert {"laboratory", "GE"} <= cats
        assert {"system": LOINC, "code": "69548-6"}.items() <= var["code"]["coding"][0].items()
        assert var["valueCodeableConcept"]["coding"][0]["code"] in LL1971_2
        codes = [c["code"]["coding"][0]["code"] for c in var["component"]]
        for code in set(codes) - {"81252-9", "48018-6", "48001-2", "62374-4", "48000-4"}:
            if code in SLICE_CODES:
                assert codes.count(code) == 1, f"slice {code} is 0..1"
        assert "53037-8" not in codes and "81259-4" not in codes  # implications only (IG)
        for af in component(var, "81258-6"):
            assert af["valueQuantity"]["system"] == "http://unitsofmeasure.org"
            assert af["valueQuantity"]["code"] == "1"
        if component(var, "81254-5"):
            assert component(var, "92822-6")[0]["valueCodeableConcept"]["coding"][0]["code"] == "LA30102-0"


@pytest.mark.parametrize("path", MESSAGES, ids=IDS)
def test_references_resolve_and_report_lists_results(path: Path) -> None:
    bundle = convert(path).bundle
    urls = by_url(bundle)
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                refs.append(node["reference"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(bundle)
    assert refs and all(r in urls for r in refs)
    assert len({e["resource"]["id"] for e in bundle["entry"]}) == len(bundle["entry"])
    genomic = [r for r in resources(bundle, "DiagnosticReport") if has_profile(r, "genomic-report")]
    assert genomic
    for report in genomic:
        assert report["code"]["coding"][0]["code"] == "51969-4"
        assert report["category"][0]["coding"][0]["code"] == "GE"
    listed = {r["reference"] for rep in resources(bundle, "DiagnosticReport") for r in rep.get("result", [])}
    for obs in resources(bundle, "Observation"):
        assert f"urn:uuid:{obs['id']}" in listed
        if has_profile(obs, "diagnostic-implication"):
            assert "value" not in "".join(obs)  # value[x] is 0..0 on implications
            assert has_profile(urls[obs["derivedFrom"][0]["reference"]], "variant")
            assert obs["code"]["coding"][0]["code"] == "diagnostic-implication"
    for res in (e["resource"] for e in bundle["entry"]):
        if res["resourceType"] == "Observation" and "meta" in res:
            assert res["meta"]["profile"][0].startswith(GR)


@pytest.mark.parametrize("path", MESSAGES, ids=IDS)
@pytest.mark.parametrize("bundle_type", ["collection", "transaction"])
def test_converting_twice_gives_the_same_bytes(path: Path, bundle_type: str) -> None:
    first, second = convert(path, bundle_type=bundle_type), convert(path, bundle_type=bundle_type)
    assert orjson.dumps(first.bundle) == orjson.dumps(second.bundle)
    assert first.issues == second.issues and first.origins == second.origins


def test_provenance_names_the_source_message_and_its_time() -> None:
    path = MESSAGES[0]  # MSH-7 20250301120000-0500
    bundle = convert(path).bundle
    prov = resources(bundle, "Provenance")[0]
    control_id = parse_message(path.read_bytes()).control_id
    assert prov["entity"][0]["what"]["identifier"]["value"] == control_id
    assert prov["entity"][0]["what"]["identifier"]["system"] == "urn:helixgate:hl7v2:msh-10:HELIX-NGS/GENLAB-A"
    assert prov["recorded"] == prov["occurredDateTime"] == bundle["timestamp"] == "2025-03-01T12:00:00-05:00"
    targets = {t["reference"] for t in prov["target"]}
    assert {f"urn:uuid:{o['id']}" for o in resources(bundle, "Observation")} <= targets
    device = resources(bundle, "Device")[0]
    assert device["version"] == [{"value": "hl7v2-oru-r01/0.3.1"}]
    assert {"reference": f"urn:uuid:{device['id']}"} in [a["who"] for a in prov["agent"]]


def test_without_an_instant_there_is_no_provenance_and_no_timestamp() -> None:
    msg = (b"MSH|^~\\&|A|B|C|D|20250101120000||ORU^R01|X3|P|2.5.1\rPID|1||P1^^^H^MR\r"
           b"OBR|1||F1|81247-9^panel^LN\rOBX|1|ST|69547-8^Ref^LN|2a|T||||||F\r")
    conv = to_fhir(msg)
    assert not resources(conv.bundle, "Provenance") and "timestamp" not in conv.bundle
    assert "1970" not in orjson.dumps(conv.bundle).decode()
    assert any(i.details == "hl7v2-no-provenance" and i.expression == "MSH[1]-7" for i in conv.issues)
    # a zone for zoneless times makes MSH-7 an instant; a caller's recorded time serves when MSH-7 cannot
    zoned = to_fhir(msg, Options(timezone="+01:00")).bundle
    assert zoned["timestamp"] == resources(zoned, "Provenance")[0]["recorded"] == "2025-01-01T12:00:00+01:00"
    stated = to_fhir(msg, Options(recorded="2025-01-02T00:00:00Z")).bundle
    assert resources(stated, "Provenance")[0]["recorded"] == "2025-01-02T00:00:00Z"
    assert "timestamp" not in stated


def test_transaction_bundle_uses_conditional_create_on_patient_identifier() -> None:
    bundle = convert(MESSAGES[0], bundle_type="transaction").bundle
    assert bundle["type"] == "transaction"
    patient_entry = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    ident = patient_entry["resource"]["identifier"][0]
    assert patient_entry["request"] == {"method": "POST", "url": "Patient",
                                        "ifNoneExist": f"identifier={ident['system']}|{ident['value']}"}
    assert all(e["request"]["method"] == "POST" for e in bundle["entry"])
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])


def test_unmapped_input_is_reported() -> None:
    path = next(p for p in MESSAGES if p.name.startswith("11-"))
    conv = convert(path)
    z = [i for i in conv.issues if i.details == "hl7v2-segment-not-mapped" and i.expression.startswith("Z")]
    assert z and z[0].severity == "warning"
    assert conv.outcome["resourceType"] == "OperationOutcome"
    msg = (b"MSH|^~\\&|A|B|C|D|20250101120000+0000||ORU^R01|X1|P|2.5.1|||AL|NE\r"
           b"PID|1||P1^^^H^MR|||||||||||||||||||||||||||Y\r"
           b"OBR|1||F1|81247-9^panel^LN\rOBX|1|ST|69547-8^Ref^LN|2a|T|||||N|F|||||||||||||Q\r")
    issues = to_fhir(msg).issues
    where = {i.expression for i in issues}
    assert {"MSH[1]-15", "MSH[1]-16", "PID[1]-30", "OBX[1]-10", "OBX[1]-24"} <= where


def test_time_without_zone_is_kept_as_date_with_a_warning_or_completed_by_option() -> None:
    msg = (b"MSH|^~\\&|A|B|C|D|20250101||ORU^R01|X2|P|2.5.1\rPID|1||P1^^^H^MR\r"
           b"OBR|1||F1|81247-9^panel^LN|||20250228093000\rOBX|1|ST|69547-8^Ref^LN|2a|T||||||F\r")
    conv = to_fhir(msg)
    report = resources(conv.bundle, "DiagnosticReport")[0]
    assert report["effectiveDateTime"] == "2025-02-28"
    assert any(i.details == "hl7v2-time-without-zone" and i.expression == "OBR[1]-7" for i in conv.issues)
    report = resources(to_fhir(msg, Options(timezone="+08:00")).bundle, "DiagnosticReport")[0]
    assert report["effectiveDateTime"] == "2025-02-28T09:30:00+08:00"


def test_escaped_and_chinese_text_is_decoded() -> None:
    esc = facts(convert(next(p for p in MESSAGES if p.name.startswith("15-"))).bundle)
    assert esc["patient"]["family"] == "Smith&Jones"
    gb = next(p for p in MESSAGES if p.name.startswith("08-"))
    assert parse_message(gb.read_bytes()).encoding == "gb18030"
    assert facts(convert(gb).bundle)["patient"]["family"] == "张"


def test_non_oru_and_orderless_messages_are_rejected_clearly() -> None:
    with pytest.raises(UnsupportedMessage, match="unsupported message type ADT\\^A01"):
        to_fhir(b"MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1\r")
    with pytest.raises(UnsupportedMessage, match="without an OBR"):
        to_fhir(b"MSH|^~\\&|A|B|C|D|2025||ORU^R01|1|P|2.5\rPID|1\r")
    with pytest.raises(ParseError):
        to_fhir(b"not hl7 at all")


@pytest.mark.parametrize("path", MESSAGES, ids=IDS)
@pytest.mark.parametrize("bundle_type", ["collection", "transaction"])
def test_bundle_validates_against_the_ig_with_zero_errors(validator, path: Path, bundle_type: str) -> None:
    bundle = convert(path, bundle_type=bundle_type).bundle
    problems = [(i.expression, i.message) for i in validator.validate(bundle) if i.severity in ("error", "fatal")]
    assert problems == []
