"""The gateway's own credentials for the upstream FHIR server (the caller's Authorization is never forwarded).

- `TokenFile`: a static bearer token read from a file, read again when the file changes (rotated by a secret
  manager or an operator) and after a 401.
- `ClientCredentials`: OAuth 2.0 client credentials with a `private_key_jwt` client assertion, as SMART Backend
  Services (SMART App Launch 2.2.0, backend-services.md / client-confidential-asymmetric.md) asks: RS384 or ES384,
  `kid` in the header, iss = sub = client_id, aud = the token URL, exp at most five minutes ahead, a unique jti.
  The access token is kept until shortly before it expires and fetched again once after a 401 from the upstream.

Neither ever logs a token or an assertion.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import stat
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.settings import Settings, SettingsError
from gateway.upstream.client import UpstreamUnavailable

log = logging.getLogger("helixgate.upstream")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 240  # seconds: under SMART's five-minute cap with a minute for clock skew
DEFAULT_EXPIRES_IN = 300  # when the token response has no expires_in (SMART: SHOULD be ≤ 300)


class UpstreamAuthError(UpstreamUnavailable):
    """The gateway could not get a credential for the upstream (token file unreadable, token endpoint down or
    refusing the client). A kind of UpstreamUnavailable: callers answer 503 / retry later as for an outage."""


class Credentials(Protocol):
    async def authorization(self) -> str:
        """The Authorization header value for the next upstream request. Raises UpstreamAuthError."""
        ...

    def invalidate(self, used: str) -> None:
        """The upstream answered 401 to `used`: get another one next time (unless already replaced)."""
        ...

    async def aclose(self) -> None: ...


class TokenFile:
    """A bearer token from a file (whitespace around it ignored), read again when the file changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._signature: tuple[int, int, int] | None = None
        self._value = ""
        self._warned = False

    async def authorization(self) -> str:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise UpstreamAuthError(f"the upstream token file cannot be read ({type(e).__name__})") from None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        if signature != self._signature:
            if st.st_mode & 0o077 and not self._warned:
                log.warning("upstream token file %s is readable by other users (mode %03o)", self.path,
                            stat.S_IMODE(st.st_mode))
                self._warned = True
            try:
                token = self.path.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError) as e:
                raise UpstreamAuthError(f"the upstream token file cannot be read ({type(e).__name__})") from None
            if not token or any(c.isspace() for c in token):
                raise UpstreamAuthError("the upstream token file must hold one token (it is empty or holds spaces)")
            self._value, self._signature = f"Bearer {token}", signature
        return self._value

    def invalidate(self, used: str) -> None:
        if used == self._value:
            self._signature = None  # read again, even if a rotation kept size and mtime

    async def aclose(self) -> None:
        return None


def _algorithm(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise SettingsError(f"the upstream private key is RSA-{key.key_size}; use at least 2048 bits")
        return "RS384"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return "ES384"
    raise SettingsError("the upstream private key must be RSA (RS384) or EC P-384 (ES384), as SMART Backend "
                        "Services requires")


def public_jwk(key: Any, kid: str | None = None) -> dict[str, Any]:
    """The public JWK of a private key (what is registered with the authorization server), with its kid and alg."""
    alg = _algorithm(key)
    public = key.public_key()
    raw = (RSAAlgorithm if alg == "RS384" else ECAlgorithm).to_jwk(public, as_dict=True)
    jwk = {k: raw[k] for k in (("kty", "n", "e") if alg == "RS384" else ("kty", "crv", "x", "y"))}
    return {**jwk, "kid": kid or thumbprint(jwk), "alg": alg, "use": "sig"}


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256 of the required members in lexical order, no whitespace)."""
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = orjson.dumps({m: jwk[m] for m in members}, option=orjson.OPT_SORT_KEYS)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def load_private_key(path: str | Path) -> Any:
    """A PEM private key (unencrypted: protect the file instead). Raises SettingsError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SettingsError(f"HELIXGATE_UPSTREAM_PRIVATE_KEY {path}: cannot read it ({type(e).__name__})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise SettingsError(f"HELIXGATE_UPSTREAM_PRIVATE_KEY {path}: not an unencrypted PEM private key ({e})") \
            from None
    _algorithm(key)
    return key


class ClientCredentials:
    """Access tokens from `token_url` for `client_id`, authenticated by a private_key_jwt assertion signed with
    `key`; one request at a time fetches, the others wait for its token."""

    def __init__(self, token_url: str, client_id: str, key: Any, *, scope: str = "", key_id: str | None = None,
                 resource: str = "", timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.key = key
        self.alg = _algorithm(key)
        self.kid = public_jwk(key, key_id)["kid"]
        self.scope = scope
        self.resource = resource
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._lock = asyncio.Lock()
        self._value = ""
        self._refresh_at = 0.0
        self.fetched = 0  # tokens fetched so far (tests, metrics)

    def assertion(self) -> str:
        """A fresh client assertion JWT (a new jti each time: the server rejects a replayed one)."""
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "iat": now,
                  "exp": now + ASSERTION_LIFETIME, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.key, algorithm=self.alg, headers={"kid": self.kid, "typ": "JWT"})

    async def authorization(self) -> str:
        if self._value and time.monotonic() < self._refresh_at:
            return self._value
        async with self._lock:
            if not self._value or time.monotonic() >= self._refresh_at:  # another request may have fetched one
                await self._fetch()
            return self._value

    def invalidate(self, used: str) -> None:
        if used == self._value:
            self._value, self._refresh_at = "", 0.0

    async def _fetch(self) -> None:
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion()}
        if self.scope:
            form["scope"] = self.scope
        if self.resource:
            form["resource"] = self.resource
        started = time.monotonic()
        try:
            r = await self._client.post(self.token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as e:
            raise UpstreamAuthError(f"the upstream token endpoint is unreachable ({type(e).__name__})",
                                    retry_after=5) from None
        try:
            doc = orjson.loads(r.content) if r.content else {}
        except orjson.JSONDecodeError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        if r.status_code != 200 or not isinstance(doc.get("access_token"), str) or not doc["access_token"]:
            reason = str(doc.get("error") or f"HTTP {r.status_code}")[:100]
            detail = str(doc.get("error_description") or "")[:200]
            log.error("upstream token request for client %s refused: %s %s", self.client_id, reason, detail)
            raise UpstreamAuthError(f"the upstream token endpoint refused the gateway's client ({reason})",
                                    status=r.status_code, retry_after=5)
        if str(doc.get("token_type", "bearer")).lower() != "bearer":
            raise UpstreamAuthError(f"the upstream token endpoint issued a {doc.get('token_type')!r} token; "
                                    "only bearer tokens are supported")
        expires_in = doc.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_EXPIRES_IN
        margin = min(60.0, max(5.0, lifetime / 10))  # fetch anew shortly before it expires
        self._value = f"Bearer {doc['access_token']}"
        self._refresh_at = started + max(0.0, lifetime - margin)
        self.fetched += 1

    async def aclose(self) -> None:
        await self._client.aclose()


ENV = ("HELIXGATE_UPSTREAM_TOKEN_FILE", "HELIXGATE_UPSTREAM_CLIENT_ID", "HELIXGATE_UPSTREAM_TOKEN_URL",
       "HELIXGATE_UPSTREAM_PRIVATE_KEY")


def check_env(env: Mapping[str, str]) -> None:
    """The upstream credential settings fit together. Raises SettingsError naming what is missing or extra."""
    has = {name: bool(env.get(name)) for name in ENV}
    client = [n for n in ENV[1:] if has[n]]
    if has["HELIXGATE_UPSTREAM_TOKEN_FILE"] and client:
        raise SettingsError("set either HELIXGATE_UPSTREAM_TOKEN_FILE (a static token) or the client credentials "
                            f"({', '.join(client)}), not both")
    if client and len(client) < 3:
        missing = [n for n in ENV[1:] if not has[n]]
        raise SettingsError(f"upstream client credentials need {', '.join(missing)} as well")
    for name in ("HELIXGATE_UPSTREAM_SCOPE", "HELIXGATE_UPSTREAM_KEY_ID", "HELIXGATE_UPSTREAM_RESOURCE"):
        if env.get(name) and not client:
            raise SettingsError(f"{name} applies to client credentials: set HELIXGATE_UPSTREAM_CLIENT_ID, "
                                "HELIXGATE_UPSTREAM_TOKEN_URL and HELIXGATE_UPSTREAM_PRIVATE_KEY")


def make_credentials(settings: Settings) -> Credentials | None:
    """The configured upstream credentials, or None (requests go without Authorization). Raises SettingsError."""
    if settings.upstream_token_file:
        return TokenFile(settings.upstream_token_file)
    if settings.upstream_client_id:
        if not (settings.upstream_token_url and settings.upstream_private_key):
            raise SettingsError("upstream client credentials need HELIXGATE_UPSTREAM_TOKEN_URL and "
                                "HELIXGATE_UPSTREAM_PRIVATE_KEY")
        return ClientCredentials(settings.upstream_token_url, settings.upstream_client_id,
                                 load_private_key(settings.upstream_private_key), scope=settings.upstream_scope,
                                 key_id=settings.upstream_key_id or None, resource=settings.upstream_resource)
    return None
