"""ORU^R01 (HL7 v2.5.1, LRI genetic variant model) → FHIR R4 Bundle of Genomics Reporting IG 3.0.0 resources."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from mappers.conversion import Conversion
from mappers.hl7v2.context import Context, Options
from mappers.hl7v2.emit import datetime_field
from mappers.hl7v2.emit.genomics import group_key, is_overall, variable, variables, variant
from mappers.hl7v2.emit.observation import lab_observation
from mappers.hl7v2.emit.order import order_key, organization, practitioner, service_request, specimen
from mappers.hl7v2.emit.patient import patient
from mappers.hl7v2.emit.provenance import converter_device, provenance
from mappers.hl7v2.emit.report import diagnostic_report
from mappers.hl7v2.model import Message
from mappers.hl7v2.parse import parse_message
from mappers.hl7v2.structure import Observation, Order, group_oru
from mappers.ids import resource_id

BUNDLE_TYPES = ("collection", "transaction")
ID_SYSTEM = "urn:helixgate:id"  # identifier system of a resource's deterministic id (see _identified)


def to_fhir(data: bytes | str | Message, options: Options | None = None) -> Conversion:
    """Convert one ORU^R01 to a Bundle. Raises ParseError / UnsupportedMessage (mappers.exceptions)."""
    options = options or Options()
    if options.bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"bundle_type must be one of {BUNDLE_TYPES}, not {options.bundle_type!r}")
    msg = data if isinstance(data, Message) else parse_message(data)
    ctx = Context(msg, options)
    ctx.issues.extend(msg.warnings)
    results = group_oru(msg)
    resources: list[dict[str, Any]] = []
    org = organization(ctx)
    for result in results:
        subject = patient(ctx, result.pid) if result.pid is not None else None
        if subject is None:
            ctx.warn("hl7v2-no-patient", "the message has no PID; results have no subject", "PID", code="required")
        else:
            resources.append(subject)
        for order in result.orders:
            resources.extend(_order(ctx, order, subject))
    device = converter_device()
    extras = [r for r in (org, device) if r]
    resources.extend(extras)
    prov = provenance(ctx, [r for r in resources if r not in extras], device, org)
    resources.append(prov)
    issues = ctx.issues + ctx.unmapped()
    return Conversion(_bundle(ctx, resources), tuple(issues))


def _is_genetic(order: Order) -> bool:
    if order.obr.get(4) in variables()["report_codes"]:
        return True
    return any(variable(o.obx.get(3)) for o in order.observations)


def _order(ctx: Context, order: Order, subject: dict[str, Any] | None) -> list[dict[str, Any]]:
    key = order_key(ctx, order)
    obr = order.obr
    requester = practitioner(obr, 16) or (practitioner(order.orc, 12) if order.orc else None)
    request = service_request(ctx, order, subject, requester)
    specimens = [specimen(ctx, s.spm, key, subject, request) for s in order.specimens]
    first_specimen = specimens[0] if specimens else None
    effective = datetime_field(ctx, obr, 7)
    genomic = _is_genetic(order)
    results: list[dict[str, Any]] = []
    conclusion: list[Observation] = []
    if genomic:
        groups: dict[str, list[Observation]] = {}
        shared: list[Observation] = []
        plain: list[Observation] = []
        for obs in order.observations:
            spec = variable(obs.obx.get(3))
            sub = group_key(obs.obx.get(4))
            if spec and spec["scope"] == "report":
                conclusion.append(obs)
            elif spec and sub and not is_overall(sub):
                groups.setdefault(sub, []).append(obs)
            elif spec and obs.obx.get(3) == "62374-4":
                shared.append(obs)  # the assembly, stated once for the whole study
            elif spec and sub == "":
                groups.setdefault("", []).append(obs)
            else:
                plain.append(obs)
        # Rows of an unknown code with a variant group's sub-ID belong to that variant.
        for obs in list(plain):
            sub = group_key(obs.obx.get(4))
            if sub in groups and sub:
                groups[sub].append(obs)
                plain.remove(obs)
        implications = []
        for sub, rows in groups.items():
            var, impl = variant(ctx, rows, key, sub, shared, subject, first_specimen, effective)
            results.append(var)
            if impl:
                implications.append(impl)
        results.extend(implications)
        for obs in shared:
            ctx.use(obs.obx, 1, 2, 3, 4, 5, 11)
    else:
        plain = list(order.observations)
    seen: dict[tuple[str, str], int] = {}

    def ordinal(obs: Observation) -> int:
        k = (obs.obx.get(3), obs.obx.get(4))
        seen[k] = seen.get(k, 0) + 1
        return seen[k]

    for obs in plain:
        # Overall-study rows (sub-ID 1) of a genetic report are genetic results too: category GE says so.
        overall = genomic and is_overall(group_key(obs.obx.get(4)))
        results.append(lab_observation(ctx, obs, key, subject, first_specimen, effective, overall, ordinal(obs)))
    for s, spec_res in zip(order.specimens, specimens, strict=True):
        for obs in s.observations:
            results.append(lab_observation(ctx, obs, key, subject, spec_res, effective, False, ordinal(obs)))
    report = diagnostic_report(ctx, order, key, genomic, subject, request, specimens, results, conclusion)
    return [request, *([requester] if requester else []), *specimens, report, *results]


def _bundle(ctx: Context, resources: list[dict[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    entries = []
    transaction = ctx.options.bundle_type == "transaction"
    for res in resources:
        if res["id"] in seen:  # the same practitioner or specimen reached twice
            continue
        seen.add(res["id"])
        if transaction:
            res = _identified(res)
        entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{res['id']}", "resource": res}
        if transaction:
            entry["request"] = _request(res)
        entries.append(entry)
    msh = ctx.message.msh
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": resource_id("Bundle", msh.get(3), msh.get(4), ctx.message.control_id, ctx.options.bundle_type),
        "type": ctx.options.bundle_type,
    }
    if ctx.options.received:
        bundle["timestamp"] = ctx.options.received.isoformat(timespec="seconds")
    bundle["entry"] = entries
    # Emitters share constant codings; a deep copy keeps callers who edit the result from editing those.
    return orjson.loads(orjson.dumps(bundle))


def _identified(res: dict[str, Any]) -> dict[str, Any]:
    """In a transaction every resource that has an identifier element gets an identifier, so every create is
    conditional and a replayed message never duplicates a resource upstream: those without a business identifier
    (Observations, the converter Device) get their deterministic id, as a bare UUID: some servers (Medplum)
    rewrite every `urn:uuid:` string of a transaction that names an entry. R4 Provenance has no identifier; a
    deliverer makes it idempotent by its deterministic id (PUT)."""
    if res["resourceType"] == "Provenance" or _business_identifier(res):
        return res
    own = {"system": ID_SYSTEM, "value": res["id"]}
    return {**res, "identifier": [*res.get("identifier", []), own]}


def _business_identifier(res: dict[str, Any]) -> dict[str, Any] | None:
    return next((i for i in res.get("identifier", []) if i.get("system") and i.get("value")), None)


def _token(text: str) -> str:
    """A search token part: FHIR search escapes (\\ \\| \\, \\$), and percent-encoding where a query would break."""
    for ch in "\\|,$":
        text = text.replace(ch, "\\" + ch)
    return quote(text, safe=":/?@!$'()*,;=.-_~\\|")


def _request(res: dict[str, Any]) -> dict[str, str]:
    """POST, conditional (ifNoneExist) on the resource's first identifier with a system and a value."""
    req = {"method": "POST", "url": res["resourceType"]}
    ident = _business_identifier(res)
    if ident:
        req["ifNoneExist"] = f"identifier={_token(ident['system'])}|{_token(ident['value'])}"
    return req
