"""Which authentication mechanisms are configured (from HELIXGATE_* environment variables).

Auth is on as soon as one mechanism is configured, and then every route but the public ones needs a credential —
on a loopback address too. With none configured the app runs open, which `helixgate serve` allows on a loopback
address only (elsewhere it refuses to start unless given --insecure-no-auth).

- API keys: HELIXGATE_API_KEYS_FILE (gateway.auth.keys).
- OAuth 2.0 bearer tokens: HELIXGATE_OAUTH_ISSUER (gateway.auth.oauth reads the rest of its HELIXGATE_OAUTH_*
  settings); the token endpoint (HELIXGATE_OAUTH_TOKEN_URL, else the issuer's metadata) is in smart-configuration.
- Client certificates (mutual TLS): HELIXGATE_MTLS_CLIENTS (gateway.auth.certs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

SETTINGS_HINT = ("HELIXGATE_API_KEYS_FILE (API keys: `helixgate keys create`), HELIXGATE_OAUTH_ISSUER (OAuth bearer "
                 "tokens) or HELIXGATE_MTLS_CLIENTS (client certificates)")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    api_keys_file: str | None = None
    oauth: bool = False  # bearer tokens verified by gateway.auth.oauth
    token_url: str | None = None  # the authorization server's token endpoint, for smart-configuration
    mtls: bool = False  # client certificates mapped to clients by gateway.auth.certs

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys_file or self.oauth or self.mtls)

    def mechanisms(self) -> list[str]:
        return [name for name, on in (("api-key", self.api_keys_file), ("oauth", self.oauth), ("mtls", self.mtls))
                if on]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthConfig:
        env = os.environ if env is None else env
        return cls(api_keys_file=env.get("HELIXGATE_API_KEYS_FILE") or None,
                   oauth=bool(env.get("HELIXGATE_OAUTH_ISSUER")),
                   token_url=env.get("HELIXGATE_OAUTH_TOKEN_URL") or None,
                   mtls=bool(env.get("HELIXGATE_MTLS_CLIENTS")))


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches this machine only (127.0.0.0/8, ::1, 'localhost'). Anything else — a name,
    0.0.0.0, a LAN address — may be reachable from elsewhere."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False
