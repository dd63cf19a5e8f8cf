"""The conversion service shared by the HTTP route and the CLI: resolve formats, consult the cache, convert."""

from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool

from gateway.cache import Cache, cache_key
from gateway.formats import CONVERTERS, Converted, Request


async def convert(data: bytes, request: Request, cache: Cache, *, offload: bool = False) -> tuple[Converted, bool]:
    """Convert `data` as `request` says; returns the result and whether it came from the cache.

    `offload` runs the (CPU-bound) mapper in a worker thread, keeping the event loop free for large inputs.

    Raises the mappers' MappingError subclasses for input that cannot be converted (nothing is cached then).
    """
    key = cache_key(data, *request.key_parts())
    hit = await cache.get(key)
    if hit is not None:
        doc = orjson.loads(hit)
        return Converted(doc["body"].encode(), doc["media_type"], doc["outcome"]), True
    mapper = CONVERTERS[(request.source, request.target)]
    result = await run_in_threadpool(mapper, data, request) if offload else mapper(data, request)
    payload = {"media_type": result.media_type, "outcome": result.outcome, "body": result.body.decode()}
    await cache.set(key, orjson.dumps(payload))
    return result, False
