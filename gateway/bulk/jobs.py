"""Bulk $convert over HTTP, after the FHIR Bulk Data conventions (HL7/bulk-data 3.0.0, async pattern).

    POST /fhir/$convert  (Prefer: respond-async, an NDJSON body, or several HL7 v2 messages)
         → 202, Content-Location: [base]/fhir/bulk/{job}
    GET  /fhir/bulk/{job}            → 202 + X-Progress + Retry-After while queued or running;
                                       200 + Expires + manifest (output[], error[]) when done;
                                       500 + OperationOutcome when the job failed; 404 unknown, expired or cancelled
    DELETE /fhir/bulk/{job}          → 202: cancelled, its files removed
    GET  /fhir/bulk/{job}/{Type}.ndjson  an output file (application/fhir+ndjson)

Jobs live in Redis (a hash per job, and an entry on the bulk stream that a worker takes); input and output files
live under HELIXGATE_BULK_DIR (private: see gateway.bulk.storage).

A job belongs to the client that kicked it off (its Principal's client and how it was proven): anyone else gets the
404 of a job that does not exist, not a 403 that would confirm it does (FHIR security page: do not reveal that
data exists). With auth off every caller is ANONYMOUS, so anonymous jobs stay usable by anyone.
"""

from __future__ import annotations

import email.utils
import logging
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from redis.exceptions import RedisError, ResponseError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from gateway.auth.principal import Principal, principal_of
from gateway.bulk.documents import NDJSON_TYPES
from gateway.bulk.storage import BulkDirError, job_dir, root_of, write_private
from gateway.formats import HUB, media_source
from gateway.redis_client import is_cluster
from gateway.responses import outcome_response
from gateway.settings import Settings
from gateway.workers.streams import BULK, TAG

log = logging.getLogger("helixgate.bulk")
JOB_PREFIX = TAG + ":bulk:job:"  # the bulk stream's hash tag: a job's hash and its entry are added in one MULTI
LEGACY_JOB_PREFIX = "helixgate:bulk:job:"  # before the tag; renamed on first read (job_state)
PENDING_TTL = 7 * 24 * 3600  # a job nobody runs is forgotten after a week
_FILE = re.compile(r"[A-Za-z]{1,64}\.ndjson\Z")
_JOB = re.compile(r"[0-9a-f]{32}\Z")


def bulk_dir(settings: Settings) -> Path:
    """The root of the job folders: HELIXGATE_BULK_DIR, or <temp dir>/helixgate-bulk-<uid>."""
    return root_of(settings.bulk_dir)


def job_key(job: str) -> str:
    return JOB_PREFIX + job


async def job_state(client: Any, job: str) -> dict[str, str]:
    """The job's hash ({} when there is none). A job kicked off before the hash tag (single server only) is
    renamed to its tagged key on first read, so pollers and workers find it after an upgrade."""
    raw = await client.hgetall(job_key(job))
    if not raw and not is_cluster(client):
        try:
            moved = await client.renamenx(LEGACY_JOB_PREFIX + job, job_key(job))
        except ResponseError:  # no such key
            moved = False
        if moved:
            raw = await client.hgetall(job_key(job))
    return {k.decode(): v.decode() for k, v in raw.items()}


def wants_async(request: Request, body: bytes, media: str) -> bool:
    """Whether this $convert becomes a bulk job: Prefer: respond-async, or an NDJSON body. (A batch file sent
    without respond-async is converted synchronously, one Bundle per document.)"""
    return "respond-async" in request.headers.get("prefer", "").lower() or media in NDJSON_TYPES


async def kickoff(request: Request, body: bytes, media: str) -> Response:
    """Store the input, create the job and queue it; 202 with the polling URL in Content-Location."""
    client = getattr(request.app.state, "redis", None)
    if client is None:
        return outcome_response(501, "not-supported", "bulk-needs-redis",
                                "asynchronous $convert needs Redis (set HELIXGATE_REDIS_URL) and a running "
                                "`helixgate worker`; send one document without Prefer: respond-async instead")
    q = request.query_params
    if media_source(media) == HUB and body.lstrip()[:1] == b"{":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and doc.get("resourceType") in ("Parameters", "Binary"):
            body, media = orjson.dumps(doc), "application/fhir+ndjson"  # one document, read as an NDJSON line
    source = q.get("source") or (media_source(media, body) if media not in NDJSON_TYPES else None)
    target = q.get("target") or HUB
    if target != HUB:
        return outcome_response(400, "not-supported", "bulk-target",
                                f"a bulk $convert writes FHIR NDJSON; target {target!r} is only converted one "
                                "document at a time")
    if not body.strip():
        return outcome_response(400, "required", "empty-input", "the request body is empty")
    settings: Settings = request.app.state.settings
    job = uuid.uuid4().hex
    try:
        folder = await run_in_threadpool(_write_input, bulk_dir(settings), job, body)
    except BulkDirError as e:
        log.error("bulk job refused: %s", e)
        return outcome_response(500, "exception", "bulk-dir-unsafe",
                                "the gateway's bulk directory is not private; the gateway log says why")
    owner = principal_of(request)
    auth_on = bool(getattr(getattr(request.app.state, "auth", None), "enabled", False))  # gateway.auth.middleware
    state = {"status": "queued", "created": f"{time.time():.3f}", "request": str(request.url), "media": media,
             "source": source or "", "timezone": settings.v2_timezone or "", "total": "0", "done": "0",
             "errors": "0", **owner_fields(owner, auth_on)}
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hset(job_key(job), mapping=state)
        pipe.expire(job_key(job), PENDING_TTL)
        pipe.xadd(BULK, {"job": job})
        await pipe.execute()
    except (RedisError, OSError):
        await run_in_threadpool(shutil.rmtree, folder, True)
        return outcome_response(503, "transient", "bulk-redis-unavailable",
                                "the job store (Redis) is unavailable; try again later", headers={"Retry-After": "5"})
    status_url = f"{str(request.base_url).rstrip('/')}/fhir/bulk/{job}"
    return Response(status_code=202, headers={"Content-Location": status_url})


def _write_input(root: Path, job: str, body: bytes) -> Path:
    folder = job_dir(root, job)
    write_private(folder / "input", body)
    return folder


def owner_fields(principal: Principal, auth_on: bool = False) -> dict[str, str]:
    """What a job keeps of the principal that kicked it off: who (client, via) and whether its files need a
    credential (auth on, or a credential was used), never the credential itself."""
    return {"owner": principal.client, "owner_via": principal.via,
            "requires_token": "1" if auth_on or principal.authenticated else "0"}


def owned_by(state: dict[str, str], principal: Principal) -> bool:
    """Whether `principal` is the job's owner (jobs from before owners were kept count as anonymous)."""
    return (state.get("owner", "anonymous"), state.get("owner_via", "none")) == (principal.client, principal.via)


async def _state(request: Request) -> tuple[str, dict[str, str]] | Response:
    job = request.path_params["job"]
    client = getattr(request.app.state, "redis", None)
    if client is None:
        return outcome_response(404, "not-found", "bulk-unknown-job", "no bulk jobs without Redis")
    if not _JOB.match(job):
        return outcome_response(404, "not-found", "bulk-unknown-job", f"no bulk job {job!r}")
    try:
        state = await job_state(client, job)
    except (RedisError, OSError):
        return outcome_response(503, "transient", "bulk-redis-unavailable",
                                "the job store (Redis) is unavailable; poll again later", headers={"Retry-After": "5"})
    if not state or state.get("status") == "cancelled" or not owned_by(state, principal_of(request)):
        return outcome_response(404, "not-found", "bulk-unknown-job",
                                f"no bulk job {job}: it never existed, expired or was cancelled")
    return job, state


def manifest(state: dict[str, str], base: str, job: str) -> dict[str, Any]:
    def files(kind: str) -> list[dict[str, Any]]:
        return [{"type": f["type"], "url": f"{base}/fhir/bulk/{job}/{f['file']}", "count": f["count"]}
                for f in orjson.loads(state.get(kind) or "[]")]

    done = float(state.get("completed") or time.time())
    return {"transactionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(done)),
            "request": state.get("request", ""), "requiresAccessToken": state.get("requires_token") == "1",
            "output": files("output"), "error": files("error")}


async def status_route(request: Request) -> Response:
    found = await _state(request)
    if isinstance(found, Response):
        return found
    job, state = found
    settings: Settings = request.app.state.settings
    if request.method == "DELETE":
        pipe = request.app.state.redis.pipeline(transaction=True)
        pipe.hset(job_key(job), "status", "cancelled")
        pipe.expire(job_key(job), 3600)
        await pipe.execute()
        await run_in_threadpool(shutil.rmtree, bulk_dir(settings) / job, True)
        return Response(status_code=202)
    status = state.get("status")
    if status in ("queued", "running"):
        total, done = int(state.get("total") or 0), int(state.get("done") or 0)
        progress = f"{done}/{total} documents" if total else status
        return Response(status_code=202, headers={"X-Progress": progress, "Retry-After": "1"})
    if status == "failed":
        return outcome_response(500, "exception", "bulk-job-failed", f"the bulk job failed: {state.get('reason')}")
    base = str(request.base_url).rstrip("/")
    expires = float(state.get("completed") or time.time()) + settings.bulk_expires_seconds
    return Response(orjson.dumps(manifest(state, base, job)), media_type="application/json",
                    headers={"Expires": email.utils.formatdate(expires, usegmt=True)})


async def file_route(request: Request) -> Response:
    found = await _state(request)
    if isinstance(found, Response):
        return found
    job, state = found
    name = request.path_params["file"]
    path = bulk_dir(request.app.state.settings) / job / "output" / name
    if state.get("status") != "completed" or not _FILE.match(name) or not path.is_file():
        return outcome_response(404, "not-found", "bulk-unknown-file", f"job {job} has no output file {name!r}")
    return FileResponse(path, media_type="application/fhir+ndjson")


routes = [
    Route("/fhir/bulk/{job}", status_route, methods=["GET", "DELETE"]),
    Route("/fhir/bulk/{job}/{file}", file_route, methods=["GET"]),
]
