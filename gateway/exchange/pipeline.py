"""The transfer: convert → the route's rules in their fixed order (rules.ORDER: basis, consent, genetic,
minimise, pseudonymise) → validate → write the target format → count the data subjects → deliver → audit.

A refusal (a rule, the counters' hard stop) raises before anything is written, counted or delivered: the only
trace it leaves is its AuditEvent. A dry run goes as far as the decision and the diff and changes nothing (no
counter, no delivery, no audit). `Engine` is how conversion and validation run: in the HTTP server's sandbox or in
the CLI's process.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import orjson
from starlette.concurrency import run_in_threadpool

from gateway.exchange import counters as counting
from gateway.exchange.events import audit_event, provenance
from gateway.exchange.routes import Routes
from gateway.exchange.rules import Change, Refused, basis, consent, genetic, minimise, pseudonymise
from gateway.exchange.rules.bundle import patients, subject_key
from gateway.exchange.rules.facts import Transfer
from gateway.formats import Converted
from gateway.formats import Request as ConvertRequest
from mappers.exceptions import Issue, MappingError
from mappers.toolkit.registry import HUB, ConvertOptions, get

log = logging.getLogger("helixgate.exchange")


class Engine(Protocol):
    async def convert(self, data: bytes, request: ConvertRequest) -> Converted: ...
    async def validate(self, resource: dict[str, Any], profiles: tuple[str, ...]) -> dict[str, Any]: ...
    async def deliver(self, bundle: dict[str, Any]) -> list[str]: ...


class InvalidAfterRules(MappingError):
    def __init__(self, errors: list[Issue]) -> None:
        super().__init__(f"the content is invalid after the route's rules ({len(errors)} error(s)); nothing was "
                         "sent: the route removes something the destination's profiles require",
                         details="exchange-invalid-output", code="processing", issues=errors[:50])


@dataclass
class Result:
    decision: str  # permit | refuse
    route: str
    transfer_id: str
    body: bytes = b""
    media_type: str = ""
    changes: list[Change] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)
    refusal: Refused | None = None
    subjects: int = 0
    counted: int | None = None  # distinct subjects this year after the transfer
    warning: str | None = None
    delivered: list[str] = field(default_factory=list)
    provenance: dict[str, Any] | None = None
    rules: list[str] = field(default_factory=list)


def today(route: dict[str, Any], now: datetime | None = None) -> str:
    """The transfer's day in the route's counting time zone (counters.timezone, default UTC)."""
    tz = ((route.get("rules") or {}).get("counters") or {}).get("timezone")
    zone = UTC
    if tz:
        sign = -1 if tz[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    return (now or datetime.now(UTC)).astimezone(zone).date().isoformat()


def apply_rules(bundle: dict[str, Any], route: dict[str, Any], transfer: Transfer, routes: Routes
                ) -> tuple[dict[str, Any], list[Change], dict[str, Any], list[str]]:
    """The pure part: the rules in order over the hub Bundle. Raises Refused."""
    rules = route.get("rules") or {}
    subjects = {f"Patient/{p.get('id')}": subject_key(p) for _, p in patients(bundle)}
    changes: list[Change] = []
    facts: dict[str, Any] = {"hgrClass": genetic.census(bundle)["class"]}
    applied = ["basis"]
    try:
        return _apply(bundle, route, transfer, routes, rules, subjects, changes, facts, applied)
    except Refused as e:
        e.facts, e.applied = facts, applied  # type: ignore[attr-defined]  # what the AuditEvent records
        raise


def _apply(bundle: dict[str, Any], route: dict[str, Any], transfer: Transfer, routes: Routes, rules: dict[str, Any],
           subjects: dict[str, tuple[str, str]], changes: list[Change], facts: dict[str, Any], applied: list[str]
           ) -> tuple[dict[str, Any], list[Change], dict[str, Any], list[str]]:
    step = basis.apply(bundle, route, transfer)
    facts.update(step.facts)
    if (rules.get("consent") or {}).get("required"):
        applied.append("consent")
        step = consent.apply(step.bundle, route, transfer)
        facts.update(step.facts)
    if genetic.applies(route):
        applied.append("genetic")
    step = genetic.apply(step.bundle, route, transfer.filing)
    facts.update(step.facts)
    changes += step.changes
    if minimise.policy(route, transfer.purpose, transfer.purpose_code):
        step = minimise.apply(step.bundle, route, transfer.purpose, transfer.purpose_code)
        changes += step.changes
        applied.append("minimise")
    if rules.get("pseudonymise"):
        ring = routes.keyrings[route["id"]]
        step = pseudonymise.apply(step.bundle, route["destination"]["id"], ring.key(), ring.current, subjects)
        changes += step.changes
        facts["pseudonymSystem"] = step.facts["pseudonymSystem"]
        applied.append("pseudonymise")
    return step.bundle, changes, facts, applied


async def run(data: bytes, *, source: str | None, route_id: str, transfer: Transfer, routes: Routes,
              engine: Engine, counters: Any, trail: Any, client: str | None = None, dry_run: bool = False,
              now: datetime | None = None) -> Result:
    """One transfer. Raises Refused (after auditing it), MappingError for input that does not convert, or
    InvalidAfterRules; delivery errors propagate after the counters are released and the failure audited."""
    route = routes.get(route_id)
    if route is None:
        raise Refused("route", f"there is no route {route_id!r}", "use one of: " + ", ".join(routes.routes))
    moment = now or datetime.now(UTC)
    recorded = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    transfer_id = str(uuid.uuid4())
    result = Result("permit", route_id, transfer_id)
    from gateway.formats import resolve

    src, _ = resolve(data, source, HUB)
    upstream = route["delivery"]["mode"] == "upstream"
    target = route["target"]["format"]
    options = tuple(sorted((route["target"].get("options") or {}).items()))
    hub_req = ConvertRequest(src, HUB, ConvertOptions("transaction" if upstream and target == HUB else "collection",
                                                      None, None, options))
    converted = await engine.convert(data, hub_req)
    bundle = orjson.loads(converted.body)
    subjects = [subject_key(p) for _, p in patients(bundle)]
    result.subjects = len(set(subjects))
    try:
        # pure but CPU-bound (a VCF Bundle of thousands of variants): off the event loop
        bundle, result.changes, result.facts, result.rules = await run_in_threadpool(
            apply_rules, bundle, route, transfer, routes)
    except Refused as refusal:
        result.decision, result.refusal = "refuse", refusal
        result.facts, result.rules = getattr(refusal, "facts", {}), getattr(refusal, "applied", [])
        if not dry_run:
            await _audit(trail, result, route, transfer, recorded, client, refusal.message)
        if dry_run:
            return result
        raise
    if target == HUB:
        bundle = _with(bundle, provenance(bundle, transfer_id=transfer_id, route=route,
                                          purpose_code=transfer.purpose_code, recorded=recorded), upstream)
    profiles = tuple(route["target"].get("profiles") or ())  # (routes.load: only for a FHIR target)
    # a writer whose output is FHIR (IPS) has that output validated against what it claims when it is written:
    # validating the Bundle it is written from as well would double the cost and find nothing the destination sees
    written_fhir = target != HUB and get(target).fhir_of is not None
    try:
        outcome = {"resourceType": "OperationOutcome", "issue": []} if written_fhir else \
            await engine.validate(bundle, profiles)
        errors = [Issue("error", i.get("code") or "invalid", "exchange-invalid-output", _text(i))
                  for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]
        if errors:
            raise InvalidAfterRules(errors)
        if target == HUB:
            body, media = orjson.dumps(bundle), get(HUB).media_type
            report = outcome
        else:
            rendered = await engine.convert(orjson.dumps(bundle), ConvertRequest(HUB, target, ConvertOptions(
                "collection", None, None, options)))
            body, media, report = rendered.body, rendered.media_type, rendered.outcome
            result.provenance = provenance(bundle, transfer_id=transfer_id, route=route,
                                           purpose_code=transfer.purpose_code, recorded=recorded)
    except MappingError as e:  # invalid after the rules, or the target cannot carry it: nothing leaves
        if not dry_run:
            await _audit(trail, result, route, transfer, recorded, client, f"output invalid: {e.issues[0].details}",
                         decision="failed")
        raise
    result.body, result.media_type, result.outcome = body, media, report
    count = (route.get("rules") or {}).get("counters")
    exporter = route["source"]["exporter"]
    year = today(route, moment)[:4]
    members = [counting.member(exporter, *s, key=routes.counter_keys.get(route_id)) for s in subjects]
    reservation = None
    if count:
        if dry_run:
            reservation = await counters.peek(exporter, year, members)
            admitted = reservation.count <= count["stopAt"]
        else:
            reservation = await counters.reserve(exporter, year, members, count["stopAt"])
            admitted = reservation.admitted
        result.counted = reservation.count
        if not admitted:
            refusal = Refused("counters", f"exporter {exporter} has sent {reservation.count} distinct data subjects "
                              f"in {year}; these {reservation.new} new ones would pass the hard stop of "
                              f"{count['stopAt']}", "the security assessment (or other mechanism) the threshold "
                              "calls for, registered on a route with a higher rules.counters.stopAt")
            result.decision, result.refusal, result.body = "refuse", refusal, b""
            if dry_run:
                return result
            await _audit(trail, result, route, transfer, recorded, client, refusal.message)
            raise refusal
        if count.get("warnAt") and reservation.count >= count["warnAt"]:
            result.warning = (f"exporter {exporter} has reached {reservation.count} distinct data subjects in {year} "
                              f"(warning level {count['warnAt']}, hard stop {count['stopAt']})")
            log.warning("exchange route %s: %s", route_id, result.warning)
    if dry_run:
        return result
    try:
        result.delivered = await _deliver(route, engine, body, bundle if target == HUB else None, transfer_id, media,
                                          result.provenance)
    except Exception as e:
        if reservation is not None and reservation.members:
            await counters.release(exporter, year, reservation.members)
        await _audit(trail, result, route, transfer, recorded, client, f"delivery failed: {type(e).__name__}",
                     decision="failed")
        raise
    await _audit(trail, result, route, transfer, recorded, client, result.warning or "")
    return result


def _text(issue: dict[str, Any]) -> str:
    where = (issue.get("expression") or [""])[0]
    return f"{where}: {(issue.get('details') or {}).get('text') or issue.get('diagnostics')}"


def _with(bundle: dict[str, Any], prov: dict[str, Any], transaction: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{prov['id']}", "resource": prov}
    if transaction or bundle.get("type") == "transaction":
        entry["request"] = {"method": "PUT", "url": f"Provenance/{prov['id']}"}
    return {**bundle, "entry": [*(bundle.get("entry") or []), entry]}


async def _deliver(route: dict[str, Any], engine: Engine, body: bytes, bundle: dict[str, Any] | None,
                   transfer_id: str, media: str, prov: dict[str, Any] | None = None) -> list[str]:
    mode = route["delivery"]["mode"]
    if mode == "return":
        return []
    if mode == "file":
        directory = Path(route["delivery"]["directory"])
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ext = "json" if "json" in media else "xml" if "xml" in media else "hl7" if "hl7" in media else "txt"
        path = directory / f"{route['id']}-{transfer_id}.{ext}"
        written = [(path, body)]
        if prov is not None:  # a document that cannot hold it (an IPS, a CDA, HL7 v2): the Provenance beside it
            written.insert(0, (directory / f"{route['id']}-{transfer_id}.provenance.json", orjson.dumps(prov)))
        for where, data in written:  # the content last: whoever watches for it finds its Provenance there
            tmp = where.with_name(where.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(where)
        return [str(path)]
    if mode == "mllp":
        from gateway.exchange.mllp import send

        d = route["delivery"]
        control = await send(d["host"], int(d["port"]), body, d.get("timeoutMs", 30000) / 1000)
        return [f"mllp://{d['host']}:{d['port']} MSA-2 {control}"]
    if bundle is None:
        raise MappingError("delivery upstream needs a FHIR target", details="exchange-delivery", code="not-supported")
    return await engine.deliver(bundle)


async def _audit(trail: Any, result: Result, route: dict[str, Any], transfer: Transfer, recorded: str,
                 client: str | None, detail: str, decision: str | None = None) -> None:
    rules = result.rules or ["basis"]
    if result.refusal is not None and result.refusal.rule not in rules:
        rules = [*rules, result.refusal.rule]
    event = audit_event(transfer_id=result.transfer_id, route=route, purpose_code=transfer.purpose_code,
                        decision=decision or result.decision, recorded=recorded, facts=result.facts, rules=rules,
                        changes=len(result.changes), subjects=result.subjects, client=client,
                        detail=(f"rule {result.refusal.rule}: " if result.refusal else "") + detail)
    await trail.append(event)
