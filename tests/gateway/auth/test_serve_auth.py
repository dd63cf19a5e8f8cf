"""Auth on by default: `helixgate serve` (a real subprocess) refuses an address other machines may reach unless
credentials are configured or --insecure-no-auth is given, and with credentials configured it demands them on
loopback too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from gateway.auth.keys import KeyStore
from tests.conftest import ROOT, free_port

UNREACHABLE = "192.0.2.1"  # TEST-NET-1 (RFC 5737): not this machine's, so passing the check ends in a bind error
TRANSLATE = "/fhir/ConceptMap/$translate?system=urn:oid:2.16.156.10011.2.3.3.4&code=2"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELIXGATE_", "PYTEST_"))}
    return {**env, **extra}


def serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", "serve", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_serve_refuses_a_public_address_without_credentials() -> None:
    port = free_port()
    done = serve("--host", "0.0.0.0", "--port", str(port), env=_env())
    assert done.returncode == 2
    assert "refusing to serve 0.0.0.0 without access control" in done.stderr
    assert "HELIXGATE_API_KEYS_FILE" in done.stderr and "--insecure-no-auth" in done.stderr
    assert "Nothing was started" in done.stderr
    with httpx.Client(timeout=2) as client:  # and it did not listen, even briefly
        try:
            client.get(f"http://127.0.0.1:{port}/healthz")
            raise AssertionError("something answered on the refused port")
        except httpx.ConnectError:
            pass
    env_host = serve("--port", str(port), env=_env(HELIXGATE_HOST="::"))
    assert env_host.returncode == 2 and "refusing to serve ::" in env_host.stderr


def test_insecure_no_auth_passes_the_check_with_a_loud_warning() -> None:
    done = serve("--host", UNREACHABLE, "--port", str(free_port()), "--insecure-no-auth", env=_env())
    assert "ACCESS CONTROL IS OFF" in done.stderr and "refusing" not in done.stderr
    assert done.returncode == 1 and "cannot listen" in done.stdout + done.stderr  # the bind, not the check, failed


def test_configured_credentials_pass_the_check(tmp_path: Path) -> None:
    done = serve("--host", UNREACHABLE, "--port", str(free_port()),
                 env=_env(HELIXGATE_API_KEYS_FILE=str(tmp_path / "keys.json")))
    assert done.returncode == 1 and "refusing" not in done.stderr
    assert "access control on: api-key" in done.stderr


def test_with_credentials_configured_loopback_needs_them_too(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, _ = store.create("lab", ["system/$translate"], datetime.now(UTC) + timedelta(hours=1))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port)], cwd=ROOT,
                            env=_env(HELIXGATE_API_KEYS_FILE=str(store.path)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(url + TRANSLATE, timeout=10).status_code == 401
        assert httpx.get(url + TRANSLATE, headers={"Authorization": f"ApiKey {key}"}, timeout=20).status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)
