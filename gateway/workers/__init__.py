"""Workers: consume the Redis streams (inbound messages, bulk jobs), convert, validate and deliver upstream."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from gateway.audit import AuditLog
from gateway.cache import make_cache
from gateway.settings import Settings, SettingsError
from gateway.upstream import make_upstream
from gateway.workers.pipeline import Pipeline
from gateway.workers.streams import AUDIT, redis_client
from gateway.workers.worker import Worker, WorkerOptions, run_until_signalled

log = logging.getLogger("helixgate.worker")


@contextlib.asynccontextmanager
async def open_worker(settings: Settings, *, name: str = "", validator: Any = None) -> AsyncIterator[Worker]:
    """A Worker wired from `settings` (Redis, upstream, cache, audit, bulk jobs), closed on exit.

    `validator` is used when HELIXGATE_WORKER_VALIDATE is on (the caller loads it: it takes seconds).
    Raises SettingsError without HELIXGATE_REDIS_URL.
    """
    from gateway.bulk import run_job

    if not settings.redis_url:
        raise SettingsError("the worker needs HELIXGATE_REDIS_URL (it consumes Redis streams)")
    client = redis_client(settings.redis_url, timeout=5.0)  # longer than the blocking XREADGROUP
    upstream = make_upstream(settings)
    cache = make_cache(settings.redis_url, settings.cache_ttl_seconds, settings.cache_max_entries)
    audit = AuditLog(client, stream=AUDIT, upstream=upstream if settings.audit_upstream else None)
    pipeline = None
    if upstream is not None:
        pipeline = Pipeline(upstream, cache, validator if settings.worker_validate else None, settings.v2_timezone)
    else:
        log.warning("no HELIXGATE_UPSTREAM_URL: this worker runs bulk jobs only; inbound messages wait")

    async def bulk(entry_id: str, fields: dict[bytes, bytes]) -> None:
        await run_job(client, settings, fields.get(b"job", b"").decode())

    options = WorkerOptions(concurrency=settings.worker_concurrency, claim_idle_ms=settings.worker_claim_idle_ms,
                            max_attempts=settings.worker_max_attempts, name=name)
    worker = Worker(client, pipeline, options, bulk=bulk, audit=audit)
    try:
        yield worker
    finally:
        await audit.close()
        await cache.close()
        if upstream is not None:
            await upstream.aclose()
        with contextlib.suppress(Exception):
            await client.aclose()


__all__ = ["Pipeline", "Worker", "WorkerOptions", "open_worker", "run_until_signalled"]
