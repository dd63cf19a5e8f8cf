"""POST /fhir/$exchange end to end: the gateway on loopback with a private Redis (counters, audit trail) and,
for upstream delivery, the test upstream (Medplum's FHIR router)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from gateway.exchange.counters import PREFIX, member
from gateway.exchange.trail import HEAD, STREAM, verify
from gateway.settings import Settings
from tests.conftest import RedisServer, ServedApp
from tests.gateway.exchange.conftest import SECRETS, consents, source_bytes

MEDIA = {"ehdsi-cda": "application/cda+xml",
         "hl7v2": "x-application/hl7-v2+er7", "cda-cn": "application/cda+xml", "ws445": "application/x-ws445+json",
         "vcf": "text/vcf"}


def params(route: str, purpose: str, source: str, *, mechanism: str | None = None, filing: str | None = None,
           dry: bool = False, with_consents: bool = True) -> dict[str, Any]:
    p: list[dict[str, Any]] = [
        {"name": "route", "valueString": route}, {"name": "purpose", "valueCode": purpose},
        {"name": "content", "valueAttachment": {"contentType": MEDIA[source],
                                                 "data": base64.b64encode(source_bytes(source)).decode()}}]
    if mechanism:
        p.append({"name": "mechanism", "valueString": mechanism})
    if filing:
        p.append({"name": "filing", "valueString": filing})
    if dry:
        p.append({"name": "dryRun", "valueBoolean": True})
    if with_consents:
        p += [{"name": "consent", "resource": c} for c in consents()]
    return {"resourceType": "Parameters", "parameter": p}


def treatment(source: str, **kw: Any) -> dict[str, Any]:
    return params("cn-eu-treatment", "treatment", source, mechanism="CN-SC-2026-0042", **kw)


def research(source: str, **kw: Any) -> dict[str, Any]:
    return params("eu-cn-research", "research", source, mechanism="EU-SCC-2021-914-M1-0007", with_consents=False,
                  **kw)


def part(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in doc["parameter"] if p["name"] == name]


@pytest.fixture
def served(routes_file: Path, tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
           medplum_upstream: str) -> Iterator[tuple[ServedApp, redis.Redis, Path]]:
    doc = orjson.loads(routes_file.read_bytes())
    outbox = tmp_path / "outbox"
    doc["routes"][0]["delivery"] = {"mode": "file", "directory": str(outbox)}
    upstream_route = orjson.loads(orjson.dumps(doc["routes"][1]))
    upstream_route.update(id="eu-cn-research-upstream", delivery={"mode": "upstream"})
    upstream_route["rules"].pop("counters")
    doc["routes"].append(upstream_route)
    routes_file.write_bytes(orjson.dumps(doc))
    monkeypatch.setenv("HELIXGATE_EXCHANGE_ROUTES", str(routes_file))
    client = redis.Redis.from_url(redis_server.url)
    for k in client.scan_iter(match=PREFIX + "*"):
        client.delete(k)
    client.delete(STREAM, HEAD)
    settings = Settings(redis_url=redis_server.url, upstream_url=medplum_upstream, upstream_transaction_max_entries=8)
    with ServedApp(settings) as app:
        yield app, client, outbox
    client.close()


def _post(app: ServedApp, body: Any) -> httpx.Response:
    return httpx.post(app.url + "/fhir/$exchange", content=orjson.dumps(body),
                      headers={"Content-Type": "application/fhir+json"}, timeout=120)


def _trail(client: redis.Redis) -> list[dict[str, Any]]:
    return [{"id": sid.decode(), "prev": f[b"prev"].decode(), "hash": f[b"hash"].decode(),
             "event": orjson.loads(f[b"event"])} for sid, f in client.xrange(STREAM)]


def _count(client: redis.Redis) -> int:
    return sum(client.scard(k) for k in client.scan_iter(match=PREFIX + "*"))


def test_a_genetic_transfer_without_a_filing_id_is_refused_and_leaves_nothing(served: Any) -> None:
    app, client, outbox = served
    r = _post(app, treatment("hl7v2"))
    assert r.status_code == 403
    issue = r.json()["issue"][0]
    assert issue["code"] == "forbidden" and issue["details"]["coding"][0]["code"] == "genetic"
    assert "MOST filing id" in issue["diagnostics"]
    assert not outbox.exists() or not list(outbox.iterdir())
    assert _count(client) == 0
    [entry] = _trail(client)
    event = entry["event"]
    assert event["outcome"] == "4" and "rule genetic" in event["outcomeDesc"]
    details = {d["type"]: d["valueString"] for d in event["entity"][0]["detail"]}
    assert details["hgr-class"] == "hgr-information" and details["decision"] == "refuse"
    assert "PAT123" not in orjson.dumps(event).decode()


def test_a_permitted_transfer_is_delivered_counted_and_audited(served: Any, validator: Any) -> None:
    app, client, outbox = served
    r = _post(app, treatment("hl7v2", filing="MOST-HGR-2026-0001"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert part(doc, "decision")[0]["valueCode"] == "permit"
    [written] = [p for p in outbox.iterdir() if not p.name.endswith(".provenance.json")]
    assert part(doc, "delivered")[0]["valueString"] == str(written)
    beside = orjson.loads(written.with_name(written.name.replace(".json", ".provenance.json")).read_bytes())
    assert beside == part(doc, "provenance")[0]["resource"]
    ips = orjson.loads(written.read_bytes())
    assert ips["type"] == "document" and "Bundle-uv-ips" in ips["meta"]["profile"][0]
    errors = [i for i in validator.outcome(ips, ())["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == []
    prov = part(doc, "provenance")[0]["resource"]
    assert prov["policy"] == ["urn:helixgate:exchange:route:cn-eu-treatment"]
    assert [i for i in validator.outcome(prov, ())["issue"] if i["severity"] in ("error", "fatal")] == []
    event = _trail(client)[0]["event"]
    assert [i for i in validator.outcome(event, ())["issue"] if i["severity"] in ("error", "fatal")] == []
    assert part(doc, "subjectsThisYear")[0]["valueInteger"] == 1 and _count(client) == 1
    routes = app.app.state.exchange.routes  # the subject is kept as an HMAC under the route's counter key
    [stored] = [m.decode() for k in client.scan_iter(match=PREFIX + "*") for m in client.smembers(k)]
    assert stored == member("cn-hosp-a", "urn:oid:2.16.840.1.113883.19.5", "PAT123",
                            key=routes.counter_keys["cn-eu-treatment"])
    [entry] = _trail(client)
    details = {d["type"]: d["valueString"] for d in entry["event"]["entity"][0]["detail"]}
    assert details["mechanisms"] == "CN-SC-2026-0042" and details["hgr-filing"] == "MOST-HGR-2026-0001"
    assert details["consents"] == "consent-oru-treatment,consent-oru-sensitive"
    assert details["rules-applied"] == "basis,consent,genetic,minimise" and details["data-subjects"] == "1"
    assert entry["event"]["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    assert part(doc, "auditEvent")[0]["valueString"] == entry["event"]["id"]
    r = _post(app, treatment("hl7v2", filing="MOST-HGR-2026-0001"))  # the same patient again: counted once
    assert r.status_code == 200 and _count(client) == 1
    assert verify(_trail(client)) == (2, None)


def test_dry_run_returns_the_decision_and_diff_and_changes_nothing(served: Any) -> None:
    app, client, outbox = served
    r = _post(app, research("cda-cn", dry=True))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert part(doc, "decision")[0]["valueCode"] == "permit" and not part(doc, "output")
    changes = [{q["name"]: q.get("valueCode", q.get("valueString")) for q in c["part"]} for c in part(doc, "change")]
    actions = {(c["rule"], c["action"]) for c in changes}
    assert {("minimise", "removed"), ("minimise", "generalised"), ("pseudonymise", "replaced")} <= actions
    assert any(c["path"].endswith(".birthDate") and c["action"] == "generalised" for c in changes)
    text = r.text
    for secret in SECRETS["cda-cn"]:  # the diff names paths, never values
        assert secret not in text
    assert _count(client) == 0 and _trail(client) == [] and not outbox.exists()
    refused = _post(app, treatment("hl7v2", dry=True)).json()
    assert part(refused, "decision")[0]["valueCode"] == "refuse"
    assert part(refused, "outcome")[0]["resource"]["issue"][0]["details"]["coding"][0]["code"] == "genetic"


@pytest.mark.parametrize("source", ["ws445", "ehdsi-cda"])
def test_research_output_is_pseudonymised(served: Any, source: str) -> None:
    app, _, _ = served
    r = _post(app, research(source))
    assert r.status_code == 200, r.text
    out = part(r.json(), "output")[0]["resource"]
    text = orjson.dumps(out).decode()
    for secret in SECRETS[source]:
        assert secret not in text
    patient = next(e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient["identifier"][0]["system"] == "urn:helixgate:pseudonym:cn-research-lab:demo-2026"
    assert len(patient["birthDate"]) == 4
    again = part(_post(app, research(source)).json(), "output")[0]["resource"]
    assert [e["resource"]["id"] for e in again["entry"] if e["resource"]["resourceType"] != "Provenance"] == \
        [e["resource"]["id"] for e in out["entry"] if e["resource"]["resourceType"] != "Provenance"]


def test_the_hard_stop(served: Any, routes_file: Path) -> None:
    app, client, _ = served
    app.app.state.exchange.routes.routes["eu-cn-research"]["rules"]["counters"].update(warnAt=1, stopAt=1)
    first = _post(app, research("ws445"))
    assert first.status_code == 200 and "warning" in [p["name"] for p in first.json()["parameter"]]
    before = _count(client)
    r = _post(app, research("cda-cn"))  # another person: past the stop
    assert r.status_code == 403 and r.json()["issue"][0]["details"]["coding"][0]["code"] == "counters"
    assert _count(client) == before
    assert _post(app, research("ws445")).status_code == 200  # the same person again passes


def test_upstream_delivery(served: Any, upstream_control: Any, medplum_upstream: str) -> None:
    app, _, _ = served
    r = _post(app, params("eu-cn-research-upstream", "research", "cda-cn", mechanism="EU-SCC-2021-914-M1-0007",
                          with_consents=False))
    assert r.status_code == 200, r.text
    delivered = [p["valueString"] for p in part(r.json(), "delivered")]
    patient = next(d for d in delivered if d.startswith("Patient/"))
    stored = httpx.get(f"{medplum_upstream}/{patient}", timeout=10).json()
    assert stored["identifier"][0]["system"] == "urn:helixgate:pseudonym:cn-research-lab:demo-2026"
    assert "110105198503121234" not in orjson.dumps(stored).decode()
    assert any(d.startswith("Provenance/") for d in delivered)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"resourceType": "Patient"}, 400, "exchange-not-parameters"),
    ({"resourceType": "Parameters", "parameter": [{"name": "route", "valueString": "cn-eu-treatment"}]}, 400,
     "exchange-missing-parameter"),
    ({"resourceType": "Parameters", "parameter": [
        {"name": "route", "valueString": "x"}, {"name": "purpose", "valueCode": "treatment"},
        {"name": "content", "valueBase64Binary": "%%%"}]}, 400, "bad-base64"),
])
def test_bad_requests(served: Any, body: Any, status: int, code: str) -> None:
    app, client, _ = served
    r = _post(app, body)
    assert r.status_code == status
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == code
    assert _trail(client) == []


def test_unknown_route_and_unconfigured_gateway(served: Any, embedded_gateway: ServedApp) -> None:
    app, _, _ = served
    r = _post(app, params("nope", "treatment", "hl7v2"))
    assert r.status_code == 403 and "there is no route 'nope'" in r.text
    r = _post(embedded_gateway, params("nope", "treatment", "hl7v2"))
    assert r.status_code == 501 and "HELIXGATE_EXCHANGE_ROUTES" in r.text


def test_concurrent_transfers_keep_one_chain(served: Any) -> None:
    app, client, _ = served

    async def go() -> list[int]:
        async with httpx.AsyncClient(timeout=120) as h:
            rs = await asyncio.gather(*(h.post(app.url + "/fhir/$exchange", content=orjson.dumps(research(s)))
                                        for s in ("ws445", "cda-cn", "ws445", "cda-cn")))
            return [r.status_code for r in rs]

    assert asyncio.run(go()) == [200] * 4
    items = _trail(client)
    assert len(items) == 4 and verify(items) == (4, None)


def test_a_failed_delivery_releases_the_count(served: Any, upstream_control: Any) -> None:
    app, client, _ = served
    route = app.app.state.exchange.routes.routes["eu-cn-research-upstream"]
    route["rules"]["counters"] = {"stopAt": 100}
    upstream_control.behave(failStatus=503, failCount=1000, retryAfter=0)
    r = _post(app, params("eu-cn-research-upstream", "research", "cda-cn", mechanism="EU-SCC-2021-914-M1-0007",
                          with_consents=False))
    assert r.status_code == 503 and r.json()["issue"][0]["code"] == "transient"
    assert _count(client) == 0
    [entry] = _trail(client)
    assert entry["event"]["outcome"] == "8" and entry["event"]["outcomeDesc"].startswith("failed: delivery failed")
    assert "retry-after" in r.headers


def test_content_by_reference_to_a_stored_bundle(served: Any, upstream_control: Any, medplum_upstream: str,
                                                 converted: dict[str, Any]) -> None:
    app, _, _ = served
    stored = httpx.post(f"{medplum_upstream}/Bundle", json=converted["ws445"], timeout=20)
    assert stored.status_code == 201, stored.text
    body = research("ws445")
    body["parameter"] = [p for p in body["parameter"] if p["name"] != "content"] + [
        {"name": "contentReference", "valueReference": {"reference": f"Bundle/{stored.json()['id']}"}}]
    r = _post(app, body)
    assert r.status_code == 200, r.text
    text = orjson.dumps(part(r.json(), "output")[0]["resource"]).decode()
    assert "urn:helixgate:pseudonym:cn-research-lab:demo-2026" in text
    for secret in SECRETS["ws445"]:
        assert secret not in text
    body["parameter"][-1] = {"name": "contentReference", "valueReference": {"reference": "Patient/x"}}
    assert _post(app, body).json()["issue"][0]["details"]["coding"][0]["code"] == "exchange-bad-reference"
    body["parameter"][-1] = {"name": "contentReference", "valueReference": {"reference": "Bundle/nope"}}
    r = _post(app, body)
    assert r.status_code == 400 and "exchange-reference-not-found" in r.text
