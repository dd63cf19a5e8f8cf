"""helixgate exchange from the command line, as a user runs it (subprocesses, a private Redis)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import redis

from gateway.exchange.counters import PREFIX
from gateway.exchange.trail import HEAD, STREAM
from tests.conftest import RedisServer
from tests.gateway.exchange.conftest import EXAMPLES, SECRETS


def helixgate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", "exchange", *args], capture_output=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_transfers_counters_reidentify_and_audit(redis_server: RedisServer, routes_file: Path, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_server.url)
    for k in client.scan_iter(match=PREFIX + "*"):
        client.delete(k)
    client.delete(STREAM, HEAD)
    env = {"HELIXGATE_REDIS_URL": redis_server.url, "HELIXGATE_EXCHANGE_ROUTES": str(routes_file)}
    research = ["--route", "eu-cn-research", "--purpose", "research", "--mechanism", "EU-SCC-2021-914-M1-0007"]

    dry = helixgate(str(EXAMPLES / "cn-lab-record.utf8.xml"), *research, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    doc = orjson.loads(dry.stdout)
    assert doc["parameter"][0] == {"name": "decision", "valueCode": "permit"}
    assert client.xlen(STREAM) == 0

    sent = helixgate(str(EXAMPLES / "cn-lab-record.utf8.xml"), *research, "-o", str(tmp_path / "out.json"), env=env)
    assert sent.returncode == 0, sent.stderr
    out = (tmp_path / "out.json").read_bytes()
    for secret in SECRETS["cda-cn"]:
        assert secret.encode() not in out
    bundle = orjson.loads(out)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    pseudonym = patient["identifier"][0]["value"]

    refused = helixgate(str(EXAMPLES / "oru-egfr-somatic.hl7"), "--route", "cn-eu-treatment", "--purpose",
                        "treatment", "--mechanism", "CN-SC-2026-0042", "--consent",
                        str(EXAMPLES / "exchange" / "consents.json"), env=env)
    assert refused.returncode == 3 and b"refused by rule genetic" in refused.stderr and refused.stdout == b""

    counters = helixgate("counters", env=env)
    assert counters.returncode == 0
    assert b"eu-biobank-1\t" in counters.stdout and b"\t1  (eu-cn-research: warn 80000, stop 100000)" in \
        counters.stdout

    candidates = tmp_path / "mpi.txt"
    candidates.write_text("urn:oid:2.16.156.10011.1.3|110105198503121235\n"
                          "urn:oid:2.16.156.10011.1.3|110105198503121234\n")
    found = helixgate("reidentify", pseudonym, "--route", "eu-cn-research", "--candidates", str(candidates), env=env)
    assert found.returncode == 0 and found.stdout.strip() == b"urn:oid:2.16.156.10011.1.3|110105198503121234"
    candidates.write_text("urn:oid:2.16.156.10011.1.3|110105198503121235\n")
    assert helixgate("reidentify", pseudonym, "--route", "eu-cn-research", "--candidates", str(candidates),
                     env=env).returncode == 1

    exported = tmp_path / "trail.ndjson"
    assert helixgate("audit", "export", "-o", str(exported), env=env).returncode == 0
    lines = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    kinds = [e["event"]["subtype"][0]["code"] for e in lines]
    assert kinds == ["transfer", "transfer", "reidentify", "reidentify"]
    assert [e["event"]["outcome"] for e in lines] == ["0", "4", "0", "4"]
    assert pseudonym not in exported.read_text() and "110105198503121234" not in exported.read_text()
    ok = helixgate("audit", "verify", str(exported), env=env)
    assert ok.returncode == 0 and b"4 entries, hash chain intact" in ok.stdout
    assert helixgate("audit", "verify", env=env).returncode == 0
    lines[1]["event"]["outcome"] = "0"
    exported.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))
    broken = helixgate("audit", "verify", str(exported), env=env)
    assert broken.returncode == 1 and b"does not match its content" in broken.stderr


def test_keys_and_usage(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    assert helixgate("keys", "new", str(keys), "--id", "2026-01").returncode == 0
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert helixgate("keys", "new", str(keys), "--id", "2026-07").returncode == 0
    doc = orjson.loads(keys.read_bytes())
    assert doc["current"] == "2026-07" and set(doc["keys"]) == {"2026-01", "2026-07"}
    assert helixgate().returncode == 2
    missing = helixgate("x.hl7", "--route", "r", "--purpose", "p", env={"HELIXGATE_EXCHANGE_ROUTES": ""})
    assert missing.returncode == 2 and b"--routes" in missing.stderr
