"""The ASGI application: routes, error handlers and the lifespan that opens the cache."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from gateway import bulk, facade, hints, metrics, openapi, playground
from gateway.accesslog import AccessLogMiddleware
from gateway.audit import AuditMiddleware
from gateway.auth import discovery
from gateway.auth.config import AuthConfig
from gateway.auth.middleware import Authenticator, AuthMiddleware
from gateway.auth.ratelimit import rate_limit_middleware
from gateway.cache import make_cache
from gateway.exchange.http import routes as exchange_routes
from gateway.exchange.service import from_env as exchange_state
from gateway.jobs import status_of
from gateway.negotiation import NegotiationMiddleware
from gateway.responses import FHIRResponse, outcome_response
from gateway.routes import TooLarge, routes
from gateway.sandbox import app_sandbox
from gateway.settings import Settings
from gateway.validate_routes import routes as validate_routes
from mappers.exceptions import MappingError, operation_outcome
from mappers.toolkit.registry import registry

log = logging.getLogger("helixgate.http")


async def mapping_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MappingError)
    return FHIRResponse(operation_outcome(exc.issues), status_code=status_of(exc),
                        headers=getattr(exc, "headers", None))


async def too_large(request: Request, exc: Exception) -> Response:
    return outcome_response(413, "too-costly", "request-too-large", str(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
    detail = str(exc.detail)
    if exc.status_code == 404 and request.scope.get("route") is None:  # no route takes the path: say what would
        detail = hints.not_found(request.url.path, request.method, getattr(request.app.state, "settings", None))
    return outcome_response(exc.status_code, code, f"http-{exc.status_code}", detail,
                            headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return outcome_response(500, "exception", "internal-error", "internal error; the gateway log has details")


def create_app(settings: Settings | None = None, auth: AuthConfig | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    registry()  # import every format now (~0.3 s): on the first request it would hold the event loop that long
    authenticator = Authenticator(auth if auth is not None else AuthConfig.from_env())  # gateway.auth.config

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.cache = make_cache(settings.redis_url, settings.cache_ttl_seconds, settings.cache_max_entries)
        log.info("cache: %s", app.state.cache.kind)
        if settings.http_processes:  # warm before the first request needs them (loading the validator: seconds)
            app_sandbox(app).prestart()
        try:
            async with facade.integration_resources(app, settings):  # Redis, upstream, audit, MLLP listener
                if getattr(app.state, "upstream", None) is not None:
                    metrics.watch_upstream(app.state.upstream.client)
                yield
        finally:
            await app.state.cache.close()
            await authenticator.aclose()

    before, after = facade.routes(settings)  # the validating facade, when HELIXGATE_UPSTREAM_URL is set
    all_routes = [*discovery.routes, *before, *routes, *validate_routes, *exchange_routes, *bulk.routes,
                  *metrics.routes, *openapi.routes, *playground.routes, *after]
    app = Starlette(
        routes=all_routes,
        exception_handlers={
            MappingError: mapping_error,
            TooLarge: too_large,
            HTTPException: http_error,
            Exception: server_error,
        },
        middleware=[Middleware(AccessLogMiddleware, routes=all_routes),  # access log + request metrics (outermost)
                    Middleware(AuditMiddleware),  # an AuditEvent per /fhir request and per denial
                    # _format / Accept: FHIR JSON bodies written as XML when asked (401/429 too), else 406
                    Middleware(NegotiationMiddleware),
                    # who is calling and may they (401/403); access class and Principal into the scope
                    Middleware(AuthMiddleware, auth=authenticator, routes=all_routes),
                    *rate_limit_middleware(settings.rate_limits)],  # after auth: 429 per client and access class
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.auth = authenticator
    app.state.exchange = exchange_state()  # HELIXGATE_EXCHANGE_ROUTES, checked now: a bad file stops start-up
    return app
