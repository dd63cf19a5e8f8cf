"""The upstream FHIR server: requests with retries and a circuit breaker, and idempotent transaction delivery."""

from __future__ import annotations

from gateway.settings import Settings
from gateway.upstream.breaker import CircuitBreaker
from gateway.upstream.client import (
    Upstream,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnauthorized,
    UpstreamUnavailable,
    outcome_text,
    retry_after_seconds,
)
from gateway.upstream.credentials import UpstreamAuthError, make_credentials
from gateway.upstream.transaction import Delivered, deliver, dependency_order, idempotent_requests


def make_upstream(settings: Settings) -> Upstream | None:
    """The configured upstream (HELIXGATE_UPSTREAM_URL and its HELIXGATE_UPSTREAM_* settings, the gateway's own
    credentials among them), or None. Raises SettingsError for credentials that cannot be used."""
    if not settings.upstream_url:
        return None
    return Upstream(settings.upstream_url, timeout=settings.upstream_timeout_ms / 1000,
                    retries=settings.upstream_retries,
                    transaction_max_entries=settings.upstream_transaction_max_entries,
                    credentials=make_credentials(settings))


__all__ = [
    "CircuitBreaker",
    "Delivered",
    "Upstream",
    "UpstreamAuthError",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamUnauthorized",
    "UpstreamUnavailable",
    "deliver",
    "dependency_order",
    "idempotent_requests",
    "make_upstream",
    "outcome_text",
    "retry_after_seconds",
]
