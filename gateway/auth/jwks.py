"""The authorization server's signing keys (a JWKS, RFC 7517), fetched over HTTP and cached.

Cached for the response's Cache-Control max-age (bounded), refetched on a `kid` it does not hold — at most once per
cooldown, so a client sending random `kid`s cannot make the gateway hammer the authorization server. A key is used
only when exactly one key of the JWKS matches the token's `kid` and key type (SMART App Launch 2.2
client-confidential-asymmetric, "key lookup"; the same rule serves access tokens here).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson

log = logging.getLogger("helixgate.auth")

MAX_JWKS_BYTES = 512 * 1024
# The key type (RFC 7518 §6.1, RFC 8037) each accepted JWS algorithm verifies with.
KTY_OF_ALG = {"RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
              "ES256": "EC", "ES384": "EC", "ES512": "EC", "EdDSA": "OKP"}
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Key:
    jwk: jwt.PyJWK
    kid: Any
    kty: Any
    alg: Any  # as the JWKS declares it (None: usable with any algorithm of its key type)


class KeySetUnavailable(Exception):
    """The JWKS could not be fetched or read (and no earlier copy is held)."""


def cache_lifetime(cache_control: str | None, default: float, floor: float, cap: float) -> float:
    """Seconds to keep a JWKS: its max-age (no-store/no-cache: the floor), else `default`, within [floor, cap]."""
    value = default
    if cache_control:
        lowered = cache_control.lower()
        if "no-store" in lowered or "no-cache" in lowered:
            value = floor
        elif m := _MAX_AGE.search(lowered):
            value = float(m.group(1))
    return min(max(value, floor), cap)


class KeySetCache:
    """The JWKS at `url` (or at the URL `url_source()` returns, e.g. from discovery), cached and refreshed."""

    def __init__(self, url: str | Callable[[], Awaitable[str]], client: Callable[[], httpx.AsyncClient], *,
                 default_max_age: float = 300.0, max_age_cap: float = 3600.0, cooldown: float = 30.0) -> None:
        self._url = url
        self._client = client
        self.default_max_age = default_max_age
        self.max_age_cap = max_age_cap
        self.cooldown = cooldown
        self._keys: list[_Key] | None = None
        self._expires = 0.0  # monotonic time past which the held keys are refetched
        self._last_attempt = float("-inf")  # monotonic time of the last fetch, failed or not
        self._lock: asyncio.Lock | None = None
        self.fetches = 0  # successful fetches (for tests and stats)

    def _fetch_allowed(self, now: float) -> bool:
        return now - self._last_attempt >= self.cooldown

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The one key for (kid, kty of alg); None when there is none or more than one, even after a refetch.
        Raises KeySetUnavailable when no JWKS has ever been fetched and fetching fails."""
        now = time.monotonic()
        if self._keys is None or now >= self._expires:
            await self._refresh(stale_ok=self._keys is not None, forced=False)
        found = self._match(kid, alg)
        if found is None and self._fetch_allowed(time.monotonic()):
            # An unknown kid: the authorization server may have rotated its keys (RFC 7517 §4.5 semantics)
            await self._refresh(stale_ok=True, forced=True)
            found = self._match(kid, alg)
        return found

    def _match(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        kty = KTY_OF_ALG.get(alg)
        candidates = [k for k in self._keys or () if k.kty == kty and (kid is None or k.kid == kid)]
        if len(candidates) != 1 or candidates[0].alg not in (None, alg):
            return None  # none, ambiguous, or a key the JWKS binds to another algorithm
        return candidates[0].jwk

    async def _refresh(self, stale_ok: bool, forced: bool) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        attempt_before = self._last_attempt
        async with self._lock:
            if self._last_attempt != attempt_before:
                return  # another request fetched (or tried) while this one waited: use its result
            now = time.monotonic()
            if not forced and self._keys is not None and now < self._expires:
                return
            if not self._fetch_allowed(now):
                if self._keys is None:
                    raise KeySetUnavailable("the authorization server's keys could not be fetched")
                return
            self._last_attempt = now
            try:
                keys, lifetime = await self._fetch()
            except KeySetUnavailable as e:
                if not stale_ok:
                    raise
                log.warning("JWKS refresh failed, keeping the %d keys held: %s", len(self._keys or ()), e)
                return
            self._keys = keys
            self._expires = now + lifetime
            self.fetches += 1

    async def _fetch(self) -> tuple[list[_Key], float]:
        url = self._url if isinstance(self._url, str) else await self._url()
        try:
            async with self._client().stream("GET", url, headers={"Accept": "application/json"}) as r:
                if r.status_code != 200:
                    raise KeySetUnavailable(f"JWKS fetch answered HTTP {r.status_code}")
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise KeySetUnavailable("JWKS larger than 512 KiB")
                cache_control = r.headers.get("cache-control")
        except httpx.HTTPError as e:
            raise KeySetUnavailable(f"JWKS fetch failed ({type(e).__name__})") from None
        try:
            document: Any = orjson.loads(bytes(body))
        except ValueError:
            raise KeySetUnavailable("JWKS is not JSON") from None
        raw_keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(raw_keys, list):
            raise KeySetUnavailable("JWKS has no 'keys' array")
        keys = []
        for raw in raw_keys:
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig" or "d" in raw:
                continue  # encryption keys, and private keys an AS should never publish, are not used
            try:
                alg = raw.get("alg")
                keys.append(_Key(jwt.PyJWK(raw, algorithm=alg if alg in KTY_OF_ALG else None), raw.get("kid"),
                                 raw.get("kty"), alg))
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
                continue  # a key type or curve PyJWT cannot use: the others still serve
        return keys, cache_lifetime(cache_control, self.default_max_age, self.cooldown, self.max_age_cap)
