"""Where the exchange meets the running gateway: the routes file named by HELIXGATE_EXCHANGE_ROUTES (loaded and
checked when the app is made: a bad file stops `helixgate serve`), the counters and audit trail on the app's Redis
(in process without one), and the engines that convert and validate for the pipeline."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.exchange import counters, trail
from gateway.exchange.routes import Routes, load
from gateway.formats import Converted
from gateway.formats import Request as ConvertRequest

log = logging.getLogger("helixgate.exchange")
ENV = "HELIXGATE_EXCHANGE_ROUTES"


@dataclass
class ExchangeState:
    routes: Routes | None
    memory_counters: counters.MemoryCounters | None = None
    memory_trail: trail.MemoryTrail | None = None
    _redis: dict[int, Any] = field(default_factory=dict)

    def counters(self, redis: Any) -> Any:
        if redis is not None:
            return counters.RedisCounters(redis)
        if self.memory_counters is None:
            self.memory_counters = counters.MemoryCounters()
        return self.memory_counters

    def trail(self, redis: Any) -> Any:
        if redis is not None:
            return trail.RedisTrail(redis)
        if self.memory_trail is None:
            log.warning("the exchange audit trail is kept in process memory (no HELIXGATE_REDIS_URL)")
            self.memory_trail = trail.MemoryTrail()
        return self.memory_trail


def from_env() -> ExchangeState:
    """The state for an app: routes from HELIXGATE_EXCHANGE_ROUTES (unset: $exchange answers that none are
    configured). Raises RoutesError for a file that cannot be used."""
    path = os.environ.get(ENV, "").strip()
    return ExchangeState(load(path) if path else None)


def check_env() -> str | None:
    """What is wrong with the routes file HELIXGATE_EXCHANGE_ROUTES names (its key files included), or None."""
    from gateway.exchange.keys import KeyError_
    from gateway.exchange.routes import RoutesError

    try:
        from_env()
    except (RoutesError, KeyError_) as e:
        return str(e)
    return None


class LocalEngine:
    """Conversion and validation in this process (the CLI), with `validator` (None: output cannot be validated,
    which refuses the transfer as it refuses a conversion)."""

    def __init__(self, validator: Any, upstream: Any = None) -> None:
        self.validator = validator
        self.upstream = upstream

    async def convert(self, data: bytes, request: ConvertRequest) -> Converted:
        from starlette.concurrency import run_in_threadpool

        from gateway.convert import run

        return await run_in_threadpool(run, data, request, self.validator)

    async def validate(self, resource: dict[str, Any], profiles: tuple[str, ...]) -> dict[str, Any]:
        if self.validator is None:
            from mappers.exceptions import MappingError

            raise MappingError("the output cannot be validated: the FHIR packages are not installed (run "
                               "'helixgate packages install')", details="no-validator", code="not-supported")
        return self.validator.outcome(resource, profiles)

    async def deliver(self, bundle: dict[str, Any]) -> list[str]:
        return await _deliver(self.upstream, bundle)


class HttpEngine:
    """Conversion and validation in the HTTP server's sandbox processes (gateway.sandbox), cached like $convert."""

    def __init__(self, request: Any) -> None:
        self.request = request

    async def convert(self, data: bytes, request: ConvertRequest) -> Converted:
        from gateway.convert import convert
        from gateway.sandbox import run_job

        result, _ = await convert(data, request, self.request.app.state.cache,
                                  runner=lambda job: run_job(self.request, job))
        return result

    async def validate(self, resource: dict[str, Any], profiles: tuple[str, ...]) -> dict[str, Any]:
        from gateway.sandbox import run_job

        outcome: dict[str, Any] = await run_job(self.request, ("validate-resource", resource, profiles))
        return outcome

    async def deliver(self, bundle: dict[str, Any]) -> list[str]:
        return await _deliver(getattr(self.request.app.state, "upstream", None), bundle)


async def _deliver(upstream: Any, bundle: dict[str, Any]) -> list[str]:
    from gateway.upstream import deliver
    from mappers.exceptions import MappingError

    if upstream is None:
        raise MappingError("the route delivers upstream, but no upstream is configured (HELIXGATE_UPSTREAM_URL)",
                           details="exchange-no-upstream", code="not-supported")
    if bundle.get("type") != "transaction":
        bundle = {**bundle, "type": "transaction", "entry": [
            {**e, "request": {"method": "PUT", "url": f"{e['resource']['resourceType']}/{e['resource']['id']}"}}
            for e in bundle.get("entry") or []]}
    done = await deliver(upstream, orjson.loads(orjson.dumps(bundle)))
    return [*done.created, *done.matched]
