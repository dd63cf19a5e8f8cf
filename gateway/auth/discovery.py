"""What clients learn about access before they have any: /.well-known/smart-configuration and the
CapabilityStatement's rest.security, both built from the route table.

SMART App Launch 2.2 (conformance.html) puts the discovery document at `[base]/.well-known/smart-configuration`,
the FHIR base being /fhir here; it is served at the server root too. helixgate is a resource server for SMART
Backend Services (client_credentials with private_key_jwt, RS384/ES384), so the document names the authorization
server's token endpoint (HELIXGATE_OAUTH_TOKEN_URL) and no authorize endpoint.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth.config import AuthConfig
from gateway.auth.scopes import OPERATIONS, URI_PREFIX
from gateway.auth.table import TABLE

SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
# Examples of what the gateway grants on: its operations, then resource scopes (any type may replace the '*').
SCOPES_SUPPORTED = (*(f"system/${op}" for op in OPERATIONS), "system/*.cruds", "user/*.cruds", "patient/*.cruds",
                    "system/*.rs", "user/*.rs", "patient/*.rs")


def _config(request: Request) -> AuthConfig:
    auth = getattr(request.app.state, "auth", None)
    return auth.config if auth is not None else AuthConfig()


async def _token_url(request: Request) -> str | None:
    auth = getattr(request.app.state, "auth", None)
    return await auth.token_endpoint() if auth is not None else None


def smart_configuration(config: AuthConfig, token_url: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1", "permission-patient",
                         "permission-user"],
        "code_challenge_methods_supported": ["S256"],
        "helixgate_access": {
            "enabled": config.enabled, "mechanisms": config.mechanisms(),
            "api_key_header": "Authorization: ApiKey <key>", "scope_uri_prefix": URI_PREFIX,
            "routes": access_table(),
        },
    }
    if token_url:
        doc["token_endpoint"] = token_url
    return doc


async def smart_configuration_route(request: Request) -> Response:
    return JSONResponse(smart_configuration(_config(request), await _token_url(request)))


def access_table() -> list[dict[str, str]]:
    return [{"methods": ", ".join(e.methods), "path": e.path, "access": e.access, "needs": e.needs} for e in TABLE]


async def security(request: Request) -> dict[str, Any]:
    """CapabilityStatement.rest.security: SMART-on-FHIR (with the oauth-uris extension) when bearer tokens are
    accepted; the route table in the description."""
    config = _config(request)
    token_url = await _token_url(request)
    rows = "; ".join(f"{e.path} {'/'.join(e.methods)}: {e.access} — {e.needs}" for e in TABLE)
    if not config.enabled:
        lead = "Access control is off (no credentials configured); every route answers without credentials. "
    else:
        lead = (f"Every route but the public ones needs a credential ({', '.join(config.mechanisms())}): "
                "Authorization: Bearer <token> or Authorization: ApiKey <key>; SMART v2 scopes (v1 accepted); "
                "helixgate's operations need system/$convert, system/$validate, system/$translate. ")
    out: dict[str, Any] = {"cors": False, "description": lead + "Routes: " + rows}
    if config.oauth:
        out["service"] = [{"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                           "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)"}]
        if token_url:
            out["extension"] = [{"url": OAUTH_URIS, "extension": [{"url": "token", "valueUri": token_url}]}]
    return out


routes = [
    Route("/.well-known/smart-configuration", smart_configuration_route, methods=["GET"]),
    Route("/fhir/.well-known/smart-configuration", smart_configuration_route, methods=["GET"]),
]
