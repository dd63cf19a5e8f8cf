"""Configuration, read once at the edge from HELIXGATE_* environment variables."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """Raised when an environment variable holds a value that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None  # None: the embedded in-process LRU cache (modes: gateway/redis_client.py)
    redis_wait_replicas: int = 0  # an MLLP message is acknowledged once this many replicas hold it (WAIT)
    redis_wait_timeout_ms: int = 1000
    cache_ttl_seconds: int = 7 * 24 * 3600
    cache_max_entries: int = 2048
    max_request_bytes: int = 10 * 1024 * 1024
    # The HTTP routes' conversions and validations run in sandbox processes (gateway/sandbox.py) under a budget.
    http_processes: int = 2  # 0: in the server's threads, unbounded (a hostile input then stalls every request)
    http_timeout_ms: int = 30_000  # per request, wall clock; past it the work is stopped: 422 too-costly
    http_memory_mb: int = 1024  # per sandbox process, its ≈ 350 MB baseline included
    max_batch_documents: int = 1000  # documents of a batch file converted in one request; more: a bulk job
    v2_timezone: str | None = None  # '+HH:MM' assumed for HL7 v2 times without a zone
    # Integration engine (see README "Integration engine"): upstream FHIR server, MLLP listener, workers, bulk jobs.
    upstream_url: str | None = None  # None: no facade, no delivery
    upstream_timeout_ms: int = 30_000
    upstream_retries: int = 4  # retries per request after the first try (exponential backoff, Retry-After)
    upstream_transaction_max_entries: int = 0  # 0: one transaction per Bundle; Medplum needs 8 (conditional creates)
    upstream_aliases: tuple[str, ...] = ()  # other base URLs the upstream calls itself by (its public/ingress name)
    public_url: str | None = None  # the facade's public [base] (e.g. https://fhir.example/fhir); None: from the request
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-Host/-Proto/-Prefix name the public base
    mllp_port: int | None = None  # None: no MLLP listener
    mllp_host: str | None = None  # None: same as host
    mllp_max_message_bytes: int = 16 * 1024 * 1024
    mllp_max_connections: int = 100
    mllp_max_buffered_bytes: int = 256 * 1024 * 1024  # unfinished messages over all connections (then held back)
    mllp_max_connections_per_peer: int = 50  # half the slots: one peer (a slowloris) cannot hold them all; 0: no cap
    mllp_max_segments: int = 10_000  # as mappers.hl7v2.parse.Limits: more is never converted (200 variants ≈ 5,000)
    mllp_idle_timeout_ms: int = 600_000  # a connection silent this long is closed (senders reconnect); 0: never
    mllp_read_timeout_ms: int = 60_000  # a started message must be complete (and its ACK taken) within this
    mllp_reuse_port: bool = False  # SO_REUSEPORT: let other processes bind the same MLLP port (off: they fail)
    mllp_ack_codes: tuple[tuple[str, str, str], ...] = ()  # (sending facility or '*', failure, AE|AR)
    worker_concurrency: int = 8  # messages in flight per worker process (back-pressure on a slow upstream)
    worker_claim_idle_ms: int = 60_000  # a pending entry idle this long is taken over from its (dead) worker
    worker_max_attempts: int = 5  # deliveries before an entry moves to the dead-letter stream
    worker_validate: bool = True
    worker_processes: int = 1  # conversion processes per worker (budgeted); 0: convert in the worker, unbounded
    worker_message_timeout_ms: int = 60_000  # per message: convert + validate, wall clock
    worker_message_memory_mb: int = 1024  # per conversion process (≈ 350 MB of it is the validator and mappers)
    worker_budget_attempts: int = 2  # over-budget deliveries before the dead-letter queue
    worker_grace_ms: int = 10_000  # on SIGTERM: time for in-flight messages to finish before they are released
    bulk_dir: str = ""  # "": <temp dir>/helixgate-bulk
    bulk_expires_seconds: int = 24 * 3600
    audit_upstream: bool = False  # also send AuditEvents to the upstream server
    # Access control (README "Access control"): rate limits; the gateway's own credentials for the upstream.
    rate_limits: str = ""  # JSON {access class: "<n>/<s|min|h> [burst <b>]"} (gateway/auth/ratelimit.py); "": none
    upstream_token_file: str = ""  # a static bearer token, read again when the file changes
    upstream_client_id: str = ""  # client credentials + private_key_jwt (gateway/upstream/credentials.py)
    upstream_token_url: str = ""
    upstream_private_key: str = ""  # PEM: RSA (RS384) or EC P-384 (ES384)
    upstream_key_id: str = ""  # the assertion's kid; "": the key's RFC 7638 thumbprint
    upstream_scope: str = ""
    upstream_resource: str = ""  # RFC 8707 resource indicator for the token request, when the server wants one

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def integer(name: str, default: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not an integer") from None
            if value < 0:
                raise SettingsError(f"{name}={raw!r} must not be negative")
            return value

        def boolean(name: str, default: bool) -> bool:
            raw = (env.get(name) or "").strip().lower()
            if raw == "":
                return default
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{name}={raw!r} must be 1/true/yes/on or 0/false/no/off")

        def words(name: str) -> tuple[str, ...]:  # a list separated by commas or spaces (URLs without a final /)
            return tuple(w.rstrip("/") for w in re.split(r"[\s,]+", env.get(name) or "") if w)

        check_access(env)
        tz = env.get("HELIXGATE_V2_TIMEZONE") or None
        if tz is not None:
            tz = check_timezone(tz, "HELIXGATE_V2_TIMEZONE")
        redis_url = env.get("HELIXGATE_REDIS_URL") or None
        if redis_url:
            from gateway.redis_client import parse  # imported here: it imports this module

            parse(redis_url)
        d = cls()
        return cls(
            host=env.get("HELIXGATE_HOST", d.host),
            port=integer("HELIXGATE_PORT", d.port),
            redis_url=redis_url,
            redis_wait_replicas=max(0, integer("HELIXGATE_REDIS_WAIT_REPLICAS", d.redis_wait_replicas)),
            redis_wait_timeout_ms=max(1, integer("HELIXGATE_REDIS_WAIT_TIMEOUT_MS", d.redis_wait_timeout_ms)),
            cache_ttl_seconds=integer("HELIXGATE_CACHE_TTL", d.cache_ttl_seconds),
            cache_max_entries=integer("HELIXGATE_CACHE_MAX_ENTRIES", d.cache_max_entries),
            max_request_bytes=integer("HELIXGATE_MAX_REQUEST_BYTES", d.max_request_bytes),
            http_processes=integer("HELIXGATE_HTTP_PROCESSES", d.http_processes),
            http_timeout_ms=max(1, integer("HELIXGATE_HTTP_TIMEOUT_MS", d.http_timeout_ms)),
            http_memory_mb=max(1, integer("HELIXGATE_HTTP_MEMORY_MB", d.http_memory_mb)),
            max_batch_documents=integer("HELIXGATE_MAX_BATCH_DOCUMENTS", d.max_batch_documents),
            v2_timezone=tz,
            upstream_url=(env.get("HELIXGATE_UPSTREAM_URL") or "").rstrip("/") or None,
            upstream_timeout_ms=integer("HELIXGATE_UPSTREAM_TIMEOUT_MS", d.upstream_timeout_ms),
            upstream_retries=integer("HELIXGATE_UPSTREAM_RETRIES", d.upstream_retries),
            upstream_transaction_max_entries=integer("HELIXGATE_UPSTREAM_TRANSACTION_MAX_ENTRIES",
                                                     d.upstream_transaction_max_entries),
            upstream_aliases=words("HELIXGATE_UPSTREAM_ALIASES"),
            public_url=(env.get("HELIXGATE_PUBLIC_URL") or "").rstrip("/") or None,
            trusted_proxies=words("HELIXGATE_TRUSTED_PROXIES"),
            mllp_port=integer("HELIXGATE_MLLP_PORT", -1) if env.get("HELIXGATE_MLLP_PORT") else None,
            mllp_host=env.get("HELIXGATE_MLLP_HOST") or None,
            mllp_max_message_bytes=integer("HELIXGATE_MLLP_MAX_MESSAGE_BYTES", d.mllp_max_message_bytes),
            mllp_max_connections=integer("HELIXGATE_MLLP_MAX_CONNECTIONS", d.mllp_max_connections),
            mllp_max_buffered_bytes=integer("HELIXGATE_MLLP_MAX_BUFFERED_BYTES", d.mllp_max_buffered_bytes),
            mllp_max_connections_per_peer=integer("HELIXGATE_MLLP_MAX_CONNECTIONS_PER_PEER",
                                                  d.mllp_max_connections_per_peer),
            mllp_max_segments=integer("HELIXGATE_MLLP_MAX_SEGMENTS", d.mllp_max_segments),
            mllp_idle_timeout_ms=integer("HELIXGATE_MLLP_IDLE_TIMEOUT_MS", d.mllp_idle_timeout_ms),
            mllp_read_timeout_ms=integer("HELIXGATE_MLLP_READ_TIMEOUT_MS", d.mllp_read_timeout_ms),
            mllp_reuse_port=boolean("HELIXGATE_MLLP_REUSE_PORT", d.mllp_reuse_port),
            mllp_ack_codes=ack_codes(env.get("HELIXGATE_MLLP_ACK_CODES") or "", "HELIXGATE_MLLP_ACK_CODES"),
            worker_concurrency=max(1, integer("HELIXGATE_WORKER_CONCURRENCY", d.worker_concurrency)),
            worker_claim_idle_ms=integer("HELIXGATE_WORKER_CLAIM_IDLE_MS", d.worker_claim_idle_ms),
            worker_max_attempts=max(1, integer("HELIXGATE_WORKER_MAX_ATTEMPTS", d.worker_max_attempts)),
            worker_validate=boolean("HELIXGATE_WORKER_VALIDATE", d.worker_validate),
            worker_processes=integer("HELIXGATE_WORKER_PROCESSES", d.worker_processes),
            worker_message_timeout_ms=max(1, integer("HELIXGATE_WORKER_MESSAGE_TIMEOUT_MS",
                                                     d.worker_message_timeout_ms)),
            worker_message_memory_mb=max(1, integer("HELIXGATE_WORKER_MESSAGE_MEMORY_MB",
                                                    d.worker_message_memory_mb)),
            worker_budget_attempts=max(1, integer("HELIXGATE_WORKER_BUDGET_ATTEMPTS", d.worker_budget_attempts)),
            worker_grace_ms=integer("HELIXGATE_WORKER_GRACE_MS", d.worker_grace_ms),
            bulk_dir=env.get("HELIXGATE_BULK_DIR") or "",
            bulk_expires_seconds=integer("HELIXGATE_BULK_EXPIRES", d.bulk_expires_seconds),
            audit_upstream=boolean("HELIXGATE_AUDIT_UPSTREAM", d.audit_upstream),
            rate_limits=env.get("HELIXGATE_RATE_LIMITS") or "",
            upstream_token_file=env.get("HELIXGATE_UPSTREAM_TOKEN_FILE") or "",
            upstream_client_id=env.get("HELIXGATE_UPSTREAM_CLIENT_ID") or "",
            upstream_token_url=env.get("HELIXGATE_UPSTREAM_TOKEN_URL") or "",
            upstream_private_key=env.get("HELIXGATE_UPSTREAM_PRIVATE_KEY") or "",
            upstream_key_id=env.get("HELIXGATE_UPSTREAM_KEY_ID") or "",
            upstream_scope=env.get("HELIXGATE_UPSTREAM_SCOPE") or "",
            upstream_resource=env.get("HELIXGATE_UPSTREAM_RESOURCE") or "",
        )


def check_access(env: Mapping[str, str]) -> None:
    """Rate limits and upstream credentials, which their own modules read: SettingsError naming the variable."""
    from gateway.auth.ratelimit import RateLimitError, parse_limits
    from gateway.upstream.credentials import check_env

    try:
        parse_limits(env.get("HELIXGATE_RATE_LIMITS") or "")
    except RateLimitError as e:
        raise SettingsError(str(e)) from None
    check_env(env)


def check_timezone(value: str, name: str = "time zone") -> str:
    """'+08:00', '-05:00' or 'Z' (→ '+00:00'); raises SettingsError otherwise."""
    if value in ("Z", "z", "UTC"):
        return "+00:00"
    if not re.fullmatch(r"[+-](0\d|1[0-4]):[0-5]\d", value):
        raise SettingsError(f"{name} {value!r} must look like +08:00, -05:00 or Z")
    return value


ACK_FAILURES = ("unparseable", "rejected", "too-large")  # which MLLP failures get a configurable code


def ack_codes(raw: str, name: str = "ACK codes") -> tuple[tuple[str, str, str], ...]:
    """Per-sending-facility MLLP NAK codes from JSON, e.g. {"*": {"unparseable": "AR"}, "LAB-A": {"rejected": "AE"}}
    ('*' is every facility; failures: unparseable, rejected, too-large; codes AE or AR). Raises SettingsError."""
    if not raw.strip():
        return ()
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise SettingsError(f"{name} is not JSON ({e}); expected e.g. {{\"*\": {{\"unparseable\": \"AR\"}}}}") from None
    if not isinstance(doc, dict):
        raise SettingsError(f"{name} must be a JSON object of sending facility -> {{failure: code}}")
    out: list[tuple[str, str, str]] = []
    for facility, codes in doc.items():
        if not isinstance(codes, dict):
            raise SettingsError(f"{name}[{facility!r}] must be an object of failure -> AE|AR")
        for failure, code in codes.items():
            if failure not in ACK_FAILURES:
                raise SettingsError(f"{name}[{facility!r}]: unknown failure {failure!r}; use {', '.join(ACK_FAILURES)}")
            if code not in ("AE", "AR"):
                raise SettingsError(f"{name}[{facility!r}][{failure!r}] = {code!r}; use AE or AR")
            out.append((str(facility), failure, code))
    return tuple(out)

