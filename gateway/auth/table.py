"""The one table of what every route of the app needs: its access class and the scopes that grant it.

`TABLE` lists each route (path template as Starlette has it, and methods) with its access class — public, convert,
validate, translate, read, write, bulk — and a function that reads the request line into a `Need`: the operation
scope, or the (resource type, interaction) pairs, and what a restricted grant (patient/ or search-narrowed scopes)
must still enforce. The middleware finds the route the router will take (`RouteIndex.lookup`, same order), the
CapabilityStatement, /.well-known/smart-configuration and README show `TABLE`, and a test walks `create_app().routes`
against it: a route missing here needs a scope no client holds (fail closed) and is logged at start-up.

FHIR REST interactions map to SMART letters as SMART 2.2 says (scopes-and-launch-context.html): read, vread and
history-instance are `r`; search and history-type `s`; create `c`; update and patch `u`; delete `d`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute, Match

log = logging.getLogger("helixgate.auth")

ACCESS = ("public", "convert", "validate", "translate", "read", "write", "bulk")
ACCESS_KEY = "helixgate.access"  # where the middleware puts the request's access class (rate limits read it)
NDJSON_TYPES = frozenset({"application/fhir+ndjson", "application/x-ndjson", "application/ndjson"})
ALL = (("*", "r"), ("*", "s"))  # a FHIR operation the upstream runs may return any type: read + search of all


@dataclass(frozen=True, slots=True)
class Need:
    """What one request needs. `resources` are all required; a restricted grant must be enforced on `search` (the
    type whose search gets the narrowing parameters), `target` (the stored resource read), or the body (`body`: the
    facade calls gateway.auth.enforce.authorize_body once it has parsed it)."""

    access: str
    operation: str | None = None
    resources: tuple[tuple[str, str], ...] = ()
    unrestricted: bool = False  # a patient/ or narrowed grant cannot be enforced here: only user/ or system/ grants
    search: str | None = None
    target: tuple[str, str] | None = None
    body: bool = False
    includes: tuple[str, ...] = ()  # types brought in by _include/_revinclude: each needs an unrestricted read
    refused: str | None = None  # no scope grants this (a route missing from the table)

    @property
    def public(self) -> bool:
        return self.access == "public"


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    methods: tuple[str, ...]
    access: str
    needs: str  # what grants it, for people (CapabilityStatement, README)
    classify: Callable[[str, list[str], list[tuple[str, str]], Any], Need] | None = field(default=None, repr=False)

    def need(self, method: str, segments: list[str], query: list[tuple[str, str]], headers: Any) -> Need:
        if self.classify is None:
            return Need(self.access)
        return self.classify(method, segments, query, headers)


def _operation(name: str, access: str) -> Callable[..., Need]:
    return lambda method, segments, query, headers: Need(access, operation=name)


def _convert(method: str, segments: list[str], query: list[tuple[str, str]], headers: Any) -> Need:
    """$convert; a bulk job when the request asks for one (Prefer: respond-async, an NDJSON body: what
    gateway.bulk.wants_async reads, from headers only)."""
    media = (headers.get("content-type") or "").split(";")[0].strip().lower()
    bulk = "respond-async" in (headers.get("prefer") or "").lower() or media in NDJSON_TYPES
    return Need("bulk" if bulk else "convert", operation="convert")


def includes(query: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The types `_include`/`_revinclude` bring into a search result ('*' when any type may come, or the value is
    malformed). `_include=Source:param:Target` brings Target (any type without it); `_revinclude=Source:param`
    brings Source."""
    found: list[str] = []
    for name, value in query:
        base = name.split(":", 1)[0]
        if base not in ("_include", "_revinclude"):
            continue
        parts = value.split(":")
        if value == "*" or not 2 <= len(parts) <= 3 or not all(parts):
            found.append("*")
        elif base == "_include":
            found.append(parts[2] if len(parts) == 3 else "*")
        else:
            found.append(parts[0])
    return tuple(dict.fromkeys(found))


def rest_need(method: str, segments: list[str], query: list[tuple[str, str]], access: str = "read") -> Need:
    """The need of a FHIR REST request by its path after the base (`segments`: type, then id/_history/operation…),
    for the facade's routes and for the entries of a batch or transaction."""
    method = "GET" if method == "HEAD" else method
    if not segments or not segments[0][:1].isupper():
        return Need(access, resources=ALL, unrestricted=True)  # not a type: only a full grant may ask the upstream
    rtype, rest = segments[0], segments[1:]
    op = any(s.startswith("$") for s in rest)
    if method == "GET":
        inc = includes(query)
        if op:
            return Need(access, resources=ALL, unrestricted=True)
        if not rest:
            return Need(access, resources=((rtype, "s"),), search=rtype, includes=inc)
        if rest == ["_history"]:  # history-type: no search parameters to narrow it
            return Need(access, resources=((rtype, "s"),), unrestricted=True)
        if len(rest) == 2 and rest[1] != "_history":  # compartment search, e.g. Patient/123/Observation
            if rest[1] == "*":
                return Need(access, resources=(("*", "s"),), unrestricted=True)
            return Need(access, resources=((rest[1], "s"),), search=rest[1], includes=inc)
        if len(rest) in (1, 2, 3):  # read, history-instance, vread
            return Need(access, resources=((rtype, "r"),), target=(rtype, rest[0]))
        return Need(access, resources=ALL, unrestricted=True)
    if method == "POST" and rest == ["_search"]:  # search by POST: as the GET (the facade checks the form's own)
        return Need(access, resources=((rtype, "s"),), search=rtype, includes=includes(query))
    if op:  # an operation the upstream runs, posted: may write and return anything
        return Need(access, resources=tuple(("*", c) for c in "cruds"), unrestricted=True)
    if method == "POST" and not rest:
        return Need(access, resources=((rtype, "c"),), body=True)
    if method in ("PUT", "PATCH"):
        return Need(access, resources=((rtype, "u"),), body=True,
                    target=(rtype, rest[0]) if len(rest) == 1 else None, search=None if rest else rtype)
    if method == "DELETE":
        return Need(access, resources=((rtype, "d"),), target=(rtype, rest[0]) if len(rest) == 1 else None,
                    search=None if rest else rtype)
    return Need(access, resources=tuple(("*", c) for c in "cruds"), unrestricted=True)


def _facade(access: str) -> Callable[..., Need]:
    return lambda method, segments, query, headers: rest_need(method, segments, query, access)


def _validate_instance(method: str, segments: list[str], query: list[tuple[str, str]], headers: Any) -> Need:
    """[type]/[id]/$validate: the operation, and a read of the instance (its stored version may be validated)."""
    rtype, rid = [*segments, "", ""][:2]
    return Need("validate", operation="validate", resources=((rtype, "r"),), target=(rtype, rid))


def _bundle(method: str, segments: list[str], query: list[tuple[str, str]], headers: Any) -> Need:
    """POST [base]: a batch/transaction (each entry checked once the facade has parsed it) or a national format
    converted to one (the same, after conversion)."""
    return Need("write", body=True)


# Every route of create_app(), by path template and methods. Facade routes exist with HELIXGATE_UPSTREAM_URL only.
TABLE: tuple[Entry, ...] = (
    Entry("/healthz", ("GET",), "public", "none"),
    Entry("/fhir/metadata", ("GET",), "public", "none"),
    Entry("/.well-known/smart-configuration", ("GET",), "public", "none"),
    Entry("/fhir/.well-known/smart-configuration", ("GET",), "public", "none"),
    Entry("/openapi.json", ("GET",), "public", "none"),
    # The playground's static page and its catalogue (format names, ConceptMap and profile URLs): no data; the API
    # calls the page makes carry the caller's own credential
    Entry("/playground", ("GET",), "public", "none"),
    Entry("/playground/", ("GET",), "public", "none"),
    Entry("/playground/catalogue.json", ("GET",), "public", "none"),
    Entry("/playground/{name:str}", ("GET",), "public", "none"),
    # Operational counts, no patient data, but they tell traffic and partners apart: an operator's scraper holds
    # system/$metrics (an API key made for it); open only when auth is off (loopback, or --insecure-no-auth).
    Entry("/metrics", ("GET",), "read", "$metrics (the operator's scraper)", _operation("metrics", "read")),
    Entry("/fhir/$convert", ("POST",), "convert", "$convert (a bulk job, with Prefer: respond-async or NDJSON, "
          "is access class bulk)", _convert),
    Entry("/fhir/$validate", ("POST",), "validate", "$validate", _operation("validate", "validate")),
    # A cross-border transfer sends content out under a route (gateway/exchange/): its own operation scope
    Entry("/fhir/$exchange", ("POST",), "write", "$exchange", _operation("exchange", "write")),
    Entry("/fhir/{type:str}/$validate", ("POST",), "validate", "$validate", _operation("validate", "validate")),
    Entry("/fhir/ConceptMap/$translate", ("GET", "POST"), "translate", "$translate",
          _operation("translate", "translate")),
    Entry("/fhir/ConceptMap/{id}/$translate", ("GET", "POST"), "translate", "$translate",
          _operation("translate", "translate")),
    Entry("/fhir/bulk/{job}", ("GET", "DELETE"), "bulk", "$convert (the operation that made the job; the job "
          "is its client's)", _operation("convert", "bulk")),
    Entry("/fhir/bulk/{job}/{file}", ("GET",), "bulk", "$convert (the job's client only)",
          _operation("convert", "bulk")),
    Entry("/fhir", ("POST",), "write", "batch/transaction: each entry's own scope (c, r, u, d, s on its type); a "
          "national format: $convert, then c/u on each type it produced", _bundle),
    Entry("/fhir/{type:str}", ("GET",), "read", "{type}.s (patient/: narrowed to the patient; _include and "
          "_revinclude targets: an unrestricted .r)", _facade("read")),
    Entry("/fhir/{type:str}", ("POST",), "write", "{type}.c (patient/: the body must be in the patient's "
          "compartment)", _facade("write")),
    Entry("/fhir/{type:str}/{rest:path}", ("GET",), "read", "{type}.r for read, vread, history-instance; {type}.s "
          "for history-type; {other}.s for a compartment search; *.rs (user/ or system/) for an operation",
          _facade("read")),
    Entry("/fhir/{type:str}/{id:path}", ("PUT",), "write", "{type}.u (patient/: old and new version in the "
          "patient's compartment)", _facade("write")),
    # The facade's other interactions (gateway/facade/table.py)
    Entry("/fhir/", ("POST",), "write", "as POST /fhir", _bundle),
    Entry("/fhir", ("GET",), "read", "search-system (_type): *.s (user/ or system/)", _facade("read")),
    Entry("/fhir/", ("GET",), "read", "search-system (_type): *.s (user/ or system/)", _facade("read")),
    Entry("/fhir/_history", ("GET",), "read", "history-system: *.rs (user/ or system/)", _facade("read")),
    Entry("/fhir/_search", ("POST",), "read", "search-system: *.s (user/ or system/)", _facade("read")),
    Entry("/fhir/{type:str}/_search", ("POST",), "read", "{type}.s, as the GET search (the form's _include and "
          "_revinclude checked too)", _facade("read")),
    Entry("/fhir/{type:str}/{id:str}/$validate", ("POST",), "validate", "$validate and {type}.r",
          _validate_instance),
    Entry("/fhir/{type:str}", ("PUT",), "write", "conditional update: {type}.u (patient/: the search narrowed)",
          _facade("write")),
    Entry("/fhir/{type:str}", ("DELETE",), "write", "conditional delete: {type}.d (patient/: the search narrowed)",
          _facade("write")),
    Entry("/fhir/{type:str}/{id:path}", ("PATCH",), "write", "{type}.u (patient/: the stored resource and the "
          "patched result in the patient's compartment)", _facade("write")),
    Entry("/fhir/{type:str}/{id:path}", ("DELETE",), "write", "{type}.d (patient/: in the patient's compartment)",
          _facade("write")),
)

_BY_ROUTE = {(e.path, m): e for e in TABLE for m in e.methods}
UNLISTED = Need("write", refused="this route is not in the gateway's access table (gateway/auth/table.py); no "
                "scope grants it")


def entry_for(path: str, method: str) -> Entry | None:
    method = "GET" if method == "HEAD" else method
    return _BY_ROUTE.get((path, method))


def unlisted(routes: Iterable[BaseRoute]) -> list[str]:
    """'METHOD path' of each route (and method) of the app that the table does not list."""
    out = []
    for route in routes:
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None) or {"GET"}
        for m in sorted(methods - {"HEAD"}):
            if path is None or entry_for(path, m) is None:
                out.append(f"{m} {path}")
    return out


class RouteIndex:
    """The app's routes in the router's order: which one a request takes, and so which table entry applies."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = list(routes)
        self._seen: dict[tuple[str, str, str], tuple[bool, Entry | None]] = {}
        missing = unlisted(self.routes)
        if missing:
            log.warning("routes not in the access table (every request to them is refused when auth is on): %s",
                        ", ".join(missing))

    def lookup(self, scope: dict[str, Any]) -> tuple[bool, Entry | None]:
        """(whether a route takes the request, the table's entry for it): the router's first full match. Kept for
        the last 4,096 method + path pairs: the same few paths (the operations) are most of the traffic."""
        key = (scope["method"], scope.get("root_path", ""), scope["path"])
        found = self._seen.get(key)
        if found is None:
            found = False, None
            for route in self.routes:
                if route.matches(scope)[0] == Match.FULL:
                    found = True, entry_for(getattr(route, "path", ""), scope["method"])
                    break
            if len(self._seen) >= 4096:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = found
        return found


def request_need(index: RouteIndex, scope: dict[str, Any], headers: Any) -> tuple[Need, list[tuple[str, str]]]:
    """The need of an HTTP request, and its query parameters. A request no route takes (the router answers 404 or
    405) needs credentials and nothing more; a route missing from the table, a scope nobody has."""
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    routed, entry = index.lookup(scope)
    if entry is None:
        return (UNLISTED if routed else Need("read" if scope["method"] in ("GET", "HEAD") else "write")), query
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    segments = [s for s in path.split("/") if s][1:] if path.startswith("/fhir/") else []
    return entry.need(scope["method"], segments, query, headers), query


def summary() -> list[dict[str, str]]:
    """The table for people: method, path, access class, what grants it."""
    return [{"methods": ", ".join(e.methods), "path": e.path, "access": e.access, "needs": e.needs} for e in TABLE]
