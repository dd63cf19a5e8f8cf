"""The TOML configuration file: keys mirror the HELIXGATE_* variables, the environment wins, typos are refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.config_file import ConfigError, apply, known_variables, read
from tests.conftest import free_port


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "helixgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_keys_and_tables_name_variables(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 8099\nredis_url = "redis://127.0.0.1:6380/0"\n[mllp]\nport = 2575\nreuse_port = true'
                           '\n[worker]\nvalidate = false\n[rate_limits]\nanonymous = "10/s burst 20"\n')
    assert read(path) == {"HELIXGATE_PORT": "8099", "HELIXGATE_REDIS_URL": "redis://127.0.0.1:6380/0",
                          "HELIXGATE_MLLP_PORT": "2575", "HELIXGATE_MLLP_REUSE_PORT": "true",
                          "HELIXGATE_WORKER_VALIDATE": "false",
                          "HELIXGATE_RATE_LIMITS": '{"anonymous":"10/s burst 20"}'}


def test_the_environment_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 8099\ncache_ttl = 60\n")
    env = {"HELIXGATE_PORT": "9000"}
    assert apply(path, env) == ["HELIXGATE_CACHE_TTL"]
    assert env == {"HELIXGATE_PORT": "9000", "HELIXGATE_CACHE_TTL": "60"}


@pytest.mark.parametrize(("text", "says"), [
    ("prot = 1\n", "unknown setting 'prot' (it would be HELIXGATE_PROT); did you mean 'port'?"),
    ("[mllp]\nmax_conections = 3\n", "unknown setting 'mllp.max_conections'"),
    ("port = \n", "not TOML"),
])
def test_mistakes_are_named(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=None) as e:
        read(write(tmp_path, text))
    assert says in str(e.value)


def test_every_variable_the_settings_read_is_known() -> None:
    assert {"HELIXGATE_PORT", "HELIXGATE_MLLP_TLS_CERT", "HELIXGATE_OAUTH_ISSUER", "HELIXGATE_FHIR_REGISTRY",
            "HELIXGATE_CACHE_DIR"} <= known_variables()


def test_the_cli_reports_a_bad_file_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "prot = 1\n")
    proc = subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(path), "packages", "list"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "did you mean 'port'" in proc.stderr
    env = {**os.environ, "HELIXGATE_CONFIG": str(path)}
    proc = subprocess.run([sys.executable, "-m", "gateway.cli.main", "packages", "list"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown setting 'prot'" in proc.stderr


def test_serve_takes_its_port_from_the_file(tmp_path: Path) -> None:
    port = free_port()
    path = write(tmp_path, f'host = "127.0.0.1"\nport = {port}\n[http]\nprocesses = 0\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIXGATE_")}
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "--config", str(path), "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "serve exited"
                time.sleep(0.1)
        else:
            pytest.fail("the server did not listen on the configured port")
        assert r.status_code == 200 and orjson.loads(r.content)["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(20)
