"""The facade's route table: every interaction the gateway forwards, validates or serves in front of the upstream,
listed once. The Starlette routes are made from it, and /metadata announces it intersected with the upstream's
CapabilityStatement (gateway.facade.capability): what is not here is refused, and is never announced.

`requires` names the upstream interactions an entry is built from (FHIR R4 CapabilityStatement interaction codes);
an entry without any is the gateway's own. Scopes per route are in gateway/auth/table.py (TABLE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.routing import Route

from gateway.facade.capability import metadata_route
from gateway.facade.reads import read_route, search_post_route, system_route
from gateway.facade.writes import (
    bundle_route,
    create_route,
    delete_route,
    patch_route,
    update_route,
    validate_instance_route,
)
from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class Interaction:
    code: str  # the interaction code (CapabilityStatement.rest.resource.interaction / rest.interaction) or $operation
    level: str  # system, type or instance
    method: str
    paths: tuple[str, ...]  # Starlette path templates
    endpoint: Callable[..., Any]
    requires: tuple[str, ...]
    note: str = ""


_ANY = "/fhir/{type:str}/{id:path}"  # any depth: a path outside FHIR's grammar gets 400 from the handler, not 405
TABLE: tuple[Interaction, ...] = (
    Interaction("history-system", "system", "GET", ("/fhir/_history",), system_route, ("history-system",)),
    Interaction("search-system", "system", "GET", ("/fhir", "/fhir/"), system_route, ("search-system",),
                "e.g. ?_type=Patient,Observation"),
    Interaction("search-system", "system", "POST", ("/fhir/_search",), search_post_route, ("search-system",)),
    Interaction("transaction", "system", "POST", ("/fhir", "/fhir/"), bundle_route, ("transaction",),
                "validated; a national format posted here is converted and delivered"),
    Interaction("batch", "system", "POST", ("/fhir", "/fhir/"), bundle_route, ("batch",), "validated"),
    Interaction("search-type", "type", "POST", ("/fhir/{type:str}/_search",), search_post_route, ("search-type",),
                "form parameters, sent on as a POST"),
    Interaction("$validate", "instance", "POST", ("/fhir/{type:str}/{id:str}/$validate",), validate_instance_route, (),
                "the gateway's validator; the stored version when no resource is posted"),
    Interaction("search-type", "type", "GET", ("/fhir/{type:str}",), read_route, ("search-type",)),
    Interaction("create", "type", "POST", ("/fhir/{type:str}",), create_route, ("create",), "validated"),
    Interaction("update", "type", "PUT", ("/fhir/{type:str}",), update_route, ("update",),
                "conditional update; validated"),
    Interaction("delete", "type", "DELETE", ("/fhir/{type:str}",), delete_route, ("delete",), "conditional delete"),
    Interaction("read", "instance", "GET", ("/fhir/{type:str}/{rest:path}",), read_route, ("read",)),
    Interaction("vread", "instance", "GET", ("/fhir/{type:str}/{rest:path}",), read_route, ("vread",)),
    Interaction("history-instance", "instance", "GET", ("/fhir/{type:str}/{rest:path}",), read_route,
                ("history-instance",)),
    Interaction("history-type", "type", "GET", ("/fhir/{type:str}/{rest:path}",), read_route, ("history-type",)),
    Interaction("update", "instance", "PUT", (_ANY,), update_route, ("update",), "validated; 201 when it creates"),
    Interaction("patch", "instance", "PATCH", (_ANY,), patch_route, ("read", "update"),
                "JSON Patch or FHIRPath Patch applied by the gateway, the result validated, stored with If-Match"),
    Interaction("delete", "instance", "DELETE", (_ANY,), delete_route, ("delete",)),
)


def routes(settings: Settings) -> tuple[list[Route], list[Route]]:
    """(routes to place before the gateway's own, routes to place after them); none without an upstream."""
    if not settings.upstream_url:
        return [], []
    after: list[Route] = []
    seen: set[tuple[str, str]] = set()
    for i in TABLE:
        for path in i.paths:
            if (path, i.method) not in seen:  # one route per path and method (transaction and batch share one)
                seen.add((path, i.method))
                after.append(Route(path, i.endpoint, methods=[i.method]))
    return [Route("/fhir/metadata", metadata_route, methods=["GET"])], after


def summary() -> list[dict[str, str]]:
    """The table for people (README): interaction, level, method, path, what it is built from."""
    return [{"interaction": i.code, "level": i.level, "method": i.method, "paths": ", ".join(i.paths),
             "upstream": ", ".join(i.requires) or "(the gateway's own)", "note": i.note} for i in TABLE]
