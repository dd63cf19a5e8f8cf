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
from gateway.workers.budget import Budget, BudgetedPipeline, ConversionPool, StartFailed
from gateway.workers.pipeline import Pipeline
from gateway.workers.streams import AUDIT, redis_client
from gateway.workers.worker import Worker, WorkerOptions, run_until_signalled

log = logging.getLogger("helixgate.worker")


@contextlib.asynccontextmanager
async def open_worker(settings: Settings, *, name: str = "", validator: Any = None) -> AsyncIterator[Worker]:
    """A Worker wired from `settings` (Redis, upstream, cache, audit, bulk jobs), closed on exit.

    Conversions run in budgeted processes (HELIXGATE_WORKER_PROCESSES, gateway.workers.budget), which load the
    validator themselves; `validator` is used only with HELIXGATE_WORKER_PROCESSES=0 (in-process conversion).
    Raises SettingsError without HELIXGATE_REDIS_URL, StartFailed when the conversion processes cannot start.
    """
    from gateway.bulk import run_job

    if not settings.redis_url:
        raise SettingsError("the worker needs HELIXGATE_REDIS_URL (it consumes Redis streams)")
    client = redis_client(settings.redis_url, timeout=5.0)  # longer than the blocking XREADGROUP
    upstream = make_upstream(settings)
    cache = make_cache(settings.redis_url, settings.cache_ttl_seconds, settings.cache_max_entries)
    audit = AuditLog(client, stream=AUDIT, upstream=upstream if settings.audit_upstream else None)
    pipeline: Pipeline | None = None
    pool: ConversionPool | None = None
    if upstream is not None and settings.worker_processes > 0:
        budget = Budget(settings.worker_message_timeout_ms / 1000, settings.worker_message_memory_mb,
                        settings.worker_processes)
        pool = ConversionPool(budget, validate=settings.worker_validate, timezone=settings.v2_timezone)
        try:
            await pool.start()
        except BaseException:
            await pool.close()
            raise
        pipeline = BudgetedPipeline(upstream, cache, pool)
    elif upstream is not None:
        pipeline = Pipeline(upstream, cache, validator if settings.worker_validate else None, settings.v2_timezone)
    else:
        log.warning("no HELIXGATE_UPSTREAM_URL: this worker runs bulk jobs only; inbound messages wait")

    async def bulk(entry_id: str, fields: dict[bytes, bytes]) -> None:
        await run_job(client, settings, fields.get(b"job", b"").decode())

    options = WorkerOptions(concurrency=settings.worker_concurrency, claim_idle_ms=settings.worker_claim_idle_ms,
                            max_attempts=settings.worker_max_attempts, name=name,
                            budget_attempts=settings.worker_budget_attempts, grace=settings.worker_grace_ms / 1000)
    worker = Worker(client, pipeline, options, bulk=bulk, audit=audit)
    try:
        yield worker
    finally:
        if pool is not None:
            await pool.close()
        await audit.close()
        await cache.close()
        if upstream is not None:
            await upstream.aclose()
        with contextlib.suppress(Exception):
            await client.aclose()


__all__ = ["Pipeline", "StartFailed", "Worker", "WorkerOptions", "open_worker", "run_until_signalled"]
