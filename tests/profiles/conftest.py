"""Fixtures for the FHIR package client: an isolated package cache, a FHIR package registry served on loopback,
and a stand-in `npm` on PATH so the registry tests stay off the network (one test uses the real npm)."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def definitions(name: str, version: str) -> list[dict[str, Any]]:
    """One resource of each type the validator reads, plus one it does not."""
    base = f"http://example.org/fhir/{name}"
    return [
        {"resourceType": "StructureDefinition", "id": "thing", "url": f"{base}/StructureDefinition/thing",
         "version": version, "kind": "resource", "type": "Observation", "derivation": "constraint"},
        {"resourceType": "ValueSet", "id": "codes", "url": f"{base}/ValueSet/codes", "version": version},
        {"resourceType": "CodeSystem", "id": "codes", "url": f"{base}/CodeSystem/codes", "version": version},
        {"resourceType": "Patient", "id": "example"},
    ]


def package_tgz(name: str, version: str, dependencies: dict[str, str] | None = None,
                extra: dict[str, bytes] | None = None) -> bytes:
    """A FHIR package tarball as registries serve it (without .index.json, like the IGs on npm)."""
    manifest = {"name": name, "version": version, "fhirVersions": ["4.0.1"], "dependencies": dependencies or {}}
    members = {"package/package.json": json.dumps(manifest).encode()}
    for r in definitions(name, version):
        members[f"package/{r['resourceType']}-{r['id']}.json"] = json.dumps(r).encode()
    members["package/example/Patient-other.json"] = b'{"resourceType": "Patient", "id": "other"}'
    members.update(extra or {})
    return tarball(members)


@dataclass
class Registry:
    """A FHIR package registry: GET /{name} lists versions, GET /{name}/{version} serves the .tgz."""

    url: str
    packages: dict[str, dict[str, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def add(self, name: str, version: str, dependencies: dict[str, str] | None = None) -> None:
        self.packages.setdefault(name, {})[version] = package_tgz(name, version, dependencies)


class _Handler(BaseHTTPRequestHandler):
    registry: Registry

    def do_GET(self) -> None:
        self.registry.requests.append(self.path)
        parts = [unquote(p) for p in self.path.strip("/").split("/")]
        versions = self.registry.packages.get(parts[0], {})
        if len(parts) == 1 and versions:
            doc = {"name": parts[0], "versions": {v: {"name": parts[0], "version": v} for v in versions}}
            self._send(200, "application/json", json.dumps(doc).encode())
        elif len(parts) == 2 and parts[1] in versions:
            self._send(200, "application/gzip", versions[parts[1]])
        else:
            self._send(404, "application/json", b'{"error": "not found"}')

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def _registry_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def registry(_registry_server: tuple[ThreadingHTTPServer, type[_Handler]]) -> Registry:
    server, handler = _registry_server
    handler.registry = Registry(f"http://127.0.0.1:{server.server_address[1]}/")
    return handler.registry


@pytest.fixture
def package_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fhir-packages"
    monkeypatch.setenv("HELIXGATE_FHIR_PACKAGE_CACHE", str(root))
    monkeypatch.delenv("HELIXGATE_FHIR_REGISTRY", raising=False)
    return root


FAKE_NPM = """\
import json, os, shutil, sys
store = os.environ["HELIXGATE_TEST_NPM_STORE"]
args = [a for a in sys.argv[1:] if not a.startswith("--loglevel")]
with open(os.path.join(store, "calls.log"), "a") as log:
    log.write(" ".join(args) + "\\n")
def missing(what, code="E404"):
    print(json.dumps({"error": {"code": code, "summary": "Not Found - " + what}}))
    sys.exit(1)
key = lambda name: name.replace("/", "__")
if args[0] == "pack":
    spec, dest = args[1], args[args.index("--pack-destination") + 1]
    name, _, version = spec.rpartition("@")
    source = os.path.join(store, key(name) + "@" + version + ".tgz")
    if not os.path.exists(source):
        missing(spec)
    filename = key(name) + "-" + version + ".tgz"
    shutil.copy(source, os.path.join(dest, filename))
    print(json.dumps([{"id": spec, "filename": filename}]))
elif args[0] == "view":
    prefix = key(args[1]) + "@"
    found = sorted(f[len(prefix):-4] for f in os.listdir(store) if f.startswith(prefix) and f.endswith(".tgz"))
    if not found:
        missing(args[1])
    print(json.dumps(found))
else:
    sys.exit("fake npm: unsupported " + " ".join(args))
"""


@dataclass
class FakeNpm:
    """`npm pack` / `npm view` answered from a folder of tarballs; everything else is E404, like npm."""

    store: Path

    def add(self, name: str, version: str, data: bytes) -> None:
        (self.store / f"{name.replace('/', '__')}@{version}.tgz").write_bytes(data)

    def calls(self) -> list[str]:
        log = self.store / "calls.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeNpm:
    bin_dir, store = tmp_path / "bin", tmp_path / "npm-store"
    bin_dir.mkdir()
    store.mkdir()
    script = bin_dir / "npm"
    script.write_text(f"#!{sys.executable}\n{FAKE_NPM}")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HELIXGATE_TEST_NPM_STORE", str(store))
    return FakeNpm(store)


def seed_core(root: Path) -> Path:
    """A stand-in hl7.fhir.r4.core#4.0.1 already in the cache, so the registry tests need no core build."""
    path = root / "hl7.fhir.r4.core#4.0.1" / "package"
    path.mkdir(parents=True)
    (path / "package.json").write_text(json.dumps({"name": "hl7.fhir.r4.core", "version": "4.0.1",
                                                   "fhirVersions": ["4.0.1"], "type": "Core"}))
    sd = {"resourceType": "StructureDefinition", "id": "Observation", "kind": "resource", "type": "Observation",
          "url": "http://hl7.org/fhir/StructureDefinition/Observation"}
    (path / "StructureDefinition-Observation.json").write_text(json.dumps(sd))
    return path
