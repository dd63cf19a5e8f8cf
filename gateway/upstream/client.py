"""Requests to the upstream FHIR server: one pooled httpx.AsyncClient, timeouts, retries with exponential backoff
that honour Retry-After, and a circuit breaker.

    UpstreamError              base
    ├── UpstreamUnavailable    transient: connection failure, timeout, 408/429/5xx after the retries, circuit open
    │   └── UpstreamUnauthorized  401 even with fresh credentials: the gateway's own are wrong (an operator's
    │                             fix, not the message's fault: workers retry rather than dead-letter)
    └── UpstreamRejected       the upstream refused the request (other 4xx); retrying will not help
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from typing import Any

import httpx
import orjson

from gateway.upstream.breaker import CircuitBreaker

log = logging.getLogger("helixgate.upstream")
FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class UpstreamError(Exception):
    """Base class: a request to the upstream FHIR server did not succeed."""


class UpstreamUnavailable(UpstreamError):
    """Raised when the upstream could not be reached or kept failing (after the retries), or the breaker is open.

    `status` is the last HTTP status (None for a network error); `retry_after` a hint in seconds, when known.
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class UpstreamUnauthorized(UpstreamUnavailable):
    """Raised by `json` when the upstream answers 401 to the gateway's own (fresh) credentials, or to none."""


class UpstreamRejected(UpstreamError):
    """Raised when the upstream answers a 4xx other than 408/429; `outcome` is its OperationOutcome, if any."""

    def __init__(self, status: int, outcome: dict[str, Any] | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def outcome_text(outcome: dict[str, Any] | None) -> str:
    """The first issue's text of an OperationOutcome (upstream diagnostics; never resource content)."""
    if not isinstance(outcome, dict):
        return ""
    for issue in outcome.get("issue", []):
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        if text:
            return str(text)[:300]
    return ""


class Upstream:
    """The upstream FHIR server at `base_url` (e.g. http://fhir.example/fhir/R4).

    `retries` further tries follow a transient failure, after base·2^n seconds (capped, jittered) or the server's
    Retry-After when it sends one (capped at `max_retry_after`). Requests that are not `idempotent` are retried only
    when the upstream cannot have acted on them: the connection failed, or it answered 429/503.

    `credentials` (gateway.upstream.credentials) give the Authorization of every request: the gateway's own, never
    a caller's. A 401 is answered once with a fresh credential (a token that expired or was revoked early).
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0, retries: int = 4, backoff: float = 0.2,
                 backoff_cap: float = 10.0, max_retry_after: float = 30.0, breaker: CircuitBreaker | None = None,
                 max_connections: int = 100, transaction_max_entries: int = 0,
                 transport: httpx.AsyncBaseTransport | None = None, credentials: Any = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.breaker = breaker or CircuitBreaker()
        self.transaction_max_entries = transaction_max_entries
        self.credentials = credentials
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), limits=limits,
                                        transport=transport, headers={"Accept": FHIR_JSON})

    def url(self, path: str) -> str:
        """An absolute URL: `path` relative to the base ('' is the base itself), or already absolute."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        hinted = retry_after_seconds(response.headers.get("retry-after")) if response is not None else None
        if hinted is not None:
            return min(hinted, self.max_retry_after)
        step = min(self.backoff_cap, self.backoff * (2 ** attempt))
        return step / 2 + random.uniform(0, step / 2)

    async def send(self, method: str, path: str = "", *, content: bytes | None = None, json: Any = None,
                   headers: dict[str, str] | None = None, params: Any = None,
                   idempotent: bool = True) -> httpx.Response:
        """One request, retried on transient failures; returns any final response that is not transient.

        Raises UpstreamUnavailable when every try failed transiently or the circuit breaker is open.
        """
        if json is not None:
            content = orjson.dumps(json)
            headers = {"Content-Type": FHIR_JSON, **(headers or {})}
        url = self.url(path)
        last_status: int | None = None
        last_hint: float | None = None
        for attempt in range(self.retries + 1):
            if not self.breaker.allow():
                raise UpstreamUnavailable(f"upstream circuit open after repeated failures; next try in "
                                          f"{self.breaker.retry_in():.1f} s", last_status, self.breaker.retry_in())
            response: httpx.Response | None = None
            sent = True
            try:
                response = await self._request(method, url, content, headers, params)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
                sent = False  # the request never reached the server
                error = f"{type(e).__name__}"
            except httpx.TransportError as e:  # timeouts and broken connections after sending
                error = f"{type(e).__name__}"
            else:
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code < 500:
                        self.breaker.success()
                    return response
                error = f"HTTP {response.status_code}"
                last_status = response.status_code
                last_hint = retry_after_seconds(response.headers.get("retry-after"))
                await response.aclose()
            self.breaker.failure()
            retryable = idempotent or not sent or (response is not None and response.status_code in (429, 503))
            if attempt == self.retries or not retryable:
                break
            delay = self._delay(attempt, response)
            log.warning("upstream %s %s: %s; retry %d/%d in %.2f s", method, _path_only(url), error, attempt + 1,
                        self.retries, delay)
            await asyncio.sleep(delay)
        raise UpstreamUnavailable(f"upstream {method} {_path_only(url)} failed after {attempt + 1} tries ({error})",
                                  last_status, last_hint)

    async def _request(self, method: str, url: str, content: bytes | None, headers: dict[str, str] | None,
                       params: Any) -> httpx.Response:
        """One exchange with the gateway's credentials; after a 401, once more with fresh ones. Raises
        UpstreamAuthError (an UpstreamUnavailable) when no credential can be had."""
        headers = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        if self.credentials is None:
            return await self.client.request(method, url, content=content, headers=headers, params=params)
        used = await self.credentials.authorization()
        response = await self.client.request(method, url, content=content, headers={**headers, "Authorization": used},
                                             params=params)
        if response.status_code != 401:
            return response
        self.credentials.invalidate(used)
        fresh = await self.credentials.authorization()
        if fresh == used:  # nothing new to offer (a static token that did not change): the 401 stands
            log.warning("upstream %s %s: 401 and no other credential to try", method, _path_only(url))
            return response
        await response.aclose()
        log.info("upstream %s %s: 401; retrying once with a fresh credential", method, _path_only(url))
        return await self.client.request(method, url, content=content, headers={**headers, "Authorization": fresh},
                                         params=params)

    async def json(self, method: str, path: str = "", *, body: Any = None, headers: dict[str, str] | None = None,
                   idempotent: bool = True) -> tuple[int, dict[str, Any], httpx.Headers]:
        """A FHIR JSON exchange. Raises UpstreamUnauthorized for a 401, UpstreamRejected for another 4xx,
        UpstreamUnavailable as `send`."""
        response = await self.send(method, path, json=body, headers=headers, idempotent=idempotent)
        try:
            doc = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            doc = {}
        if response.status_code == 401:
            hint = "" if self.credentials else "; set HELIXGATE_UPSTREAM_TOKEN_FILE or HELIXGATE_UPSTREAM_CLIENT_ID"
            raise UpstreamUnauthorized(f"the upstream refused the gateway's credentials (401){hint}", 401, 30)
        if response.status_code >= 400:
            text = outcome_text(doc) or response.reason_phrase
            raise UpstreamRejected(response.status_code, doc if doc.get("resourceType") == "OperationOutcome"
                                   else None, f"upstream answered {response.status_code}: {text}")
        return response.status_code, doc, response.headers

    async def capabilities(self) -> dict[str, Any]:
        """The upstream's CapabilityStatement (GET [base]/metadata)."""
        _, doc, _ = await self.json("GET", "metadata")
        return doc

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.credentials is not None:
            await self.credentials.aclose()


def _path_only(url: str) -> str:
    """The URL without its query, which may hold search values (patient data): safe to log."""
    return url.split("?", 1)[0]
