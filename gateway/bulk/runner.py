"""Running a bulk $convert job on a worker: split the input, convert each document to a Bundle, write the
resources as NDJSON per type (each resource once; references made relative), record progress and finish with
the manifest's file lists. A cancelled job stops between documents and its files are removed."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.bulk.documents import Document, documents
from gateway.bulk.jobs import PENDING_TTL, bulk_dir, job_key, job_state
from gateway.bulk.storage import BulkDirError, open_private, private_dir
from gateway.convert import run
from gateway.formats import HUB, Request
from gateway.sandbox import WORKER, Sandbox, sandbox_for
from gateway.settings import Settings
from mappers.exceptions import Issue, MappingError, operation_outcome
from mappers.toolkit.registry import ConvertOptions, registry

log = logging.getLogger("helixgate.bulk")
_PROGRESS_EVERY = 0.25  # seconds between progress writes to Redis


class NdjsonWriter:
    """One `<Type>.ndjson` per resource type under `folder` (0700; files 0600), plus OperationOutcome.ndjson for
    errors."""

    def __init__(self, folder: Path) -> None:
        self.folder = private_dir(folder)
        self._files: dict[str, IO[bytes]] = {}
        self.counts: dict[str, int] = {}
        self.errors = 0
        self._seen: set[tuple[str, str]] = set()
        self._error_file: IO[bytes] | None = None

    def _file(self, rtype: str) -> IO[bytes]:
        f = self._files.get(rtype)
        if f is None:
            f = self._files[rtype] = open_private(self.folder / f"{rtype}.ndjson")  # closed in close()
        return f

    def bundle(self, bundle: dict[str, Any]) -> None:
        local = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
                 for e in bundle.get("entry", []) if e.get("fullUrl") and (e.get("resource") or {}).get("id")}
        for entry in bundle.get("entry", []):
            res = entry.get("resource") or {}
            key = (res.get("resourceType", ""), res.get("id", ""))
            if not key[0] or key in self._seen:
                continue
            self._seen.add(key)
            line = orjson.dumps(res)
            for full, rel in local.items():  # urn:uuid references → Type/id, which resolve within the export
                line = line.replace(f'"reference":"{full}"'.encode(), f'"reference":"{rel}"'.encode())
            self._file(key[0]).write(line + b"\n")
            self.counts[key[0]] = self.counts.get(key[0], 0) + 1

    def error(self, where: str, outcome: dict[str, Any]) -> None:
        if self._error_file is None:
            self._error_file = open_private(self.folder / "OperationOutcome.ndjson")
        located = {**outcome, "issue": [
            Issue("information", "informational", "bulk-document", f"the issues below concern {where}").to_fhir(),
            *outcome.get("issue", [])]}
        self._error_file.write(orjson.dumps(located) + b"\n")
        self.errors += 1

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        if self._error_file is not None:
            self._error_file.close()

    def outputs(self) -> list[dict[str, Any]]:
        return [{"type": t, "file": f"{t}.ndjson", "count": n} for t, n in sorted(self.counts.items())]

    def error_files(self) -> list[dict[str, Any]]:
        return [{"type": "OperationOutcome", "file": "OperationOutcome.ndjson", "count": self.errors}] \
            if self.errors else []


def _convert(doc: Document, timezone: str | None, sandbox: Sandbox | None) -> dict[str, Any] | dict[str, str]:
    """A validated Bundle, or {'error': OperationOutcome JSON} for a document that cannot be converted. With a
    sandbox each document runs under the worker's per-message budget (time, memory): one past it is an error
    line, and the job goes on."""
    if doc.error:
        return {"error": orjson.dumps(operation_outcome([Issue("error", "invalid", "bulk-bad-line", doc.error,
                                                                doc.where)])).decode()}
    fmt = registry().get(doc.source or "")
    if fmt is None or fmt.to_fhir is None:
        text = f"no conversion from {doc.source or 'an unrecognised format'} to FHIR"
        return {"error": orjson.dumps(operation_outcome([Issue("error", "not-supported", "unsupported-format", text,
                                                                doc.where)])).decode()}
    request = Request(fmt.name, HUB, ConvertOptions(timezone=timezone))
    try:
        if sandbox is not None:
            result = sandbox.call(("convert", doc.data, request))
        else:
            result = run(doc.data, request, _validator())
    except MappingError as e:
        return {"error": orjson.dumps(operation_outcome(e.issues)).decode()}
    return orjson.loads(result.body)


def _validator() -> Any:
    """The process's validator over the installed packages; None when they are missing (then every document is
    refused naming the install command: outputs are not written unvalidated)."""
    from profiles.context import default_validator
    from profiles.packages import PackageError

    try:
        return default_validator()
    except PackageError:
        return None


def sweep(root: Path, expires: float) -> None:
    """Remove the folders of expired jobs: finished ones older than `expires` seconds, never-run ones older than
    PENDING_TTL."""
    if not root.is_dir():
        return
    now = time.time()
    for folder in root.iterdir():
        if not folder.is_dir():
            continue
        age = now - folder.stat().st_mtime
        if age > (PENDING_TTL if (folder / "input").exists() else expires):
            shutil.rmtree(folder, ignore_errors=True)


async def run_job(client: Any, settings: Settings, job: str) -> None:
    """Run bulk job `job` to the end (or until cancelled). Raises RedisError when Redis goes away meanwhile
    (the job entry then stays pending and is run again)."""
    key = job_key(job)
    state = await job_state(client, job)
    if state.get("status") not in ("queued", "running"):
        return  # unknown, expired, cancelled or already finished
    root = bulk_dir(settings)
    folder = root / job
    try:
        await asyncio.to_thread(private_dir, root)
    except BulkDirError as e:
        log.error("bulk job %s not run: %s", job, e)
        await client.hset(key, mapping={"status": "failed", "reason": "the bulk directory is not private"})
        return
    await asyncio.to_thread(sweep, root, settings.bulk_expires_seconds)
    input_path = folder / "input"
    if not input_path.is_file():
        await client.hset(key, mapping={"status": "failed", "reason": "the input file is missing"})
        return
    await client.hset(key, mapping={"status": "running", "started": f"{time.time():.3f}"})
    data = await asyncio.to_thread(input_path.read_bytes)
    docs = await asyncio.to_thread(lambda: list(documents(data, state.get("media", ""), state.get("source") or None)))
    await client.hset(key, "total", len(docs))
    out = folder / "output"
    shutil.rmtree(out, ignore_errors=True)  # a rerun after a crash starts over
    writer = NdjsonWriter(out)
    timezone = state.get("timezone") or None
    sandbox = (sandbox_for(settings.worker_processes, settings.worker_message_timeout_ms,
                           settings.worker_message_memory_mb, WORKER) if settings.worker_processes else None)
    last = time.monotonic()
    try:
        for number, doc in enumerate(docs, 1):
            result = await asyncio.to_thread(_convert, doc, timezone, sandbox)
            if "error" in result:
                writer.error(doc.where, orjson.loads(result["error"]))
            else:
                writer.bundle(result)
            if time.monotonic() - last >= _PROGRESS_EVERY:
                last = time.monotonic()
                await client.hset(key, mapping={"done": number, "errors": writer.errors})
                if (await client.hget(key, "status")) == b"cancelled":
                    writer.close()
                    shutil.rmtree(folder, ignore_errors=True)
                    return
    finally:
        writer.close()
    if (await client.hget(key, "status")) == b"cancelled":
        shutil.rmtree(folder, ignore_errors=True)
        return
    input_path.unlink(missing_ok=True)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"status": "completed", "done": len(docs), "errors": writer.errors,
                            "completed": f"{time.time():.3f}", "output": orjson.dumps(writer.outputs()),
                            "error": orjson.dumps(writer.error_files())})
    pipe.expire(key, settings.bulk_expires_seconds)
    await pipe.execute()
