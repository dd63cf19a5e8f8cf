"""Bulk jobs belong to the client that kicked them off: another client's polls, downloads and DELETEs get the 404 of
a job that does not exist; files are 0600 in 0700 folders; the default directory is private to its user."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.bulk.storage import BulkDirError, default_root, private_dir
from gateway.settings import Settings
from tests.conftest import RedisServer, start_redis
from tests.gateway.principals import KeyedApp
from tests.gateway.test_bulk import V2
from tests.upstream.engine import WorkerProcess, unique_message
from tests.upstream.fixtures import wait_for


@pytest.fixture(scope="module")
def owner_redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def owner_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bulk-owner") / "jobs"  # made by the gateway
    return folder


@pytest.fixture(scope="module")
def owner_gateway(owner_redis: RedisServer, owner_folder: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedApp]:
    """Auth on: API keys for lab-a and lab-b, both allowed $convert (bulk)."""
    with KeyedApp(Settings(redis_url=owner_redis.url, bulk_dir=str(owner_folder)), tmp_path_factory.mktemp("keys"),
                  {"lab-a": ["system/$convert"], "lab-b": ["system/$convert"]}) as app:
        yield app


@pytest.fixture(scope="module")
def open_gateway(owner_redis: RedisServer, owner_folder: Path) -> Iterator[KeyedApp]:
    """The same jobs with auth off."""
    with KeyedApp(Settings(redis_url=owner_redis.url, bulk_dir=str(owner_folder))) as app:
        yield app


@pytest.fixture(scope="module")
def owner_worker(owner_redis: RedisServer, owner_folder: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess({"HELIXGATE_REDIS_URL": owner_redis.url, "HELIXGATE_BULK_DIR": str(owner_folder),
                            "HELIXGATE_UPSTREAM_URL": ""}, "bulk")
    yield worker
    worker.stop()


def kick(app: KeyedApp, headers: dict[str, str], tag: str) -> str:
    r = httpx.post(f"{app.url}/fhir/$convert", content=unique_message(1, tag),
                   headers={**V2, **headers, "Prefer": "respond-async"}, timeout=10)
    assert r.status_code == 202, r.text
    return r.headers["content-location"]


def poll_as(url: str, headers: dict[str, str]) -> httpx.Response:
    """The job's final answer, polled by the client of `headers`."""
    def done() -> httpx.Response | None:
        r = httpx.get(url, headers=headers, timeout=10)
        return None if r.status_code == 202 else r

    return wait_for(done, 30, interval=0.1, what="the bulk job")


def test_client_a_job_is_invisible_to_client_b(owner_gateway: KeyedApp, owner_worker, owner_folder: Path) -> None:
    A, B = owner_gateway.auth("lab-a"), owner_gateway.auth("lab-b")
    url = kick(owner_gateway, A, "OA")
    job = url.rsplit("/", 1)[1]
    done = poll_as(url, A)
    assert done.status_code == 200, done.text
    manifest = done.json()
    assert manifest["requiresAccessToken"] is True  # auth is on
    patient_url = next(o["url"] for o in manifest["output"] if o["type"] == "Patient")
    assert httpx.get(patient_url, headers=A, timeout=10).status_code == 200

    unknown = httpx.get(f"{owner_gateway.url}/fhir/bulk/{'0' * 32}", headers=B, timeout=10)
    assert httpx.get(url, timeout=10).status_code == 401  # no credential at all
    for response in (httpx.get(url, headers=B, timeout=10), httpx.get(patient_url, headers=B, timeout=10),
                     httpx.delete(url, headers=B, timeout=10)):
        assert response.status_code == 404  # not 403: B learns nothing, not even that the job exists
        issue = response.json()["issue"][0]
        assert issue["code"] == "not-found" and issue["details"]["coding"][0]["code"] in ("bulk-unknown-job",
                                                                                          "bulk-unknown-file")
        assert response.json()["issue"][0]["details"]["coding"][0]["code"] == "bulk-unknown-job"
        assert job in issue["details"]["text"] and unknown.json()["issue"][0]["code"] == "not-found"
    # B's DELETE did nothing: A still has the job and its files
    assert httpx.get(url, headers=A, timeout=10).status_code == 200
    assert (owner_folder / job / "output" / "Patient.ndjson").is_file()
    assert httpx.delete(url, headers=A, timeout=10).status_code == 202
    assert httpx.get(url, headers=A, timeout=10).status_code == 404
    assert not (owner_folder / job).exists()


def test_anonymous_jobs_stay_usable_with_auth_off(open_gateway: KeyedApp, owner_gateway: KeyedApp,
                                                  owner_worker) -> None:
    url = kick(open_gateway, {}, "ON")
    done = poll_as(url, {})
    assert done.status_code == 200
    assert done.json()["requiresAccessToken"] is False
    patient_url = next(o["url"] for o in done.json()["output"] if o["type"] == "Patient")
    assert httpx.get(patient_url, timeout=10).status_code == 200
    # the same job seen through a gateway with auth on: no client owns an anonymous job
    job = url.rsplit("/", 1)[1]
    seen = httpx.get(f"{owner_gateway.url}/fhir/bulk/{job}", headers=owner_gateway.auth("lab-a"), timeout=10)
    assert seen.status_code == 404


def test_job_files_are_0600_in_0700_folders(owner_gateway: KeyedApp, owner_worker, owner_folder: Path) -> None:
    A = owner_gateway.auth("lab-a")
    url = kick(owner_gateway, A, "OM")
    job = url.rsplit("/", 1)[1]
    pending = owner_folder / job
    assert stat.S_IMODE(os.stat(owner_folder).st_mode) == 0o700
    assert poll_as(url, A).status_code == 200
    assert stat.S_IMODE(os.stat(pending).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(pending / "output").st_mode) == 0o700
    files = list((pending / "output").iterdir())
    assert {f.name for f in files} >= {"Patient.ndjson", "Observation.ndjson"}
    assert {stat.S_IMODE(os.stat(f).st_mode) for f in files} == {0o600}


def test_an_input_file_is_0600_before_any_worker_runs(owner_redis: RedisServer, tmp_path: Path) -> None:
    root = tmp_path / "queued"
    with KeyedApp(Settings(redis_url=owner_redis.url, bulk_dir=str(root))) as app:
        old = os.umask(0)  # even a permissive umask gives private files
        try:
            url = kick(app, {}, "OI")
        finally:
            os.umask(old)
    job = url.rsplit("/", 1)[1]
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / job).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / job / "input").st_mode) == 0o600


def test_the_default_directory_is_per_user_and_private() -> None:
    root = default_root()
    assert root.name == f"helixgate-bulk-{os.geteuid()}"
    private_dir(root)
    st = os.lstat(root)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()


def test_a_world_readable_directory_is_repaired_with_a_log_line(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    os.chmod(folder, 0o755)
    with caplog.at_level(logging.WARNING, logger="helixgate.bulk"):
        private_dir(folder)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert any("had mode 755" in r.getMessage() and "changed to 0700" in r.getMessage() for r in caplog.records)


def test_a_symlink_or_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(BulkDirError, match="not a plain directory"):
        private_dir(link)
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 4242, 4242)
    with pytest.raises(BulkDirError, match="belongs to uid 4242"):
        private_dir(theirs)


def test_an_unsafe_directory_refuses_the_job_without_saying_where(owner_redis: RedisServer, tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "planted"
    link.symlink_to(target)
    with KeyedApp(Settings(redis_url=owner_redis.url, bulk_dir=str(link))) as app:
        r = httpx.post(f"{app.url}/fhir/$convert", content=unique_message(1, "OX"),
                       headers={**V2, "Prefer": "respond-async"}, timeout=10)
    assert r.status_code == 500
    text = r.json()["issue"][0]["details"]["text"]
    assert "not private" in text and str(tmp_path) not in text
    assert list(target.iterdir()) == []
