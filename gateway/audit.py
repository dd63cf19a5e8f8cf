"""AuditEvent per request and per delivery, Provenance per delivered Bundle; the audit trail is a Redis Stream.

Events name resource types and ids, message control ids, facilities, network addresses, outcomes and the
caller's identity (its Principal's client id or API key name and how it was proven; never a token or key): never
resource content, query strings or other patient data. Denials (401, 403, 429) are events too, on any path.

`AuditLog.record` never blocks or fails a request: events are buffered (bounded) and appended in batches; while
Redis is away they wait in the buffer, and when the buffer is full the oldest are dropped and counted (and logged
once).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import logging
import socket
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.exceptions import RedisError

from gateway import __version__
from gateway.auth.principal import Principal, principal_of
from mappers.ids import resource_id

log = logging.getLogger("helixgate.audit")
AUDIT_STREAM = "helixgate:audit"
_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_OBSERVER = {"display": f"helixgate {__version__} on {socket.gethostname()}",
             "identifier": {"system": "urn:helixgate:gateway", "value": socket.gethostname()}}
DENIALS = {401: "no valid credential", 403: "not allowed by the granted scopes", 429: "rate limit reached"}
# AuditEvent.agent.who.identifier.system per way of proving the client (a JWT's issuer is used when it names one).
_ID_SYSTEMS = {"jwt": "urn:helixgate:oauth-client", "introspection": "urn:helixgate:oauth-client",
               "api-key": "urn:helixgate:api-key", "mtls": "urn:helixgate:certificate-subject"}
_ACTIONS = {"read": "R", "vread": "R", "search-type": "E", "search-system": "E", "create": "C", "update": "U",
            "patch": "U", "delete": "D", "transaction": "E", "batch": "E", "operation": "E", "capabilities": "R",
            "history-instance": "R", "history-type": "E", "history-system": "E"}


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def outcome_code(status: int) -> str:
    """AuditEvent.outcome from an HTTP status: 0 success, 4 minor failure (4xx), 8 serious failure (5xx)."""
    return "0" if status < 400 else ("4" if status < 500 else "8")


def interaction(method: str, path: str) -> tuple[str, str | None]:
    """The FHIR interaction of a request under /fhir and the 'Type/id' it names, if any (no query string)."""
    parts = [p for p in path.split("/") if p][1:]  # after 'fhir'
    if any(p.startswith("$") for p in parts):
        return "operation", None
    if parts == ["metadata"]:
        return "capabilities", None
    if not parts:
        return ("transaction" if method == "POST" else "search-system"), None
    if parts in (["_search"], ["_history"]):  # the facade's system-level search by POST and history
        return ("search-system" if parts == ["_search"] else "history-system"), None
    rtype, rid = parts[0], parts[1] if len(parts) > 1 else None
    if rid in ("_search", "_history"):  # search by POST, history-type: no one resource
        return ("search-type" if rid == "_search" else "history-type"), None
    target = f"{rtype}/{rid}" if rid and rtype[:1].isupper() else None
    if method == "GET":
        if rid is None:
            return "search-type", None
        if parts[-1] == "_history":
            return "history-instance", target
        return ("vread" if "_history" in parts else "read"), target
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "operation"), target


# (client, via, identifier system, alternative id): who a request came from (an API key's name and public id, a
# token's client id and issuer, a certificate subject), never its credential.
Identity = tuple[str, str, str, str | None]


def identity_of(principal: Principal) -> Identity | None:
    """What an AuditEvent names of a principal: None for ANONYMOUS (auth off)."""
    if not principal.authenticated:
        return None
    iss = principal.claims.get("iss") if principal.via in ("jwt", "introspection") else None
    system = iss if isinstance(iss, str) and iss else _ID_SYSTEMS.get(principal.via, f"urn:helixgate:{principal.via}")
    alt = principal.claims.get("key_id") if principal.via == "api-key" else None
    return principal.client, principal.via, system, alt if isinstance(alt, str) else None


@functools.lru_cache(maxsize=1024)
def _agents(address: str | None, user: str | None, identity: Identity | None = None) -> list[dict[str, Any]]:
    """The agents of an event (cached: shared by events, never mutated)."""
    requestor: dict[str, Any] = {"type": {"coding": [{"system": _DCM, "code": "110153", "display": "Source Role ID"}]},
                                 "requestor": True}
    if identity is not None:
        client, via, system, alt = identity
        requestor["who"] = {"identifier": {"system": system, "value": client}, "display": f"{client} ({via})"}
        requestor["name"] = client
        if alt:
            requestor["altId"] = alt
    elif user:
        requestor["who"] = {"display": user}
    if address:
        requestor["network"] = {"address": address, "type": "2"}
    gateway = {"type": {"coding": [{"system": _DCM, "code": "110152", "display": "Destination Role ID"}]},
               "who": _OBSERVER, "requestor": False}
    return [requestor, gateway]


_REST = {"system": _EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}


@functools.lru_cache(maxsize=64)
def _subtype(kind: str) -> list[dict[str, str]]:
    return [{"system": _INTERACTION, "code": kind}]


def rest_event(method: str, path: str, status: int, address: str | None, when: float,
               user: str | None = None, identity: Identity | None = None) -> dict[str, Any]:
    """An AuditEvent for one HTTP request to the gateway, by `identity` (identity_of the request's Principal)."""
    kind, target = interaction(method, path)
    denial = DENIALS.get(status)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _REST,
        "subtype": _subtype(kind),
        "action": _ACTIONS.get(kind, "E"),
        "recorded": _when(when),
        "outcome": outcome_code(status),
        "outcomeDesc": f"denied: HTTP {status}, {denial}" if denial else f"HTTP {status}",
        "agent": _agents(address, user, identity),
        "source": {"observer": _OBSERVER},
    }
    what: dict[str, Any] = {"reference": target} if target else {"display": f"{method} {_shape(path)}"}
    event["entity"] = [{"what": what}]
    return event


def _shape(path: str) -> str:
    """The path with ids blanked: '/fhir/Patient/{id}' (ids are not content, but operations need no more)."""
    parts = path.split("/")
    return "/".join("{id}" if i >= 3 and p and not p.startswith(("$", "_")) else p for i, p in enumerate(parts))


def mllp_event(control_id: str, facility: str, outcome: str, address: str | None, when: float) -> dict[str, Any]:
    """An AuditEvent for one message received over MLLP (outcome: accepted, unparseable, rejected, ...)."""
    failed = outcome != "accepted"
    return {
        "resourceType": "AuditEvent",
        "type": {"system": _DCM, "code": "110107", "display": "Import"},
        "action": "C",
        "recorded": _when(when),
        "outcome": ("8" if outcome == "unavailable" else "4") if failed else "0",
        "outcomeDesc": f"MLLP message {outcome}",
        "agent": _agents(address, f"sending facility {facility}" if facility else None),
        "source": {"observer": _OBSERVER},
        "entity": [{"what": {"identifier": {"system": "urn:helixgate:hl7v2:msh-10", "value": control_id}},
                    "description": "HL7 v2 message"}],
    }


def delivery_event(message_id: str, facility: str, outcome: str, references: list[str], when: float,
                   detail: str = "") -> dict[str, Any]:
    """An AuditEvent for one delivery to the upstream (outcome: delivered, retrying, dead-lettered)."""
    entities: list[dict[str, Any]] = [{"what": {"identifier": {"system": "urn:helixgate:message-id",
                                                               "value": message_id}}, "description": "source message"}]
    entities += [{"what": {"reference": ref}} for ref in references]
    return {
        "resourceType": "AuditEvent",
        "type": {"system": _DCM, "code": "110106", "display": "Export"},
        "subtype": [{"system": _INTERACTION, "code": "transaction"}],
        "action": "C",
        "recorded": _when(when),
        "outcome": "0" if outcome == "delivered" else ("4" if outcome == "retrying" else "8"),
        "outcomeDesc": f"{outcome}{': ' + detail if detail else ''}"[:500],
        "agent": _agents(None, f"sending facility {facility}" if facility else None),
        "source": {"observer": _OBSERVER},
        "entity": entities,
    }


def delivery_provenance(bundle: dict[str, Any], *, source_format: str, message_id: str, mapper_version: str,
                        recorded: str) -> dict[str, Any]:
    """The gateway's Provenance for a Bundle it delivers: every entry as target, the source message as entity,
    the gateway as performer and the mapper (with its version) as assembler. Its id is deterministic, so a
    redelivery (PUT) replaces it rather than adding another."""
    targets = [{"reference": e["fullUrl"]} for e in bundle.get("entry", [])
               if e.get("fullUrl") and (e.get("resource") or {}).get("resourceType") != "Provenance"]
    participant = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
    return {
        "resourceType": "Provenance",
        "id": resource_id("Provenance", "helixgate-delivery", source_format, message_id),
        "target": targets,
        "recorded": recorded,
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                 "code": "CREATE", "display": "create"}]},
        "agent": [
            {"type": {"coding": [{"system": participant, "code": "performer", "display": "Performer"}]},
             "who": _OBSERVER},
            {"type": {"coding": [{"system": participant, "code": "assembler", "display": "Assembler"}]},
             "who": {"identifier": {"system": "urn:helixgate:mapper", "value": mapper_version},
                     "display": f"helixgate mapper {mapper_version}"}},
        ],
        "entity": [{"role": "source", "what": {
            "identifier": {"system": "urn:helixgate:message-id", "value": message_id},
            "display": f"{source_format} message {message_id}"}}],
    }


def with_provenance(bundle: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
    """The transaction `bundle` with `provenance` as its last entry (PUT to its id: idempotent)."""
    entry = {"fullUrl": f"urn:uuid:{provenance['id']}", "resource": provenance,
             "request": {"method": "PUT", "url": f"Provenance/{provenance['id']}"}}
    return {**bundle, "entry": [*bundle.get("entry", []), entry]}


# One round trip per batch: the server appends every event (redis-py spends ~50 µs of Python per pipelined XADD).
_APPEND = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[i])
end
return #ARGV - 1
"""
Pending = tuple[Any, ...]  # (builder, *args) or (None, event): events are built when written, off the request path


class AuditLog:
    """Buffers AuditEvents and appends them to `stream` (and, when `upstream` is given, POSTs them there as a
    batch). Without either it keeps the last `buffer` events in memory (`recent()`).

    `record_rest` is what a request pays: a tuple appended to a deque; the event is built when it is written.
    """

    def __init__(self, client: Any = None, *, stream: str = AUDIT_STREAM, upstream: Any = None,
                 buffer: int = 10_000, maxlen: int = 1_000_000, interval: float = 0.2, batch: int = 200) -> None:
        self.client = client
        self.stream = stream
        self.upstream = upstream
        self.maxlen = maxlen
        self.interval = interval
        self.batch = batch
        self.pending: collections.deque[Pending] = collections.deque()
        self._recent: collections.deque[Pending] = collections.deque(maxlen=buffer)
        self.buffer = buffer
        self.dropped = 0
        self.written = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._down = False
        self._script: Any = None

    def record(self, event: dict[str, Any]) -> None:
        self._add((None, event))

    def record_rest(self, method: str, path: str, status: int, address: str | None, when: float,
                    identity: Identity | None = None) -> None:
        """The AuditEvent of one HTTP request, built later (see rest_event)."""
        self._add((rest_event, method, path, status, address, when, None, identity))

    def recent(self) -> list[dict[str, Any]]:
        """The last events recorded, when there is neither Redis nor an upstream to write them to."""
        return [_build(item) for item in self._recent]

    def _add(self, item: Pending) -> None:
        if self.client is None and self.upstream is None:
            self._recent.append(item)
            return
        if len(self.pending) >= self.buffer:
            self.pending.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("audit buffer full: %d AuditEvents dropped so far (Redis unreachable?)", self.dropped)
        self.pending.append(item)
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: flushed by the next recorder that has one
                self._task = asyncio.get_running_loop().create_task(self._run(), name="helixgate-audit")

    async def _run(self) -> None:
        await asyncio.sleep(self.interval)  # gather a batch
        while self.pending:
            written = await self.flush()
            await asyncio.sleep(0 if written and self.pending else self.interval)

    async def flush(self) -> int:
        """Write up to one batch of what is buffered; on failure the events stay buffered for the next try.
        Returns how many were written."""
        async with self._lock:  # the background flusher and close() must not send the same events twice
            return await self._flush()

    async def _flush(self) -> int:
        items = list(itertools.islice(self.pending, self.batch))
        if not items:
            return 0
        events = [_build(item) for item in items]
        if self.client is not None:
            try:
                if self._script is None:
                    self._script = self.client.register_script(_APPEND)
                await self._script(keys=[self.stream], args=[self.maxlen, *(orjson.dumps(e) for e in events)])
            except (RedisError, OSError) as e:
                if not self._down:
                    log.warning("audit: cannot reach Redis (%s); events stay buffered", type(e).__name__)
                    self._down = True
                await asyncio.sleep(self.interval)
                return 0
            self._down = False
        if self.upstream is not None:
            await self._send_upstream(events)
        for item in items:  # those a full buffer dropped meanwhile are gone already
            if self.pending and self.pending[0] is item:
                self.pending.popleft()
        self.written += len(items)
        return len(items)

    async def _send_upstream(self, batch: list[dict[str, Any]]) -> None:
        from gateway.upstream import UpstreamError

        body = {"resourceType": "Bundle", "type": "batch",
                "entry": [{"resource": e, "request": {"method": "POST", "url": "AuditEvent"}} for e in batch]}
        try:
            await self.upstream.json("POST", "", body=body)
        except UpstreamError as e:  # the Redis stream is the record; the upstream copy is best effort
            log.warning("audit: %d AuditEvents not sent upstream (%s)", len(batch), e)

    async def close(self) -> None:
        deadline = time.monotonic() + 2
        while self.pending and time.monotonic() < deadline and (self.client is not None or self.upstream):
            if not await self.flush():
                break
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _build(item: Pending) -> dict[str, Any]:
    builder, *args = item
    return args[0] if builder is None else builder(*args)


async def read_events(client: Any, stream: str = AUDIT_STREAM, count: int = 1000) -> list[dict[str, Any]]:
    """The latest `count` AuditEvents of the stream, oldest first."""
    entries = await client.xrevrange(stream, count=count)
    return [orjson.loads(fields[b"event"]) for _, fields in reversed(entries)]


class AuditMiddleware:
    """Records an AuditEvent for every request under /fhir (in `app.state.audit`), errors included, and for every
    denial (401/403/429) on any path. Outermost, so that it sees what the auth and rate-limit middleware answer;
    the caller is the Principal they left in the scope."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            audit = getattr(getattr(scope.get("app"), "state", None), "audit", None)
            if audit is not None and (status in DENIALS or scope["path"].startswith("/fhir")):
                client = scope.get("client")
                audit.record_rest(scope["method"], scope["path"], status, client[0] if client else None, time.time(),
                                  identity_of(principal_of(scope)))
