"""OAuth 2.0 bearer tokens (RFC 6750) from a SMART App Launch 2.2 / Backend Services authorization server.

JWT access tokens (RFC 9068) are verified here against the issuer's JWKS: an algorithm allow-list checked before any
key is looked up (never `none` nor HMAC, so a public key can never serve as an HMAC secret), exactly one key matching
`kid` + key type, `iss`, `aud`, `exp`, `nbf` and `iat` with a bounded leeway. Anything that is not a JWS is an opaque
token and goes to RFC 7662 introspection (`active` required), when configured. Either way the result is a
`Principal`; a refusal is an `AuthError` whose message never contains the token.

Settings (environment, read by `OAuthConfig.from_env`):
  HELIXGATE_OAUTH_ISSUER           the authorization server's issuer URL (unset: OAuth off)
  HELIXGATE_OAUTH_AUDIENCE         this gateway's resource URL(s) tokens must name in `aud` (comma-separated)
  HELIXGATE_OAUTH_JWKS_URL         else `jwks_uri` from the issuer's metadata (.well-known discovery)
  HELIXGATE_OAUTH_ALGORITHMS       allow-list, default RS256,RS384,ES256,ES384,PS256,PS384
  HELIXGATE_OAUTH_LEEWAY_S         clock skew for exp/nbf/iat, default 30, at most 60
  HELIXGATE_OAUTH_JWKS_MAX_AGE_S   the longest a JWKS is kept, whatever its Cache-Control says (default 3600)
  HELIXGATE_OAUTH_JWKS_COOLDOWN_S  the least time between two JWKS fetches (default 30)
  HELIXGATE_OAUTH_INTROSPECTION_URL           else `introspection_endpoint` from the metadata
  HELIXGATE_OAUTH_INTROSPECTION_CLIENT_ID     the gateway's client at the introspection endpoint (enables it)
  HELIXGATE_OAUTH_INTROSPECTION_CLIENT_SECRET[_FILE]   client_secret_basic, or
  HELIXGATE_OAUTH_INTROSPECTION_KEY_FILE (+ _KEY_ALG, default RS384, + _KEY_ID)   private_key_jwt (PEM)
  HELIXGATE_OAUTH_INTROSPECTION_CACHE_S       how long an introspection answer is reused (default 60, at most 300)
  HELIXGATE_OAUTH_TOKEN_URL        token endpoint advertised in smart-configuration (else from the metadata)
  HELIXGATE_OAUTH_CA_FILE          CA bundle for the authorization server's TLS (else the system's)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway.auth.introspection import ClientCredentials, IntrospectionUnavailable, Introspector, token_digest
from gateway.auth.jwks import KTY_OF_ALG, KeySetCache, KeySetUnavailable
from gateway.auth.principal import AuthError, Principal
from gateway.settings import SettingsError

log = logging.getLogger("helixgate.auth")

DEFAULT_ALGORITHMS = ("RS256", "RS384", "ES256", "ES384", "PS256", "PS384")
ACCEPTABLE_ALGORITHMS = frozenset(KTY_OF_ALG)  # asymmetric only: never none, never HS*
MAX_LEEWAY_S = 60
MAX_INTROSPECTION_CACHE_S = 300
MAX_TOKEN_CHARS = 16 * 1024
# RFC 9068 §4: at+jwt; "JWT" (or no typ) from authorization servers that predate it. An id_token (typ JWT) still
# fails the audience check: its aud is the client, not this gateway.
ACCEPTED_TYP = frozenset({"at+jwt", "application/at+jwt", "jwt"})
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1 b64token
VERIFIED_CACHE_S = 60.0  # a verified JWT is not re-verified for this long (nor past its exp)
VERIFIED_CACHE_ENTRIES = 10_000


class AuthServerUnavailable(AuthError):
    """The authorization server's keys or introspection endpoint could not be reached: the token could not be
    checked (fail closed). A 503 rather than a 401, as the caller's token may well be good."""

    status = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, error="invalid_token")


def _check_url(name: str, url: str) -> str:
    """An https URL, or http on a loopback host (tests, a local sidecar); anything else is a settings error."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    host = parts.hostname or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if parts.scheme == "http" and loopback:
        return url
    raise SettingsError(f"{name}={url!r} must be an https URL (http only on a loopback host)")


@dataclass(frozen=True, slots=True)
class OAuthConfig:
    issuer: str
    audience: tuple[str, ...]
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_s: int = 30
    jwks_max_age_s: int = 3600
    jwks_cooldown_s: int = 30
    introspection_url: str | None = None
    introspection: ClientCredentials | None = field(default=None, repr=False)
    introspection_cache_s: int = 60
    token_url: str | None = None
    ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OAuthConfig | None:
        """The OAuth settings, or None when HELIXGATE_OAUTH_ISSUER is unset. Raises SettingsError naming the
        variable that cannot be used."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = (env.get(f"HELIXGATE_OAUTH_{name}") or "").strip()
            return value or None

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"HELIXGATE_OAUTH_{name}={raw!r} is not an integer") from None
            if not low <= value <= high:
                raise SettingsError(f"HELIXGATE_OAUTH_{name}={raw!r} must be between {low} and {high}")
            return value

        def url(name: str) -> str | None:
            raw = get(name)
            return None if raw is None else _check_url(f"HELIXGATE_OAUTH_{name}", raw)

        issuer = url("ISSUER")
        if issuer is None:
            return None
        issuer = issuer.rstrip("/")
        audience = tuple(a.strip() for a in (get("AUDIENCE") or "").split(",") if a.strip())
        if not audience:
            raise SettingsError("HELIXGATE_OAUTH_AUDIENCE is required with HELIXGATE_OAUTH_ISSUER: the URL of this "
                                "gateway that tokens must name in 'aud'")
        algorithms = DEFAULT_ALGORITHMS
        if raw_algs := get("ALGORITHMS"):
            algorithms = tuple(a.strip() for a in raw_algs.split(",") if a.strip())
            refused = [a for a in algorithms if a not in ACCEPTABLE_ALGORITHMS]
            if refused or not algorithms:
                raise SettingsError(f"HELIXGATE_OAUTH_ALGORITHMS: {', '.join(refused) or 'empty'} not accepted; "
                                    f"choose from {', '.join(sorted(ACCEPTABLE_ALGORITHMS))} (never none or HS*)")
        return cls(
            issuer=issuer, audience=audience, jwks_url=url("JWKS_URL"), algorithms=algorithms,
            leeway_s=integer("LEEWAY_S", 30, 0, MAX_LEEWAY_S),
            jwks_max_age_s=integer("JWKS_MAX_AGE_S", 3600, 1, 7 * 24 * 3600),
            jwks_cooldown_s=integer("JWKS_COOLDOWN_S", 30, 1, 3600),
            introspection_url=url("INTROSPECTION_URL"), introspection=_introspection_credentials(get),
            introspection_cache_s=integer("INTROSPECTION_CACHE_S", 60, 0, MAX_INTROSPECTION_CACHE_S),
            token_url=url("TOKEN_URL"), ca_file=get("CA_FILE"))


def _introspection_credentials(get: Any) -> ClientCredentials | None:
    client_id = get("INTROSPECTION_CLIENT_ID")
    if client_id is None:
        return None
    secret = get("INTROSPECTION_CLIENT_SECRET")
    if secret_file := get("INTROSPECTION_CLIENT_SECRET_FILE"):
        try:
            secret = Path(secret_file).read_text().strip()
        except OSError as e:
            raise SettingsError(f"HELIXGATE_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE: cannot read ({e.strerror})") \
                from None
    if key_file := get("INTROSPECTION_KEY_FILE"):
        alg = get("INTROSPECTION_KEY_ALG") or "RS384"
        if alg not in ACCEPTABLE_ALGORITHMS:
            raise SettingsError(f"HELIXGATE_OAUTH_INTROSPECTION_KEY_ALG={alg!r} is not an asymmetric JWS algorithm")
        try:
            key = load_pem_private_key(Path(key_file).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not an unencrypted PEM private key"
            raise SettingsError(f"HELIXGATE_OAUTH_INTROSPECTION_KEY_FILE: {reason}") from None
        return ClientCredentials(client_id, private_key=key, key_alg=alg, key_id=get("INTROSPECTION_KEY_ID"))
    if secret is None:
        raise SettingsError("HELIXGATE_OAUTH_INTROSPECTION_CLIENT_ID needs _CLIENT_SECRET, _CLIENT_SECRET_FILE or "
                            "_KEY_FILE")
    return ClientCredentials(client_id, secret=secret)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str) and s and not any(c.isspace() for c in s)]
    return []


def principal_from_claims(claims: Mapping[str, Any], via: str) -> Principal:
    """The Principal a verified token's claims (or an introspection answer) describe."""
    client = claims.get("client_id") or claims.get("sub")
    if not isinstance(client, str) or not client or len(client) > 256:
        raise AuthError("the token names no client (client_id or sub)")
    scopes = list(dict.fromkeys([*_strings(claims.get("scope")), *_strings(claims.get("scp"))]))
    patient = claims.get("patient")
    fhir_user = claims.get("fhirUser")
    kept = {k: v for k, v in claims.items() if k != "active"}
    return Principal(client=client, via=via, scopes=tuple(scopes),
                     patient=patient if isinstance(patient, str) and patient else None,
                     fhir_user=fhir_user if isinstance(fhir_user, str) and fhir_user else None, claims=kept)


class BearerVerifier:
    """Verifies bearer tokens for one authorization server (`OAuthConfig`); `await verify(token)`."""

    def __init__(self, config: OAuthConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._given_http = http
        self._http: httpx.AsyncClient | None = http
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._metadata: dict[str, Any] | None = None
        self._metadata_attempt = float("-inf")
        self._metadata_lock: asyncio.Lock | None = None
        self.keys = KeySetCache(config.jwks_url or self._discovered_jwks_url, self._client,
                                max_age_cap=float(config.jwks_max_age_s), cooldown=float(config.jwks_cooldown_s))
        self.introspector: Introspector | None = None
        if config.introspection is not None:
            self.introspector = Introspector(config.introspection_url or self._discovered_introspection_url,
                                             config.introspection, self._client,
                                             cache_cap=float(config.introspection_cache_s))
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    # -- HTTP to the authorization server -------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        """One AsyncClient per event loop (an AsyncClient cannot move between loops; tests run several)."""
        if self._given_http is not None:
            return self._given_http
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            verify: ssl.SSLContext | bool = True
            if self.config.ca_file:
                verify = ssl.create_default_context(cafile=self.config.ca_file)
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0), follow_redirects=False, verify=verify)
            self._http_loop = loop
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._given_http is None:
            await self._http.aclose()
            self._http = None

    async def metadata(self) -> dict[str, Any]:
        """The authorization server's metadata (OpenID discovery, else RFC 8414), fetched once; its `issuer` must be
        the configured one. Raises AuthServerUnavailable when it cannot be had (retried after the cooldown)."""
        if self._metadata is not None:
            return self._metadata
        if self._metadata_lock is None:
            self._metadata_lock = asyncio.Lock()
        async with self._metadata_lock:
            if self._metadata is not None:
                return self._metadata
            now = time.monotonic()
            if now - self._metadata_attempt < self.config.jwks_cooldown_s:
                raise AuthServerUnavailable("the authorization server's metadata is unavailable")
            self._metadata_attempt = now
            issuer = self.config.issuer
            parts = urlsplit(issuer)
            root = f"{parts.scheme}://{parts.netloc}"
            candidates = [f"{issuer}/.well-known/openid-configuration",
                          f"{root}/.well-known/oauth-authorization-server{parts.path}"]  # RFC 8414 §3.1
            for url in candidates:
                try:
                    r = await self._client().get(url, headers={"Accept": "application/json"})
                    document = orjson.loads(r.content) if r.status_code == 200 else None
                except (httpx.HTTPError, orjson.JSONDecodeError):
                    continue
                if isinstance(document, dict):
                    if document.get("issuer", "").rstrip("/") != issuer:
                        log.error("authorization server metadata at %s names issuer %r, not the configured %r",
                                  url, document.get("issuer"), issuer)  # RFC 8414 §3.3: must not be used
                        continue
                    self._metadata = document
                    return document
            raise AuthServerUnavailable("the authorization server's metadata is unavailable")

    async def _discovered_jwks_url(self) -> str:
        url = (await self.metadata()).get("jwks_uri")
        if not isinstance(url, str):
            raise KeySetUnavailable("the authorization server's metadata has no jwks_uri")
        try:
            return _check_url("jwks_uri", url)
        except SettingsError as e:
            raise KeySetUnavailable(str(e)) from None

    async def _discovered_introspection_url(self) -> str:
        url = (await self.metadata()).get("introspection_endpoint")
        if not isinstance(url, str):
            raise IntrospectionUnavailable("the authorization server's metadata has no introspection_endpoint")
        try:
            return _check_url("introspection_endpoint", url)
        except SettingsError as e:
            raise IntrospectionUnavailable(str(e)) from None

    async def token_endpoint(self) -> str | None:
        """The token URL to advertise (configured, else discovered; None when neither is known)."""
        if self.config.token_url:
            return self.config.token_url
        try:
            url = (await self.metadata()).get("token_endpoint")
        except AuthServerUnavailable:
            return None
        return url if isinstance(url, str) else None

    # -- verification ---------------------------------------------------------------------------------------------

    async def verify(self, token: str) -> Principal:
        """The Principal the bearer token proves; AuthError (reason without the token) when it proves nothing."""
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("malformed bearer token")
        digest = token_digest(token)
        hit = self._verified.get(digest)  # first: the common case (a client reuses its token) costs one hash
        if hit is not None:
            if time.time() < hit[0]:
                return hit[1]
            del self._verified[digest]
        if not B64TOKEN.fullmatch(token):
            raise AuthError("malformed bearer token")
        try:
            if token.count(".") == 2:
                principal, exp = await self._verify_jwt(token)
                self._remember(digest, principal, exp)
                return principal
            if self.introspector is None:
                raise AuthError("the token is not a JWT and no introspection endpoint is configured")
            principal, until = await self._verify_introspected(token)
            self._remember(digest, principal, until)  # the same Principal while the answer may be reused
            return principal
        except AuthError as e:
            log.debug("bearer token %s… refused: %s", digest[:12], e)  # the middleware logs the refusal
            raise

    def _remember(self, digest: str, principal: Principal, exp: float) -> None:
        self._verified[digest] = (min(exp, time.time() + VERIFIED_CACHE_S), principal)
        while len(self._verified) > VERIFIED_CACHE_ENTRIES:
            self._verified.popitem(last=False)

    async def _verify_jwt(self, token: str) -> tuple[Principal, float]:
        config = self.config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if alg not in config.algorithms:  # before any key is looked up: no none, no HS* with a public key
            raise AuthError("the token's signing algorithm is not accepted")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYP):
            raise AuthError("the token is not an access token (typ)")
        if "crit" in header:
            raise AuthError("the token has critical header parameters this gateway does not understand")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthError("malformed token (kid)")
        try:
            key = await self.keys.key_for(kid, alg)
        except KeySetUnavailable as e:
            log.warning("cannot verify bearer tokens: %s", e)
            raise AuthServerUnavailable("the authorization server's signing keys are unavailable") from None
        if key is None:
            raise AuthError("the token's signing key is unknown")
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=list(config.audience),
                                issuer=config.issuer, leeway=config.leeway_s,
                                options={"require": ["exp", "iss", "aud"], "verify_signature": True})
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("the token is not yet valid") from None
        except jwt.InvalidAudienceError:
            raise AuthError("the token's audience is not this gateway") from None
        except jwt.InvalidIssuerError:
            raise AuthError("the token's issuer is not the configured authorization server") from None
        except jwt.MissingRequiredClaimError as e:
            raise AuthError(f"the token has no {e.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthError("the token's signature does not verify") from None
        except jwt.InvalidTokenError:
            raise AuthError("the token is invalid") from None
        self._refuse_sender_constrained(claims)
        return principal_from_claims(claims, "jwt"), float(claims["exp"]) + config.leeway_s

    async def _verify_introspected(self, token: str) -> tuple[Principal, float]:
        assert self.introspector is not None
        try:
            answer = await self.introspector.introspect(token)
        except IntrospectionUnavailable as e:
            log.warning("cannot introspect bearer tokens: %s", e)
            raise AuthServerUnavailable("the authorization server's introspection endpoint is unavailable") \
                from None
        if answer.get("active") is not True:
            raise AuthError("the token is not active")
        config = self.config
        now = time.time()
        if "iss" in answer and str(answer["iss"]).rstrip("/") != config.issuer:
            raise AuthError("the token's issuer is not the configured authorization server")
        aud = answer.get("aud")
        if aud is not None:
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not set(config.audience) & {a for a in auds if isinstance(a, str)}:
                raise AuthError("the token's audience is not this gateway")
        exp, nbf = answer.get("exp"), answer.get("nbf")
        if isinstance(exp, int | float) and exp + config.leeway_s <= now:
            raise AuthError("the token has expired")
        if isinstance(nbf, int | float) and nbf - config.leeway_s > now:
            raise AuthError("the token is not yet valid")
        self._refuse_sender_constrained(answer)
        until = now + self.introspector.cache_cap
        if isinstance(exp, int | float):
            until = min(until, exp + config.leeway_s)
        return principal_from_claims(answer, "introspection"), until

    @staticmethod
    def _refuse_sender_constrained(claims: Mapping[str, Any]) -> None:
        # A DPoP- or certificate-bound token (RFC 9449 / RFC 8705) used as a plain bearer token would defeat its
        # binding; the gateway checks neither proof, so it refuses them.
        if "cnf" in claims:
            raise AuthError("the token is sender-constrained (cnf); this gateway accepts bearer tokens only")


def verifier_from_env(env: Mapping[str, str] | None = None) -> BearerVerifier | None:
    """A BearerVerifier from HELIXGATE_OAUTH_* settings; None when OAuth is not configured."""
    config = OAuthConfig.from_env(env)
    return None if config is None else BearerVerifier(config)
