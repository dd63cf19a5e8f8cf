"""The `phenopacket` format at the edge: detection from content (without taking FHIR or WS 445 JSON), splitting
cohorts and NDJSON for batches, the CLI, HTTP $convert both ways, and a cohort as a bulk job run by a real worker."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.settings import Settings
from mappers.phenopacket import schema
from mappers.phenopacket.format import sniff, split
from mappers.toolkit.registry import detect
from tests.conftest import ROOT, RedisServer, ServedApp, start_redis
from tests.upstream.engine import WorkerProcess
from tests.upstream.fixtures import wait_for

EXAMPLE = ROOT / "examples" / "phenopacket-case.json"
MEDIA = {"Content-Type": "application/x-phenopacket+json"}


def case(n: int) -> dict:
    doc = orjson.loads(EXAMPLE.read_bytes())
    return {**doc, "id": f"case-{n}", "subject": {**doc["subject"], "id": f"person-{n}"}}


def cohort(n: int) -> bytes:
    return orjson.dumps({"id": "cohort-1", "members": [case(i) for i in range(n)]})


def test_detection_from_content() -> None:
    fmt = detect(EXAMPLE.read_bytes())
    assert fmt is not None and fmt.name == "phenopacket"
    assert sniff(cohort(2)) and sniff(b"\n".join(orjson.dumps(case(i)) for i in range(2)))
    for other, name in ((ROOT / "examples" / "cn-ws445-lab.json", "ws445"),):
        found = detect(other.read_bytes())
        assert found is not None and found.name == name
    bundle = orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": []})
    assert not sniff(bundle) and detect(bundle).name == "fhir"  # type: ignore[union-attr]
    late = orjson.dumps({"metaData": {"created": "x"}, "text": "x" * 5000, "resourceType": "Observation"})
    assert not sniff(late)  # FHIR whose resourceType comes late is still FHIR
    assert not sniff(b'{"id": "x", "unknownField": 1, "metaData": {}}')


def test_split_gives_cohort_members_and_ndjson_lines() -> None:
    members = split(cohort(3))
    assert [w for w, _ in members] == ["members[0]", "members[1]", "members[2]"]
    assert [schema.read(d).doc["id"] for _, d in members] == ["case-0", "case-1", "case-2"]
    lines = split(b"\n".join(orjson.dumps(case(i)) for i in range(2)) + b"\n\n")
    assert [w for w, _ in lines] == ["line 1", "line 2"]
    assert split(EXAMPLE.read_bytes()) == [("document 1", EXAMPLE.read_bytes())]


def helixgate(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=120)


def test_cli_converts_there_and_back_and_refuses_bad_input(tmp_path: Path) -> None:
    there = helixgate("convert", str(EXAMPLE))
    assert there.returncode == 0, there.stderr.decode()
    (tmp_path / "bundle.json").write_bytes(there.stdout)
    back = helixgate("convert", "--to", "phenopacket", str(tmp_path / "bundle.json"))
    assert back.returncode == 0, back.stderr.decode()
    assert orjson.loads(back.stdout) == schema.read(EXAMPLE.read_bytes()).doc
    bad = helixgate("convert", "--from", "phenopacket", "-", stdin=b'{"id": "x", "subject": {"sex": "NEITHER"}}')
    assert bad.returncode != 0 and b"Phenopacket.subject.sex" in bad.stderr and b"Traceback" not in bad.stderr


def test_http_convert_both_ways(gateway: ServedApp) -> None:
    r = httpx.post(f"{gateway.url}/fhir/$convert", content=EXAMPLE.read_bytes(), headers=MEDIA, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "Bundle"
    back = httpx.post(f"{gateway.url}/fhir/$convert", content=r.content, params={"target": "phenopacket"},
                      headers={"Content-Type": "application/fhir+json"}, timeout=60)
    assert back.status_code == 200, back.text
    assert back.headers["content-type"].startswith("application/x-phenopacket+json")
    assert back.json() == schema.read(EXAMPLE.read_bytes()).doc
    bad = httpx.post(f"{gateway.url}/fhir/$convert", content=b'{"id": "x", "subjekt": {}}', headers=MEDIA, timeout=60)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    assert bad.json()["issue"][0]["expression"] == ["Phenopacket.subjekt"]


def test_a_cohort_without_prefer_converts_member_by_member(gateway: ServedApp) -> None:
    r = httpx.post(f"{gateway.url}/fhir/$convert", content=cohort(3), headers=MEDIA, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["x-batch"] == "documents=3; converted=3; failed=0"
    bundles = [orjson.loads(line) for line in r.content.splitlines()]
    assert [b["identifier"]["value"] for b in bundles] == ["case-0", "case-1", "case-2"]


def test_ndjson_of_phenopackets_converts_line_by_line(gateway: ServedApp) -> None:
    body = b"\n".join(orjson.dumps(case(i)) for i in range(2)) + b"\n{\"id\": \"x\", \"subjekt\": {}}\n"
    r = httpx.post(f"{gateway.url}/fhir/$convert", content=body,
                   headers={"Content-Type": "application/x-phenopacket+ndjson"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["x-batch"] == "documents=3; converted=2; failed=1"
    lines = [orjson.loads(line) for line in r.content.splitlines()]
    assert [d["resourceType"] for d in lines] == ["Bundle", "Bundle", "OperationOutcome"]
    assert "Phenopacket.subjekt" in orjson.dumps(lines[2]).decode()


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedApp, WorkerProcess]]:
    redis: RedisServer = start_redis()
    folder = tmp_path_factory.mktemp("bulk-phenopacket")
    worker = WorkerProcess({"HELIXGATE_REDIS_URL": redis.url, "HELIXGATE_BULK_DIR": str(folder),
                            "HELIXGATE_UPSTREAM_URL": ""}, "bulk-phenopacket")
    try:
        with ServedApp(Settings(redis_url=redis.url, bulk_dir=str(folder))) as app:
            yield app, worker
    finally:
        worker.stop()
        redis.stop()


def test_a_cohort_converts_as_a_bulk_job(bulk: tuple[ServedApp, WorkerProcess]) -> None:
    app, _ = bulk
    members = [case(i) for i in range(4)]
    members[2] = {**members[2], "subject": {"id": "bad", "sex": "NEITHER"}}  # one member the schema refuses
    body = orjson.dumps({"id": "cohort-2", "members": members})
    kick = httpx.post(f"{app.url}/fhir/$convert", content=body, headers={**MEDIA, "Prefer": "respond-async"},
                      timeout=10)
    assert kick.status_code == 202, kick.text

    def finished() -> httpx.Response | None:
        r = httpx.get(kick.headers["content-location"], timeout=10)
        return None if r.status_code == 202 else r

    done = wait_for(finished, 60, interval=0.2, what="the bulk job")
    assert done.status_code == 200, done.text
    outputs = {o["type"]: o for o in done.json()["output"]}
    assert outputs["Patient"]["count"] == 3 and outputs["DiagnosticReport"]["count"] == 3
    patients = [orjson.loads(line) for line in httpx.get(outputs["Patient"]["url"], timeout=10).content.splitlines()]
    assert sorted(p["identifier"][0]["value"] for p in patients) == ["person-0", "person-1", "person-3"]
    (error,) = done.json()["error"]
    problems = httpx.get(error["url"], timeout=10).content.decode()
    assert "members[2]" in problems and "Phenopacket.subject.sex" in problems
