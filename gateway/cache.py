"""Conversion cache: Redis when configured, else an in-process LRU (the embedded default).

Redis failures never fail a request: the cache reports a miss, logs once that it is serving uncached,
and tries Redis again after a pause, logging once when it is back.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from typing import Protocol

from redis.exceptions import RedisError

from gateway import metrics
from gateway.redis_client import redis_client

log = logging.getLogger("helixgate.cache")
KEY_PREFIX = "helixgate:conv:"


def cache_key(data: bytes, *parts: str, prefix: str = KEY_PREFIX) -> str:
    """Key of a conversion: sha256 over the input bytes and what shapes the output (formats, options, version)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\x00")
    h.update(data)
    return prefix + h.hexdigest()


class Cache(Protocol):
    kind: str

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes) -> None: ...
    async def close(self) -> None: ...
    def status(self) -> str: ...


class MemoryCache:
    """Bounded LRU in process memory."""

    kind = "memory"

    def __init__(self, max_entries: int = 2048) -> None:
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._max = max_entries

    async def get(self, key: str) -> bytes | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        metrics.cache_lookup(key, value is not None)
        return value

    async def set(self, key: str, value: bytes) -> None:
        if self._max <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def close(self) -> None:
        self._data.clear()

    def status(self) -> str:
        return "up"


class RedisCache:
    """Redis-backed cache that degrades to 'no cache' while Redis is unreachable."""

    kind = "redis"

    def __init__(self, url: str, ttl_seconds: int, retry_after: float = 5.0, timeout: float = 0.5) -> None:
        self._client = redis_client(url, timeout)  # one server, a cluster (keys spread over it) or Sentinel
        self._ttl = ttl_seconds or None
        self._retry_after = retry_after
        self._down_until = 0.0
        self._down = False

    def _failed(self, exc: Exception) -> None:
        if not self._down:
            log.warning("Redis unavailable (%s); serving uncached until it returns", type(exc).__name__)
        self._down = True
        self._down_until = time.monotonic() + self._retry_after

    def _recovered(self) -> None:
        if self._down:
            log.warning("Redis is reachable again; caching resumed")
        self._down = False

    def _skip(self) -> bool:
        return self._down and time.monotonic() < self._down_until

    async def get(self, key: str) -> bytes | None:
        if self._skip():
            metrics.cache_lookup(key, False)
            return None
        try:
            value = await self._client.get(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            metrics.cache_lookup(key, False)
            return None
        self._recovered()
        metrics.cache_lookup(key, value is not None)
        return value

    async def set(self, key: str, value: bytes) -> None:
        if self._skip():
            return
        try:
            await self._client.set(key, value, ex=self._ttl)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self._recovered()

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    def status(self) -> str:
        return "down" if self._down else "up"


def make_cache(redis_url: str | None, ttl_seconds: int, max_entries: int) -> Cache:
    return RedisCache(redis_url, ttl_seconds) if redis_url else MemoryCache(max_entries)
