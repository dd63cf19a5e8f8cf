"""Who is calling: the identity the auth layer proves for a request, read by every part that acts for a client
(scope checks, bulk job ownership, rate limits, the AuditEvent agent). Never holds the credential itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCOPE_KEY = "helixgate.principal"  # where the auth middleware puts the Principal in the ASGI scope


@dataclass(frozen=True, slots=True)
class Principal:
    client: str  # token client_id/sub, API key name, or client-certificate subject; "anonymous" when auth is off
    via: str  # "jwt" | "introspection" | "api-key" | "mtls" | "none"
    scopes: tuple[str, ...] = ()  # granted scopes as given (SMART v1/v2 strings); parsed by gateway.auth.scopes
    patient: str | None = None  # launch context / patient claim: patient/ scopes are restricted to this compartment
    fhir_user: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # non-secret token claims

    @property
    def authenticated(self) -> bool:
        return self.via != "none"


ANONYMOUS = Principal(client="anonymous", via="none")


class AuthError(Exception):
    """A credential was missing or could not be verified: 401 with WWW-Authenticate. The message says why
    without echoing the credential."""

    def __init__(self, message: str, error: str = "invalid_token") -> None:
        super().__init__(message)
        self.error = error  # RFC 6750 error code for the WWW-Authenticate header


def principal_of(scope: Any) -> Principal:
    """The Principal of an ASGI scope or Starlette Request (ANONYMOUS when no auth middleware ran)."""
    raw = getattr(scope, "scope", scope)
    return raw.get(SCOPE_KEY, ANONYMOUS)
