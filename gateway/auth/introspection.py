"""Opaque access tokens: asked of the authorization server by RFC 7662 token introspection, answers cached.

The cache is keyed by a SHA-256 of the token (the token itself is never kept, logged or echoed) and holds an answer
for min(token exp, a cap), so a revocation is seen within the cap. Inactive answers are cached as well (a token never
becomes active again), which also spares the authorization server when one bad token is sent many times.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson

log = logging.getLogger("helixgate.auth")

MAX_RESPONSE_BYTES = 64 * 1024


class IntrospectionUnavailable(Exception):
    """The introspection endpoint could not be reached or gave no usable answer."""


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """How the gateway authenticates to the introspection endpoint: a secret (client_secret_basic) or a private
    key (private_key_jwt, RFC 7523)."""

    client_id: str
    secret: str | None = None
    private_key: Any = None  # a cryptography private key
    key_alg: str = "RS384"
    key_id: str | None = None

    def apply(self, form: dict[str, str], audience: str) -> tuple[str, str] | None:
        """Adds the client authentication to `form`; returns HTTP Basic credentials when those are used."""
        if self.private_key is None:
            return (self.client_id, self.secret or "")
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": audience, "iat": now, "exp": now + 60,
                  "jti": uuid.uuid4().hex}
        headers = {"kid": self.key_id} if self.key_id else None
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = jwt.encode(claims, self.private_key, algorithm=self.key_alg, headers=headers)
        form["client_id"] = self.client_id
        return None


def token_digest(token: str) -> str:
    """What identifies a token in caches and logs: its SHA-256 (hex), never the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Introspector:
    """Asks the introspection endpoint about a token; answers (active or not) cached by token digest."""

    def __init__(self, url: str | Callable[[], Awaitable[str]], credentials: ClientCredentials,
                 client: Callable[[], httpx.AsyncClient], *, cache_cap: float = 60.0,
                 max_entries: int = 10_000) -> None:
        self._url = url
        self.credentials = credentials
        self._client = client
        self.cache_cap = cache_cap
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.requests = 0  # introspection calls made (for tests and stats)

    async def introspect(self, token: str) -> dict[str, Any]:
        """The endpoint's answer for `token` (a JSON object with a boolean `active`), possibly from the cache."""
        key = token_digest(token)
        now = time.time()
        hit = self._cache.get(key)
        if hit is not None:
            if now < hit[0]:
                self._cache.move_to_end(key)
                return hit[1]
            del self._cache[key]
        answer = await self._ask(token)
        until = now + self.cache_cap
        exp = answer.get("exp")
        if answer.get("active") is True and isinstance(exp, int | float):
            until = min(until, float(exp))
        self._cache[key] = (until, answer)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return answer

    async def _ask(self, token: str) -> dict[str, Any]:
        url = self._url if isinstance(self._url, str) else await self._url()
        form = {"token": token, "token_type_hint": "access_token"}
        basic = self.credentials.apply(form, url)
        self.requests += 1
        try:
            async with self._client().stream("POST", url, data=form, auth=basic,
                                             headers={"Accept": "application/json"}) as r:
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise IntrospectionUnavailable("introspection answer larger than 64 KiB")
                status = r.status_code
        except httpx.HTTPError as e:
            raise IntrospectionUnavailable(f"introspection request failed ({type(e).__name__})") from None
        if status != 200:
            # 401/403 here means the gateway's own credentials were refused: an operator's problem, not the caller's
            raise IntrospectionUnavailable(f"introspection endpoint answered HTTP {status}")
        try:
            answer = orjson.loads(bytes(body))
        except orjson.JSONDecodeError:
            raise IntrospectionUnavailable("introspection answer is not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            raise IntrospectionUnavailable("introspection answer has no boolean 'active'")
        return answer
