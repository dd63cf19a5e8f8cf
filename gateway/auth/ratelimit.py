"""Rate limits per client and access class: a token bucket per (class, client), in Redis when the gateway has one
(one atomic script per request, so every server process draws on the same budget) and in process otherwise.

HELIXGATE_RATE_LIMITS is a JSON object of access class → limit, "*" for classes not named:

    {"convert": "20/s burst 40", "bulk": "10/min", "*": "100/s"}

A limit is `<n>/<s|min|h>` (the refill rate) with an optional `burst <b>` (the bucket size; default n, at least 1);
"off" exempts a class. Public routes are never limited. The client is the Principal's client and how it was
proven; anonymous callers (auth off) are limited per network address.

Over the limit: 429 with Retry-After and an OperationOutcome `throttled` (FHIR http.html; Bulk Data asks the same
of over-eager pollers).

Redis down: the limiter *fails open to the in-process buckets* — each process then enforces the limit on its own
(so the effective budget is at most processes × limit) until Redis answers again (tried again after a second).
Failing closed would turn a cache outage into a refusal of every request, including clinical writes a limit exists
to protect rather than to stop; failing fully open would drop the protection while Redis is away.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import RedisError

from gateway.auth.principal import principal_of
from gateway.responses import outcome_response

log = logging.getLogger("helixgate.ratelimit")
ACCESS_KEY = "helixgate.access"  # where the auth middleware puts the route's access class
PUBLIC = "public"
KEY_PREFIX = "helixgate:rl:"
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
# The spaces before "burst" sit inside the optional group: ([a-z]+)\s*(?:burst\s+(\d+))?\s*\Z split a run of
# spaces between its two \s* every way, quadratic on re (same matches and groups: tests/gateway/test_patterns.py).
_SPEC = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)(?:\s*burst\s+(\d+))?\s*\Z")
_RETRY_REDIS_AFTER = 1.0  # seconds in process after a Redis failure before Redis is tried again
_LOCAL_MAX = 100_000  # buckets kept in process (least recently used dropped: a dropped bucket is a full one)

# KEYS[1] the bucket; ARGV rate (tokens/s), burst. Server time, so processes on hosts with skewed clocks agree.
_TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait
"""


class RateLimitError(ValueError):
    """HELIXGATE_RATE_LIMITS cannot be read; the message names the class and the expected syntax."""


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float  # tokens per second
    burst: int  # bucket size
    text: str  # as configured, for messages


def parse_limit(text: str) -> Limit:
    """'20/s burst 40', '600/min', '5/h burst 10' → Limit. Raises RateLimitError."""
    m = _SPEC.match(text.lower())
    if not m or m.group(2) not in _UNITS:
        raise RateLimitError(f"{text!r} is not a limit; write <n>/<s|min|h> [burst <b>], e.g. \"20/s burst 40\"")
    n = float(m.group(1))
    if n <= 0:
        raise RateLimitError(f"{text!r}: the rate must be above 0 (\"off\" exempts a class)")
    burst = int(m.group(3)) if m.group(3) else max(1, math.ceil(n))
    if burst < 1:
        raise RateLimitError(f"{text!r}: the burst must be at least 1")
    return Limit(n / _UNITS[m.group(2)], burst, text.strip())


CLASSES = ("convert", "validate", "translate", "read", "write", "bulk")


def parse_limits(raw: str, name: str = "HELIXGATE_RATE_LIMITS") -> dict[str, Limit | None]:
    """The JSON object of access class → limit ('*' the default, 'off' none). Raises RateLimitError."""
    if not raw.strip():
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise RateLimitError(f"{name} is not JSON ({e}); expected e.g. {{\"convert\": \"20/s burst 40\"}}") from None
    if not isinstance(doc, dict):
        raise RateLimitError(f"{name} must be a JSON object of access class -> limit")
    out: dict[str, Limit | None] = {}
    for cls, spec in doc.items():
        if cls == PUBLIC:
            raise RateLimitError(f"{name}: public routes (health, discovery) are never limited")
        if cls != "*" and cls not in CLASSES:
            raise RateLimitError(f"{name}: unknown access class {cls!r}; use {', '.join(CLASSES)} or *")
        if not isinstance(spec, str):
            raise RateLimitError(f"{name}[{cls!r}] must be a string such as \"20/s burst 40\" or \"off\"")
        try:
            out[cls] = None if spec.strip().lower() == "off" else parse_limit(spec)
        except RateLimitError as e:
            raise RateLimitError(f"{name}[{cls!r}]: {e}") from None
    return out


class RateLimiter:
    """Token buckets for `limits` (as parse_limits). `take` is what a request pays: one Redis round trip, or a
    dict lookup in process."""

    def __init__(self, limits: dict[str, Limit | None]) -> None:
        self.limits = limits
        self._local: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()
        self._redis_down_until = 0.0
        self._script: Any = None
        self._script_client: Any = None

    def limit_for(self, access: str) -> Limit | None:
        if access == PUBLIC:
            return None
        return self.limits[access] if access in self.limits else self.limits.get("*")

    async def take(self, access: str, who: str, redis: Any = None) -> tuple[Limit, float] | None:
        """One token from the bucket of (access, who): None when the request may go on (or is not limited),
        else (the limit, seconds until a token is there)."""
        limit = self.limit_for(access)
        if limit is None:
            return None
        key = bucket_key(access, who)
        wait: float | None = None
        if redis is not None and time.monotonic() >= self._redis_down_until:
            wait = await self._take_redis(redis, key, limit)
        if wait is None:
            wait = self._take_local(key, limit)
        return (limit, wait) if wait > 0 else None

    async def _take_redis(self, redis: Any, key: str, limit: Limit) -> float | None:
        try:
            if self._script is None or self._script_client is not redis:
                self._script, self._script_client = redis.register_script(_TAKE), redis
            wait_ms = await self._script(keys=[key], args=[repr(limit.rate), limit.burst])
        except (RedisError, OSError) as e:
            if self._redis_down_until == 0.0:
                log.warning("rate limits: Redis unreachable (%s); limiting in process until it answers",
                            type(e).__name__)
            self._redis_down_until = time.monotonic() + _RETRY_REDIS_AFTER
            return None
        if self._redis_down_until:
            log.info("rate limits: Redis answers again; buckets shared again")
            self._redis_down_until = 0.0
        return int(wait_ms) / 1000

    def _take_local(self, key: str, limit: Limit) -> float:
        now = time.monotonic()
        tokens, ts = self._local.pop(key, (float(limit.burst), now))
        tokens = min(limit.burst, tokens + (now - ts) * limit.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / limit.rate
        self._local[key] = (tokens, now)
        if len(self._local) > _LOCAL_MAX:
            self._local.popitem(last=False)
        return wait


def bucket_key(access: str, who: str) -> str:
    if len(who) > 128:  # client names come from tokens: keep keys short whatever they hold
        who = "sha256:" + hashlib.sha256(who.encode()).hexdigest()
    return f"{KEY_PREFIX}{access}:{who}"


def who_of(scope: Any) -> str:
    """The client a bucket belongs to: '<via>:<client>' when authenticated, else 'ip:<address>'."""
    principal = principal_of(scope)
    if principal.authenticated:
        return f"{principal.via}:{principal.client}"
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


class RateLimitMiddleware:
    """Pure ASGI: after the auth middleware (which sets the Principal and the access class), one token per request
    of a limited class; 429 + Retry-After + OperationOutcome `throttled` when the bucket is empty."""

    def __init__(self, app: Any, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        access = scope.get(ACCESS_KEY) if scope["type"] == "http" else None
        if access is None or access == PUBLIC:
            await self.app(scope, receive, send)
            return
        state = getattr(scope.get("app"), "state", None)
        who = who_of(scope)
        over = await self.limiter.take(access, who, getattr(state, "redis", None))
        if over is None:
            await self.app(scope, receive, send)
            return
        limit, wait = over
        seconds = max(1, math.ceil(wait))
        response = outcome_response(429, "throttled", "rate-limited",
                                    f"rate limit for {access} requests reached ({limit.text} per client); "
                                    f"retry after {seconds} s", headers={"Retry-After": str(seconds)})
        await response(scope, receive, send)


def rate_limit_middleware(limits: str) -> list[Any]:
    """The middleware for HELIXGATE_RATE_LIMITS (none when no limit is configured: nothing to pay per request).
    Raises RateLimitError."""
    from starlette.middleware import Middleware

    parsed = parse_limits(limits)
    if not any(parsed.values()):
        return []
    return [Middleware(RateLimitMiddleware, limiter=RateLimiter(parsed))]
