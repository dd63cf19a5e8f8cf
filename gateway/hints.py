"""What a 404 tells the caller: which route exists near the path asked for, or which setting would make it exist.

Only the app's own 404s for paths no route takes come here (a route's own 404, e.g. an unknown bulk job, keeps its
message). The path is not echoed back: it may hold an id.
"""

from __future__ import annotations

from gateway.settings import Settings

ROOT = ("helixgate serves FHIR under /fhir (try it in the browser at /playground/): POST /fhir/$convert (convert "
        "a message or document), POST /fhir/$validate, GET|POST /fhir/ConceptMap/$translate, GET /fhir/metadata (the "
        "CapabilityStatement); /openapi.json describes the HTTP API, /healthz the service's health")
FHIR_BASE = ("/fhir is the FHIR base: GET /fhir/metadata for the CapabilityStatement, POST /fhir/$convert to convert, "
             "POST /fhir/$validate to validate")
NO_UPSTREAM = ("this gateway has no upstream FHIR server, so it serves no FHIR resources: set HELIXGATE_UPSTREAM_URL "
               "to proxy FHIR reads, searches and writes through the validating facade")
ELSEWHERE = "no route takes this path; /openapi.json lists the gateway's routes and /fhir/metadata its FHIR operations"


def not_found(path: str, method: str, settings: Settings | None) -> str:
    """The message of a 404 for a path no route takes."""
    upstream = settings is not None and settings.upstream_url is not None
    bare = path.rstrip("/")
    if bare == "":
        return ROOT
    if bare == "/fhir":
        return FHIR_BASE if upstream else f"{FHIR_BASE}; {NO_UPSTREAM}"
    if path.startswith("/fhir/") and not upstream:
        first = path[len("/fhir/"):].split("/", 1)[0]
        if first[:1].isupper() or first.startswith("_history"):  # a resource type: what the facade would serve
            return NO_UPSTREAM
    return ELSEWHERE
