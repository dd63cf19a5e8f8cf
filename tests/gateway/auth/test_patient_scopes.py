"""patient/ scopes against the real facade in front of Medplum's FHIR router: searches narrowed to the patient,
reads of another patient's resources answered 404, no way around it through _include, history, types outside the
compartment, writes, or the entries of a batch; search-narrowed system scopes the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.settings import Settings
from tests.conftest import RedisServer
from tests.gateway.auth.served import AuthServed, Client
from tests.upstream.engine import unique_message
from tests.upstream.fixtures import UpstreamControl

LOINC = "http://loinc.org"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("patient-keys")


@pytest.fixture()
def world(medplum_upstream: str, upstream_control: UpstreamControl) -> dict[str, Any]:
    """Two patients with two Observations each (one laboratory, one vital-signs), and a Practitioner, stored directly
    in the upstream."""
    def create(resource: dict[str, Any]) -> str:
        r = httpx.post(f"{medplum_upstream}/{resource['resourceType']}", json=resource, timeout=30)
        r.raise_for_status()
        return r.json()["id"]

    ids: dict[str, Any] = {"practitioner": create({"resourceType": "Practitioner", "name": [{"family": "Who"}]})}
    for who in ("a", "b"):
        pid = create({"resourceType": "Patient", "name": [{"family": f"Patient-{who}"}]})
        ids[who] = pid
        for category in ("laboratory", "vital-signs"):
            ids[f"{who}-{category}"] = create({
                "resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
                "category": [{"coding": [{"system": LAB.split("|")[0], "code": category}]}],
                "code": {"coding": [{"system": LOINC, "code": "718-7"}]}})
    return ids


@pytest.fixture()
def gateway(world: dict[str, Any], medplum_upstream: str, redis_server: RedisServer,
            keys_dir: Path, request: pytest.FixtureRequest) -> Iterator[AuthServed]:
    folder = keys_dir / request.node.name[:40]
    folder.mkdir()
    clients = {
        "alice": Client(["patient/Observation.rs", "patient/Patient.r"], patient=world["a"]),
        "alice-all": Client(["patient/*.cruds"], patient=world["a"]),
        "no-patient": Client(["patient/*.rs"]),
        "lab": Client(["system/Observation.rs?category=" + LAB]),
        "lab-or-vitals": Client(["system/Observation.rs?category=" + LAB,
                                 "system/Observation.rs?category=vital-signs"]),
        "system": Client(["system/*.cruds"]),
        "converter": Client(["system/$convert", "system/*.cu"]),
        "observations-only": Client(["system/$convert", "system/Observation.cu"]),
    }
    settings = Settings(redis_url=redis_server.url, upstream_url=medplum_upstream, upstream_retries=1,
                        upstream_transaction_max_entries=8)
    with AuthServed(settings, folder, clients) as app:
        yield app


def ids_of(r: httpx.Response) -> set[str]:
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") != "outcome"}


def get(app: AuthServed, who: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{app.url}/fhir/{path}", params=params, headers=app.auth(who), timeout=30)


def test_a_patient_search_is_narrowed_to_the_patient(gateway: AuthServed, world: dict[str, Any]) -> None:
    mine = {world["a-laboratory"], world["a-vital-signs"]}
    assert ids_of(get(gateway, "alice", "Observation")) == mine
    assert ids_of(get(gateway, "alice", "Observation", code=f"{LOINC}|718-7")) == mine
    # asking for the other patient explicitly finds nothing: the narrowing is ANDed
    assert ids_of(get(gateway, "alice", "Observation", subject=f"Patient/{world['b']}")) == set()
    compartment = get(gateway, "alice", f"Patient/{world['b']}/Observation")  # Medplum has no compartment search
    assert compartment.status_code in (200, 404) and world["b-laboratory"] not in compartment.text
    assert ids_of(get(gateway, "alice-all", "Patient")) == {world["a"]}
    assert get(gateway, "alice", "Patient").status_code == 403  # Patient.r only: no search
    assert ids_of(get(gateway, "system", "Observation")) == mine | {world["b-laboratory"], world["b-vital-signs"]}


def test_reading_another_patients_resource_is_a_404(gateway: AuthServed, world: dict[str, Any]) -> None:
    assert get(gateway, "alice", f"Observation/{world['a-laboratory']}").status_code == 200
    assert get(gateway, "alice", f"Patient/{world['a']}").status_code == 200
    for path in (f"Observation/{world['b-laboratory']}", f"Patient/{world['b']}",
                 f"Observation/{world['b-laboratory']}/_history", "Observation/does-not-exist"):
        r = get(gateway, "alice", path)
        assert r.status_code == 404, path
        assert r.json()["issue"][0]["code"] == "not-found"
    assert get(gateway, "system", f"Observation/{world['b-laboratory']}").status_code == 200


def test_no_way_around_the_compartment(gateway: AuthServed, world: dict[str, Any]) -> None:
    refused = [
        get(gateway, "alice-all", "Practitioner"),  # not in the Patient compartment
        get(gateway, "alice-all", f"Practitioner/{world['practitioner']}"),
        get(gateway, "alice", "Observation", _include="Observation:subject"),  # would follow references out
        get(gateway, "alice", "Observation", _revinclude="Provenance:target"),
        get(gateway, "alice", "Observation/_history"),  # history-type cannot be narrowed
        get(gateway, "alice-all", f"Patient/{world['a']}/$everything"),  # an operation may return anything
        get(gateway, "no-patient", "Observation"),  # patient/ scopes without a patient grant nothing
        get(gateway, "alice", "Condition"),  # a type the scopes do not name
    ]
    for r in refused:
        assert r.status_code == 403, r.request.url
        assert r.json()["issue"][0]["code"] == "forbidden"


def _observation(patient: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": LOINC, "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]},
            "valueQuantity": {"value": 13.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}}


def test_patient_writes_stay_in_the_compartment(gateway: AuthServed, world: dict[str, Any],
                                                upstream_control: UpstreamControl) -> None:
    headers = {**gateway.auth("alice-all"), "Content-Type": "application/fhir+json"}
    before = upstream_control.count("Observation")
    other = httpx.post(f"{gateway.url}/fhir/Observation", json=_observation(world["b"]), headers=headers, timeout=60)
    assert other.status_code == 403 and "compartment" in other.text
    assert upstream_control.count("Observation") == before
    mine = httpx.post(f"{gateway.url}/fhir/Observation", json=_observation(world["a"]), headers=headers, timeout=60)
    assert mine.status_code == 201, mine.text
    # an update may not take over another patient's resource, even when the new version names this patient
    taken = httpx.put(f"{gateway.url}/fhir/Observation/{world['b-laboratory']}",
                      json={**_observation(world["a"]), "id": world["b-laboratory"]}, headers=headers, timeout=60)
    assert taken.status_code == 404
    stored = httpx.get(f"{upstream_control.base}/Observation/{world['b-laboratory']}", timeout=10).json()
    assert stored["subject"]["reference"] == f"Patient/{world['b']}"
    created = httpx.post(f"{gateway.url}/fhir/Patient", json={"resourceType": "Patient"}, headers=headers, timeout=60)
    assert created.status_code == 403


def test_every_entry_of_a_batch_is_authorised(gateway: AuthServed, world: dict[str, Any],
                                              upstream_control: UpstreamControl) -> None:
    headers = {**gateway.auth("alice-all"), "Content-Type": "application/fhir+json"}

    def batch(*entries: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{gateway.url}/fhir", json={"resourceType": "Bundle", "type": "batch",
                                                       "entry": list(entries)}, headers=headers, timeout=60)

    searched = batch({"request": {"method": "GET", "url": "Observation"}})
    assert searched.status_code == 200, searched.text
    found = searched.json()["entry"][0]["resource"]
    assert {e["resource"]["id"] for e in found.get("entry", [])} == {world["a-laboratory"], world["a-vital-signs"]}
    assert batch({"request": {"method": "GET", "url": f"Observation/{world['a-laboratory']}"}}).status_code == 200
    assert batch({"request": {"method": "GET", "url": f"Observation/{world['b-laboratory']}"}}).status_code == 404
    before = upstream_control.count("Observation")
    refused = batch({"request": {"method": "POST", "url": "Observation"}, "resource": _observation(world["a"])},
                    {"request": {"method": "POST", "url": "Observation"}, "resource": _observation(world["b"])})
    assert refused.status_code == 403 and "compartment" in refused.text
    assert batch({"request": {"method": "GET", "url": "Practitioner"}}).status_code == 403
    assert batch({"request": {"method": "DELETE", "url": f"Observation/{world['b-laboratory']}"}}).status_code == 404
    assert upstream_control.count("Observation") == before  # nothing of a refused batch was forwarded
    reader = {**gateway.auth("alice"), "Content-Type": "application/fhir+json"}
    r = httpx.post(f"{gateway.url}/fhir", headers=reader, timeout=60, json={
        "resourceType": "Bundle", "type": "batch",
        "entry": [{"request": {"method": "POST", "url": "Observation"}, "resource": _observation(world["a"])}]})
    assert r.status_code == 403 and "patient/Observation.c" in r.text


def test_search_narrowed_scopes(gateway: AuthServed, world: dict[str, Any]) -> None:
    labs = {world["a-laboratory"], world["b-laboratory"]}
    assert ids_of(get(gateway, "lab", "Observation")) == labs
    assert get(gateway, "lab", f"Observation/{world['a-laboratory']}").status_code == 200
    assert get(gateway, "lab", f"Observation/{world['a-vital-signs']}").status_code == 404
    # two narrowed scopes cannot both be asked in one search: the client names one, or gets a 403 saying so
    assert get(gateway, "lab-or-vitals", "Observation").status_code == 403
    assert ids_of(get(gateway, "lab-or-vitals", "Observation", category="vital-signs")) == {
        world["a-vital-signs"], world["b-vital-signs"]}


def test_a_national_format_posted_to_the_base_needs_convert_and_each_written_type(
        gateway: AuthServed, upstream_control: UpstreamControl) -> None:
    message = unique_message(7, "AUTH")

    def post(who: str) -> httpx.Response:
        return httpx.post(f"{gateway.url}/fhir", content=message, timeout=120,
                          headers={**gateway.auth(who), "Content-Type": "x-application/hl7-v2+er7"})

    before = upstream_control.count("DiagnosticReport")
    no_convert = post("system")
    assert no_convert.status_code == 403 and "system/$convert" in no_convert.text
    partial = post("observations-only")
    assert partial.status_code == 403 and "entry[" in partial.text
    assert upstream_control.count("DiagnosticReport") == before  # nothing was delivered
    delivered = post("converter")
    assert delivered.status_code == 200, delivered.text
    assert upstream_control.count("DiagnosticReport") == before + 1


def test_patient_scopes_hold_for_delete_patch_post_search_and_histories(gateway: AuthServed, world: dict[str, Any],
                                                                         upstream_control: UpstreamControl) -> None:
    """The facade's other interactions under a patient/ grant: nothing reaches outside Patient a's compartment."""
    headers = {**gateway.auth("alice-all"), "Content-Type": "application/fhir+json"}
    url = f"{gateway.url}/fhir"
    json_patch = {**gateway.auth("alice-all"), "Content-Type": "application/json-patch+json"}
    assert httpx.delete(f"{url}/Observation/{world['b-laboratory']}", headers=headers, timeout=30).status_code == 404
    moved = b'[{"op":"replace","path":"/subject/reference","value":"Patient/' + world["b"].encode() + b'"}]'
    taken = httpx.patch(f"{url}/Observation/{world['a-laboratory']}", content=moved, headers=json_patch, timeout=60)
    assert taken.status_code == 403  # the patched result would leave the compartment
    theirs = httpx.patch(f"{url}/Observation/{world['b-laboratory']}", content=b'[{"op":"remove","path":"/code"}]',
                         headers=json_patch, timeout=60)
    assert theirs.status_code == 404
    form = {**gateway.auth("alice"), "Content-Type": "application/x-www-form-urlencoded"}
    posted = httpx.post(f"{url}/Observation/_search", content=f"subject=Patient/{world['b']}".encode(), headers=form,
                        timeout=30)
    assert ids_of(posted) == set()  # the narrowing is ANDed with the form's own parameters
    included = httpx.post(f"{url}/Observation/_search", content=b"_include=Observation:subject", headers=form,
                          timeout=30)
    assert included.status_code == 403  # _include in the form is checked like one in the query
    for path in ("_history", "Observation/_history", "?_type=Observation"):
        assert httpx.get(f"{url}/{path}", headers=gateway.auth("alice"), timeout=30).status_code == 403, path
    gone = httpx.delete(f"{url}/Observation", params={"code": f"{LOINC}|718-7"}, headers=headers, timeout=30)
    assert gone.status_code in (200, 204)  # a conditional delete narrowed to the patient: b's stay
    left = {o["id"] for o in upstream_control.search("Observation")}
    assert {world["b-laboratory"], world["b-vital-signs"]} <= left
    assert not {world["a-laboratory"], world["a-vital-signs"]} & left
