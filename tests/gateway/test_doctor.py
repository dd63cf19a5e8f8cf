"""`helixgate doctor` against real parts: private Redis servers, the test upstream, API key files, certificates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import redis

from tests.conftest import RedisServer
from tests.pki import make_pki


def doctor(env: dict[str, str], tmp_path: Path) -> tuple[int, dict[str, list[dict[str, Any]]], str]:
    """Run the command with only the given HELIXGATE_* settings; findings grouped by check."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HELIXGATE_")}
    clean.update({"HELIXGATE_BULK_DIR": str(tmp_path / "bulk"), **env})
    proc = subprocess.run([sys.executable, "-m", "gateway.cli.main", "doctor", "--format", "json"], env=clean,
                          capture_output=True, text=True, timeout=120)
    found: dict[str, list[dict[str, Any]]] = {}
    for line in proc.stdout.splitlines():
        f = orjson.loads(line)
        found.setdefault(f["check"], []).append(f)
    return proc.returncode, found, proc.stdout + proc.stderr


def statuses(found: dict[str, list[dict[str, Any]]], check: str) -> list[str]:
    return [f["status"] for f in found.get(check, [])]


def keys_file(tmp_path: Path) -> str:
    path = tmp_path / "keys.json"
    env = {**os.environ, "HELIXGATE_API_KEYS_FILE": str(path)}
    subprocess.run([sys.executable, "-m", "gateway.cli.main", "keys", "create", "lab", "--scope", "system/$convert"],
                   env=env, check=True, capture_output=True, timeout=60)
    path.chmod(0o600)
    return str(path)


def test_redis_without_persistence_fails_and_says_how_to_fix(own_redis: RedisServer, tmp_path: Path) -> None:
    code, found, text = doctor({"HELIXGATE_REDIS_URL": own_redis.url}, tmp_path)
    assert code == 1, text
    persistence = found["redis persistence"][0]
    assert persistence["status"] == "fail" and "appendonly yes" in persistence["fix"]
    redis.Redis.from_url(own_redis.url).config_set("appendonly", "yes")
    redis.Redis.from_url(own_redis.url).config_set("maxmemory-policy", "allkeys-lru")
    code, found, text = doctor({"HELIXGATE_REDIS_URL": own_redis.url}, tmp_path)
    assert statuses(found, "redis persistence") == ["ok"], text
    assert statuses(found, "redis eviction") == ["fail"] and "noeviction" in found["redis eviction"][0]["fix"]
    assert statuses(found, "clock (redis)") == ["ok"]


def test_a_healthy_deployment_passes(own_redis: RedisServer, medplum_upstream: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(own_redis.url)
    client.config_set("appendonly", "yes")
    env = {"HELIXGATE_REDIS_URL": own_redis.url, "HELIXGATE_UPSTREAM_URL": medplum_upstream,
           "HELIXGATE_API_KEYS_FILE": keys_file(tmp_path)}
    code, found, text = doctor(env, tmp_path)
    assert code == 0, text
    assert statuses(found, "upstream") == ["ok"] and "CapabilityStatement" in found["upstream"][0]["detail"]
    assert statuses(found, "auth") == ["ok"] and "api-key" in found["auth"][0]["detail"]
    assert statuses(found, "bulk dir") == ["ok"] and statuses(found, "settings") == ["ok"]
    assert "fail" not in {f["status"] for fs in found.values() for f in fs}


def test_each_broken_part_is_named(tmp_path: Path) -> None:
    keys = tmp_path / "missing-keys.json"
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the bulk folder should be")
    env = {"HELIXGATE_PORT": "eighty", "HELIXGATE_UPSTREAM_URL": "http://127.0.0.1:9/fhir",
           "HELIXGATE_REDIS_URL": "redis://:s3cret-pass@127.0.0.1:9/0", "HELIXGATE_API_KEYS_FILE": str(keys),
           "HELIXGATE_BULK_DIR": str(blocked / "bulk")}
    code, found, text = doctor(env, tmp_path)
    assert code == 1
    assert statuses(found, "settings") == ["fail"] and "HELIXGATE_PORT" in found["settings"][0]["detail"]
    assert statuses(found, "upstream") == ["fail"]
    assert statuses(found, "redis") == ["fail"]
    assert statuses(found, "api keys") == ["fail"] and "keys create" in found["api keys"][0]["fix"]
    assert statuses(found, "bulk dir") == ["fail"]
    assert "s3cret-pass" not in text  # secrets never reach the output


def test_open_to_the_network_without_auth_fails(tmp_path: Path) -> None:
    code, found, _ = doctor({"HELIXGATE_HOST": "0.0.0.0"}, tmp_path)
    assert code == 1 and statuses(found, "auth") == ["fail"]
    code, found, _ = doctor({}, tmp_path)  # loopback: allowed, with a warning
    assert statuses(found, "auth") == ["warn"]


def test_keys_readable_by_others_and_certificates_near_expiry(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    keys = keys_file(tmp_path)
    Path(keys).chmod(0o644)
    env = {"HELIXGATE_API_KEYS_FILE": keys, "HELIXGATE_TLS_CERT": pki.server.cert, "HELIXGATE_TLS_KEY": pki.server.key,
           "HELIXGATE_MLLP_TLS_CERT": pki.expired.cert, "HELIXGATE_MLLP_TLS_KEY": pki.expired.key}
    code, found, text = doctor(env, tmp_path)
    assert statuses(found, "api keys") == ["warn"] and "chmod 600" in found["api keys"][0]["fix"]
    assert statuses(found, "https") == ["warn"] and "expires in" in found["https"][0]["detail"], text
    assert statuses(found, "mllp tls") == ["fail"] and "expired" in found["mllp tls"][0]["detail"]
    assert code == 1


def test_the_checks_import_nothing_while_they_run() -> None:
    """The checks run side by side in threads; an import inside one of them raced another's on the same package's
    module locks (a _DeadlockError reported as a failed check). Everything they use is imported with the module."""
    import ast

    import gateway.doctor

    tree = ast.parse(Path(gateway.doctor.__file__).read_text())
    late = [f"{fn.name}: line {node.lineno}" for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
            for node in ast.walk(fn) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert late == []
