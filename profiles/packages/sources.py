"""Where packages come from: a FHIR package registry over HTTP, then the npm client.

A FHIR package registry serves `GET {registry}/{name}/{version}` as a .tgz and `GET {registry}/{name}` as an
npm-style document whose `versions` object lists what it has. The npm client is used as the machine has it
configured (`npm pack`, `npm view`), so this code names no registry host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from profiles.packages.exceptions import PackageError
from profiles.packages.model import PackageRef

if TYPE_CHECKING:
    import httpx  # imported when a registry is used: reading installed packages (every validator start) needs none

REGISTRY_ENV = "HELIXGATE_FHIR_REGISTRY"
HTTP_TIMEOUT = (60.0, 10.0)  # seconds: each read or write, and connecting
NPM_TIMEOUT = 900  # seconds; the largest package (the core definitions) is about 9 MB
_NOT_PUBLISHED = ("E404", "ETARGET")  # npm: no such package / no such version
_NPM_ENV = {"npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}

Log = Callable[[str], None]


class Sources:
    """The configured registry (if any) first, then npm. `fetch` and `versions` return None / [] for what is
    published nowhere, and raise PackageError for failures a person must fix (npm missing, network down)."""

    def __init__(self, registry: str | None, log: Log) -> None:
        self.registry = registry.rstrip("/") if registry else None
        self.log = log
        self._client: httpx.Client | None = None
        self._registry_down = False
        self._versions: dict[str, list[str]] = {}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=httpx.Timeout(HTTP_TIMEOUT[0], connect=HTTP_TIMEOUT[1]),
                                        follow_redirects=True,
                                        headers={"Accept": "application/gzip, application/json;q=0.9"})
        return self._client

    def _registry_failed(self, what: str, error: Exception) -> None:
        self._registry_down = True  # say it once, then stop waiting on it
        self.log(f"FHIR package registry {self.registry} unreachable while {what} ({error}); falling back to npm")

    def fetch(self, ref: PackageRef, workdir: Path) -> Path | None:
        """Downloads `ref` as a .tgz into `workdir`; None when neither source publishes it."""
        if self.registry and not self._registry_down:
            import httpx

            url = f"{self.registry}/{ref.name}/{ref.version}"
            target = workdir / f"{ref.name}-{ref.version}.tgz"
            try:
                with self._http().stream("GET", url) as response:
                    if response.status_code == 200:
                        with target.open("wb") as out:
                            for chunk in response.iter_bytes():
                                out.write(chunk)
                        self.log(f"{ref}: downloaded from {self.registry}")
                        return target
                    self.log(f"{ref}: the FHIR package registry answered HTTP {response.status_code}; trying npm")
            except httpx.HTTPError as e:
                self._registry_failed(f"fetching {ref}", e)
        return self.npm_pack(f"{ref.name}@{ref.version}", workdir)

    def versions(self, name: str) -> list[str]:
        """The versions published for `name`: the registry's list when it has one, else npm's (asked once)."""
        if name not in self._versions:
            self._versions[name] = self._list_versions(name)
        return self._versions[name]

    def _list_versions(self, name: str) -> list[str]:
        if self.registry and not self._registry_down:
            import httpx

            try:
                response = self._http().get(f"{self.registry}/{name}")
            except httpx.HTTPError as e:
                self._registry_failed(f"listing {name}", e)
            else:
                if response.status_code == 200:
                    try:
                        listed = list((orjson.loads(response.content).get("versions") or {}).keys())
                    except (orjson.JSONDecodeError, AttributeError):
                        listed = []  # not a registry document; npm decides
                    if listed:
                        return listed
        out = self._npm(["view", name, "versions", "--json"], Path(tempfile.gettempdir()),
                        f"listing the versions of {name}")
        if out is None or not out.strip():
            return []  # unknown to npm, or a name with no versions (hl7.fhir.r4.core)
        listed = orjson.loads(out)
        return [listed] if isinstance(listed, str) else [str(v) for v in listed]

    def npm_pack(self, spec: str, workdir: Path) -> Path | None:
        """`npm pack NAME@VERSION` into `workdir`; None when npm has no such package or version."""
        self.log(f"{spec}: fetching with npm pack")
        out = self._npm(["pack", spec, "--json", "--pack-destination", str(workdir)], workdir, f"fetching {spec}")
        if out is None:
            return None
        try:
            return workdir / orjson.loads(out)[0]["filename"]
        except (orjson.JSONDecodeError, LookupError, TypeError):
            tarballs = sorted(workdir.glob("*.tgz"))
            if not tarballs:
                raise PackageError(f"npm pack {spec} printed no tarball name and wrote no .tgz") from None
            return tarballs[-1]

    def _npm(self, args: list[str], cwd: Path, what: str) -> bytes | None:
        npm = shutil.which("npm")
        if npm is None:
            raise PackageError(f"npm is not on PATH (needed for {what}): install Node.js with npm, or set "
                               f"{REGISTRY_ENV} (or --registry) to a FHIR package registry that has it")
        try:
            proc = subprocess.run([npm, *args, "--loglevel=error"], cwd=cwd, capture_output=True,
                                  timeout=NPM_TIMEOUT, env={**os.environ, **_NPM_ENV}, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PackageError(f"npm timed out after {NPM_TIMEOUT} s while {what}; check the network and "
                               "`npm config get registry`") from None
        if proc.returncode == 0:
            return proc.stdout
        code, summary = _npm_error(proc)
        if code in _NOT_PUBLISHED:
            return None
        raise PackageError(f"npm failed while {what}: {summary or 'exit code ' + str(proc.returncode)}; check the "
                           "network and `npm config get registry`")


def _npm_error(proc: subprocess.CompletedProcess[bytes]) -> tuple[str, str]:
    """npm's error code and summary: from its --json error document, else from its `npm error` lines."""
    try:
        error = orjson.loads(proc.stdout)["error"]
        return str(error.get("code", "")), str(error.get("summary", "")).strip()
    except (orjson.JSONDecodeError, LookupError, TypeError, AttributeError):
        pass
    lines = [ln.removeprefix("npm error").strip() for ln in proc.stderr.decode(errors="replace").splitlines()
             if ln.startswith("npm error")]
    code = next((ln.split()[1] for ln in lines if ln.startswith("code ") and len(ln.split()) > 1), "")
    return code, "; ".join(ln for ln in lines if ln and not ln.startswith(("code ", "A complete log")))[:500]

