"""What a deployment installs: the built wheel (every data file in it, every example converting from it alone) and the
deployment files under deploy/ (the TOML file's keys known, compose wiring Redis with AOF, a non-root image)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from gateway.config_file import read

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PACKAGES = ("gateway", "mappers", "profiles", "conformance")


def tracked(*paths: str) -> list[str]:
    """Files of the repository under these paths: git's list in a clone, else the tree without caches."""
    if shutil.which("git") and (ROOT / ".git").exists():
        out = subprocess.run(["git", "ls-files", "-z", *paths], cwd=ROOT, capture_output=True, check=True).stdout
        return [p for p in out.decode().split("\0") if p and (ROOT / p).exists()]
    return [str(p.relative_to(ROOT)) for base in paths for p in (ROOT / base).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The wheel pip builds from the tracked sources (copied out, so the build leaves nothing in the tree)."""
    src = tmp_path_factory.mktemp("src")
    for rel in tracked("pyproject.toml", "README.md", *PACKAGES):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    yield next(out.glob("helixgate-*.whl"))


def test_the_wheel_holds_every_data_file(wheel: Path) -> None:
    data = {p for p in tracked(*PACKAGES) if not p.endswith(".py")}
    assert data, "no data files found under the packages"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert sorted(data - names) == []  # a table left out of the wheel breaks an installed gateway only


def test_the_installed_wheel_alone_converts_every_example(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    deps = [p for p in {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")} if p]
    examples = sorted(str(p) for p in (ROOT / "examples").iterdir()  # not the facts the conformance kit reads
                      if p.is_file() and not p.name.endswith(".facts.json"))
    # -S: no site module, so the development checkout's editable-install hook is not loaded; the dependencies come
    # from the interpreter's site-packages, helixgate only from the unpacked wheel.
    script = f"""
import sys
sys.path[:0] = [{str(site)!r}]
sys.path.extend({deps!r})
import json, gateway
from gateway.cli.main import main
results = {{"gateway": gateway.__file__}}
for i, path in enumerate({examples!r}):
    results[path] = main(["convert", path, "-o", f"out{{i}}.json"])
results["to-hl7v2"] = main(["convert", "out0.json", "--to", "hl7v2", "-o", "back.hl7"])
print(json.dumps(results))
"""
    proc = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = orjson.loads(proc.stdout.strip().splitlines()[-1])
    assert results.pop("gateway").startswith(str(site))
    assert examples and results == {**dict.fromkeys(examples, 0), "to-hl7v2": 0}, proc.stderr[-3000:]


def test_the_example_configuration_names_only_known_settings() -> None:
    settings = read(DEPLOY / "helixgate.toml")
    assert settings["HELIXGATE_API_KEYS_FILE"].startswith("/var/lib/helixgate/secrets/")
    assert settings["HELIXGATE_HOST"] == "0.0.0.0" and settings["HELIXGATE_MLLP_PORT"] == "2575"


def test_compose_runs_redis_with_aof_and_shares_the_volumes() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert redis[redis.index("--maxmemory-policy") + 1] == "noeviction"
    gateway, worker = services["gateway"], services["worker"]
    assert gateway["image"] == worker["image"] and gateway["volumes"] == worker["volumes"]
    mounted = {v.split(":")[1] for v in gateway["volumes"]}
    assert gateway["environment"]["HELIXGATE_CONFIG"] in mounted
    keys = read(DEPLOY / "helixgate.toml")["HELIXGATE_API_KEYS_FILE"]
    assert any(keys.startswith(m + "/") for m in mounted)  # `keys create` in one container, read by the others
    assert gateway["environment"]["HELIXGATE_REDIS_URL"].startswith("redis://redis:")


def test_the_image_runs_as_a_non_root_user_and_copies_what_exists() -> None:
    lines = [line.split() for line in (DEPLOY / "Dockerfile").read_text().splitlines()
             if line and not line.startswith("#")]
    stages = [i for i, w in enumerate(lines) if w[0] == "FROM"]
    assert len(stages) == 2  # build stage with npm and pip, runtime stage without them
    runtime = lines[stages[1]:]
    assert ["USER", "helixgate"] in runtime
    for words in lines:
        if words[0] == "COPY" and not any(w.startswith("--from") for w in words):
            for source in words[1:-1]:
                assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which the repository lacks"
