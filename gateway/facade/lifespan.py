"""The lifespan resources of the integration engine: the Redis client, the upstream client and its addresses,
the audit log and, with HELIXGATE_MLLP_PORT, the MLLP listener."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from gateway.audit import AuditLog
from gateway.facade.addresses import Addresses
from gateway.settings import Settings, SettingsError
from gateway.upstream import make_upstream


@contextlib.asynccontextmanager
async def integration_resources(app: Any, settings: Settings) -> AsyncIterator[None]:
    """Opens what the engine needs for the app's lifetime: `app.state.redis`, `.upstream`, `.audit` and, with
    HELIXGATE_MLLP_PORT, the MLLP listener (`.mllp`). Raises SettingsError for a listener without Redis."""
    from gateway.workers.streams import AUDIT, Enqueuer, redis_client

    if settings.mllp_port is not None and not settings.redis_url:
        raise SettingsError("the MLLP listener needs HELIXGATE_REDIS_URL: messages are stored in a Redis stream "
                            "before they are acknowledged")
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    upstream = make_upstream(settings)
    audit = AuditLog(redis, stream=AUDIT, upstream=upstream if settings.audit_upstream else None)
    app.state.redis, app.state.upstream, app.state.audit = redis, upstream, audit
    app.state.addresses = Addresses([settings.upstream_url or "", *settings.upstream_aliases], settings.public_url,
                                    settings.trusted_proxies)
    app.state.mllp = None
    enqueuer = None
    try:
        if settings.mllp_port is not None and redis is not None:
            from gateway.mllp.ack import AckPolicy
            from gateway.mllp.listen import adopted
            from gateway.mllp.partners import Partners
            from gateway.mllp.server import MllpServer
            from gateway.tls import TlsConfig

            enqueuer = Enqueuer(redis, replicas=settings.redis_wait_replicas,
                                replica_timeout_ms=settings.redis_wait_timeout_ms)
            app.state.mllp = MllpServer(enqueuer, host=settings.mllp_host or settings.host, port=settings.mllp_port,
                                        max_message_bytes=settings.mllp_max_message_bytes,
                                        max_buffered_bytes=settings.mllp_max_buffered_bytes,
                                        max_connections=settings.mllp_max_connections,
                                        max_connections_per_peer=settings.mllp_max_connections_per_peer,
                                        max_segments=settings.mllp_max_segments,
                                        idle_timeout=settings.mllp_idle_timeout_ms / 1000,
                                        read_timeout=settings.mllp_read_timeout_ms / 1000,
                                        policy=AckPolicy(settings.mllp_ack_codes), audit=audit,
                                        reuse_port=settings.mllp_reuse_port, sock=adopted(),
                                        tls=TlsConfig.from_env("HELIXGATE_MLLP_TLS"), partners=Partners.from_env())
            await app.state.mllp.start()
        # Everything loaded so far (tables, routes, definitions) lives as long as the process: moved out of the
        # collector's sight, gen-2 collections stop scanning it (p99 of cached $convert: ~100 ms → ~40 ms).
        gc.collect()
        gc.freeze()
        yield
    finally:
        if app.state.mllp is not None:
            await app.state.mllp.close()
        if enqueuer is not None:
            await enqueuer.close()
        await audit.close()
        if upstream is not None:
            await upstream.aclose()
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()
