"""The kit against real targets: the project's gateway (Gateway and Converter suites), a conformant reference
server and Medplum (Genomics FHIR server suite), and the gateway's facade in front of Medplum when it exists."""

from __future__ import annotations

from conformance import PASS, RunReport, load_suite, run_suite
from gateway.settings import Settings
from tests.conftest import ROOT, RedisServer, ServedApp

FACTS = sorted([*(ROOT / "tests" / "mappers" / "hl7v2" / "messages").glob("*.facts.json"),
                *(ROOT / "examples").glob("*.facts.json")])  # the example ORU's, China lab record's, phenopacket's


def _not_passed(report: RunReport) -> dict[str, str]:
    return {r.test.id: f"{r.status}: {r.message}" for r in report.results if r.status != PASS}


def _explain(report: RunReport) -> str:
    return "\n".join(f"{k} {v}" for k, v in _not_passed(report).items())


def test_gateway_suite_passes_against_the_gateway(gateway: ServedApp) -> None:
    report = run_suite(load_suite("gateway"), f"{gateway.url}/fhir")
    assert report.passed, _explain(report)
    assert report.counts()["error"] == 0, _explain(report)
    by_id = {r.test.id: r for r in report.results}
    for xml in ("neg-format-xml", "neg-accept-xml"):  # the gateway renders FHIR XML and says so in /metadata
        assert by_id[xml].message.startswith("served as XML"), by_id[xml].message
    assert by_id["val-invalid-profile"].exchanges[0].status == 200


def test_converter_suite_passes_against_the_gateway(gateway: ServedApp) -> None:
    report = run_suite(load_suite("converter"), f"{gateway.url}/fhir")
    assert report.passed, _explain(report)
    assert all(r.status == PASS for r in report.results if r.group.id in ("capability", "hl7v2", "errors"))
    facts = [r for r in report.results if r.test.check == "convert-facts"]
    assert len([r for r in facts if not r.group.id.startswith("to-")]) == len(FACTS) >= 17
    assert all(r.status == PASS for r in facts)
    # The EU documents: the China lab record and the genetic ORU each to ips, eu-lab and ehdsi-cda, every test run
    eu = {r.test.id: r for r in report.results if r.group.id in ("to-ips", "to-eu-lab", "to-ehdsi-cda")}
    assert {r.status for r in eu.values()} == {PASS} and len(eu) == 18, _explain(report)
    assert {i for i in eu if i.endswith("-facts")} == {f"to-{t}-{i}-facts" for t in ("ips", "eu-lab")
                                                       for i in ("cn-lab-record", "oru-egfr-somatic")}
    cn, oru = eu["to-ehdsi-cda-cn-lab-record"].message, eu["to-ehdsi-cda-oru-egfr-somatic"].message
    assert "languageCode zh-CN, 2 patient name(s)" in cn  # its own language kept over the request's; Han + pinyin
    assert "languageCode en-GB" in oru
    assert cn.endswith("name, birth date, sex as stated") and oru.endswith("name, birth date, sex as stated")
    valid = [r for r in report.results if r.test.check == "convert-validates" and r.test.id.startswith("v2-")]
    v2_facts = [f for f in FACTS if f.with_name(f.name.replace(".facts.json", ".hl7")).is_file()]
    assert len(valid) >= len(v2_facts) and all(r.status == PASS for r in valid)
    # Formats still without examples are optional placeholders, never silent passes.
    for r in report.results:
        if r.test.check == "not-applicable":
            assert not r.test.required and r.status == "skip"


def test_genomics_server_suite_passes_against_a_conformant_server(reference_fhir: str) -> None:
    report = run_suite(load_suite("genomics-server"), reference_fhir)
    assert report.passed, _explain(report)
    # optional searches included; the reference server declares no update, patch, history or delete: those skip
    skipped = {r.test.id for r in report.results if r.status == "skip"}
    assert skipped == {"update-patient", "patch-patient", "history-patient", "delete-patient"}, _explain(report)
    assert not {k for k in _not_passed(report) if k not in skipped}, _explain(report)


# What a plain FHIR server cannot know about the Genomics Reporting IG; the gateway's facade must add it.
FACADE_DUTIES = {"srv-profiles", "srv-search-params", "reject-profile-invalid", "reject-base-invalid"}


def test_genomics_server_suite_against_medplum(medplum_upstream: str) -> None:
    """Medplum's FHIR router alone stores, reads and searches the genomic resources correctly; it neither
    declares nor enforces the IG's profiles, which is what the gateway in front of it is for."""
    report = run_suite(load_suite("genomics-server"), medplum_upstream)
    failed = {r.test.id for r in report.results if r.status not in (PASS, "skip")}
    assert failed <= FACADE_DUTIES, _explain(report)
    for r in report.results:
        if r.group.id in ("create", "read", "lifecycle") or (r.group.id == "search" and r.test.required):
            assert r.status == PASS, f"{r.test.id}: {r.message}"


def test_genomics_server_suite_through_the_gateway_facade(redis_server: RedisServer, medplum_upstream: str) -> None:
    settings = Settings(redis_url=redis_server.url, upstream_url=medplum_upstream)
    with ServedApp(settings) as app:
        report = run_suite(load_suite("genomics-server"), f"{app.url}/fhir")
        gateway_report = run_suite(load_suite("gateway"), f"{app.url}/fhir")
    assert report.passed, _explain(report)
    assert gateway_report.passed, _explain(gateway_report)
    lifecycle = {r.test.id: r.status for r in report.results if r.group.id == "lifecycle"}
    assert set(lifecycle.values()) == {PASS} and len(lifecycle) == 7, _explain(report)  # the facade's interactions
