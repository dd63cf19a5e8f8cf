"""The auth middleware (pure ASGI): who is calling, and may they do what this route does.

For every HTTP request it finds the route the router will take and its entry in gateway.auth.table, and puts the
access class at `scope["helixgate.access"]`. Public routes pass. When auth is on (gateway.auth.config), every other
request needs a credential:

- `Authorization: Bearer <token>` — an OAuth 2.0 access token, verified by gateway.auth.oauth;
- `Authorization: ApiKey <key>` — an API key from HELIXGATE_API_KEYS_FILE (gateway.auth.keys). The key goes in
  Authorization, not X-API-Key, because that is the header proxies, HTTP clients and our own reports treat as a
  secret (the conformance kit redacts it); a key sent as X-API-Key is refused saying so;
- without either, the verified client certificate of a mutual-TLS connection (gateway.auth.certs).

The Principal goes to `scope[SCOPE_KEY]` (the audit, bulk jobs and rate limits read it), then the scopes are checked
(gateway.auth.enforce). A missing or invalid credential is a 401 with `WWW-Authenticate` (RFC 6750 §3: no error code
when none was sent, `invalid_token`/`invalid_request` otherwise); scopes that do not allow the request are a 403
OperationOutcome `forbidden` naming the missing scope. Requests no route takes need credentials as well, so the
404/405 of an unknown path tells nothing to anonymous callers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth.config import AuthConfig
from gateway.auth.enforce import REALM, authorize
from gateway.auth.keys import KeyStore
from gateway.auth.principal import SCOPE_KEY, AuthError, Principal
from gateway.auth.table import ACCESS_KEY, RouteIndex, request_need
from gateway.responses import outcome_response

log = logging.getLogger("helixgate.auth")
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f-\U0010ffff]')  # not allowed in an RFC 6750 error_description


class Authenticator:
    """The configured credential checks: API keys, bearer tokens, client certificates."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.keys = KeyStore(config.api_keys_file) if config.api_keys_file else None
        self._bearer: Any = None
        if config.oauth:
            from gateway.auth.oauth import verifier_from_env

            self._bearer = verifier_from_env()  # SettingsError names a bad HELIXGATE_OAUTH_* setting at start-up
        self._mtls: Any = None
        if config.mtls:
            from gateway.auth.certs import MtlsClients

            self._mtls = MtlsClients.from_env()  # SettingsError names a bad HELIXGATE_MTLS_CLIENTS at start-up

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    async def token_endpoint(self) -> str | None:
        """The authorization server's token URL: configured, else from its metadata."""
        if self.config.token_url or self._bearer is None:
            return self.config.token_url
        return await self._bearer.token_endpoint()

    async def aclose(self) -> None:
        if self._bearer is not None:
            await self._bearer.aclose()

    async def authenticate(self, scope: Scope, headers: Headers) -> Principal:
        """The caller's Principal; AuthError (error '' when no credential was sent at all) otherwise."""
        authorization = headers.get("authorization")
        if authorization:
            scheme, _, credential = authorization.strip().partition(" ")
            scheme, credential = scheme.lower(), credential.strip()
            if not credential:
                raise AuthError("the Authorization header has no credential after its scheme", "invalid_request")
            if scheme == "bearer":
                if self._bearer is None:
                    raise AuthError("bearer tokens are not accepted here: no authorization server is configured")
                return await self._bearer.verify(credential)
            if scheme == "apikey":
                if self.keys is None:
                    raise AuthError("API keys are not accepted here: HELIXGATE_API_KEYS_FILE is not set")
                return self.keys.verify(credential)
            raise AuthError(f"unsupported Authorization scheme {scheme[:20]!r}; use Bearer or ApiKey",
                            "invalid_request")
        if headers.get("x-api-key"):
            raise AuthError("send the API key as 'Authorization: ApiKey <key>', not X-API-Key", "invalid_request")
        certified = self._certificate(scope)
        if certified is not None:
            return certified
        raise AuthError("credentials are required", "")

    def _certificate(self, scope: Scope) -> Principal | None:
        """The Principal of the connection's verified client certificate, when HELIXGATE_MTLS_CLIENTS names it."""
        if self._mtls is None:
            return None
        from gateway.auth.certs import client_certificate

        return self._mtls.principal(client_certificate(scope))

    def challenge(self, error: AuthError | None = None, used: str | None = None) -> str:
        """The WWW-Authenticate value: a challenge per accepted scheme, the failed one with its error."""
        schemes = [s for s, on in (("Bearer", self.config.oauth), ("ApiKey", self.keys is not None)) if on]
        schemes = schemes or ["Bearer"]
        if used not in {s.lower() for s in schemes}:
            used = None  # a scheme not offered: the error goes with each challenge
        out = []
        for s in schemes:
            text = f'{s} realm="{REALM}"'
            if error is not None and error.error and (used is None or used == s.lower()):
                text += f', error="{error.error}", error_description="{_UNSAFE.sub("?", str(error))[:200]}"'
            out.append(text)
        return ", ".join(out)


_WORDS = frozenset({"", "fhir", "bulk", "_history", "_search", "metadata", "metrics", "healthz", "playground",
                    "openapi.json", ".well-known", "smart-configuration"})


def _shape(path: str) -> str:
    """The path as logged: fixed words, the resource type after /fhir and operations kept; ids (which may identify
    a patient) and anything else a client chose replaced by {id}."""
    parts = path.split("/")[:8]
    return "/".join(seg if seg in _WORDS or seg.startswith("$")
                    or (i == 2 and parts[1] == "fhir" and seg[:1].isupper() and seg.isalpha() and len(seg) <= 64)
                    else "{id}" for i, seg in enumerate(parts))


class AuthMiddleware:
    def __init__(self, app: ASGIApp, *, auth: Authenticator, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.auth = auth
        self.index = RouteIndex(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        need, query = request_need(self.index, scope, headers)
        scope[ACCESS_KEY] = need.access
        if need.public or not self.auth.enabled:
            await self.app(scope, receive, send)
            return
        try:
            principal = await self.auth.authenticate(scope, headers)
        except AuthError as e:
            used = (headers.get("authorization") or "").split(" ", 1)[0].lower() or None
            status = getattr(e, "status", 401)  # 503: the authorization server could not be asked
            log.info("%d %s %s: %s", status, scope["method"], _shape(scope["path"]), e)
            if status == 503:
                response = outcome_response(503, "transient", "auth-server-unavailable", f"{e}",
                                            headers={"Retry-After": "5"})
            else:
                response = outcome_response(401, "login", "unauthenticated", f"{e}",
                                            headers={"WWW-Authenticate": self.auth.challenge(e, used)})
            await response(scope, receive, send)
            return
        scope[SCOPE_KEY] = principal
        refused = await authorize(scope, principal, need, query)
        if refused is not None:
            log.info("%d %s %s for %s (%s)", refused.status_code, scope["method"], _shape(scope["path"]),
                     principal.client, principal.via)
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)
