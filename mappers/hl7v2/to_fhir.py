"""ORU^R01 (HL7 v2.5.1, LRI genetic variant model) → FHIR R4 Bundle of Genomics Reporting IG 3.0.0 resources."""

from __future__ import annotations

from typing import Any

from mappers.conversion import Conversion
from mappers.exceptions import EmitError
from mappers.hl7v2.context import Context, Options
from mappers.hl7v2.emit import datetime_field
from mappers.hl7v2.emit.attachment import MAYBE_DOCUMENT, documents, is_document
from mappers.hl7v2.emit.genomics import (
    fits,
    is_overall,
    phase_pairs,
    phase_relationship,
    row_plan,
    variable,
    variable_codes,
    variables,
    variant,
)
from mappers.hl7v2.emit.genomics import row_code as genetic_row_code
from mappers.hl7v2.emit.observation import lab_observation
from mappers.hl7v2.emit.order import order_key, organization, practitioner, service_request, specimen
from mappers.hl7v2.emit.patient import patient
from mappers.hl7v2.emit.provenance import (
    MAPPER_VERSION,
    message_language,
    message_provenance,
    message_time,
    source_identifier,
)
from mappers.hl7v2.emit.report import diagnostic_report
from mappers.hl7v2.model import Message
from mappers.hl7v2.parse import parse_message
from mappers.hl7v2.structure import NO_RESULT_YET, Observation, Order, PatientResult, group_oru
from mappers.hl7v2.variable_names import coded_loinc, recognise, recognise_row
from mappers.toolkit.bundle import BUNDLE_TYPES, bundle
from mappers.toolkit.provenance import converter_device


def to_fhir(data: bytes | str | Message, options: Options | None = None) -> Conversion:
    """Convert one ORU^R01 to a Bundle. Raises ParseError / UnsupportedMessage / EmitError (mappers.exceptions).
    Pure: the same input and options give the same Bundle, byte for byte."""
    options = options or Options()
    if options.bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"bundle_type must be one of {BUNDLE_TYPES}, not {options.bundle_type!r}")
    msg = data if isinstance(data, Message) else parse_message(data, options.limits)
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
    _require_content(resources, results)
    _same_id_same_content(ctx, resources)
    device = converter_device(MAPPER_VERSION)
    ctx.origin(device, f"{msg.msh.ref}")  # the converter that read this message
    extras = [r for r in (org, device) if r]
    when = message_time(ctx)
    source = source_identifier(ctx)
    prov = message_provenance(ctx, list(resources), device, org, when, source["system"])
    resources.extend(extras)
    if prov is not None:
        resources.append(prov)
    msh = msg.msh
    key = (msh.get(3), msh.get(4), msg.control_id)
    ident = source if msg.control_id else None
    out = bundle(resources, options.bundle_type, key, timestamp=when if when and "T" in when else None,
                 identifier=ident, copy=False)  # every object made for this Bundle: tests/mappers/hl7v2/test_fresh.py
    lang = message_language(ctx)
    if lang:  # the language of the whole message (Resource.language of the Bundle that carries it)
        out = {"resourceType": "Bundle", "id": out["id"], "language": lang, **out}
        ctx.origin(out["id"], f"{msh.ref}-19", "language")
    issues = ctx.issues + ctx.unmapped()
    return Conversion(out, tuple(issues), dict(ctx.origins))


def _require_content(resources: list[dict[str, Any]], results: list[PatientResult]) -> None:
    """A conversion that kept no result, variant or document of a message that had some is not a success. A message
    whose orders all say results are still to come (OBR-25 I, O, S) truly has none: its reports say so."""
    for res in resources:
        if res["resourceType"] == "Observation" or res.get("presentedForm"):
            return
    orders = [o for r in results for o in r.orders]
    if all(not o.observations and not any(s.observations for s in o.specimens) and o.obr.get(25) in NO_RESULT_YET
           for o in orders):
        return
    raise EmitError("none of the message's results could be converted (no Observation and no document came out "
                    "of its OBX rows; the conversion report says why)", details="hl7v2-nothing-converted",
                    expression="OBX")


def _same_id_same_content(ctx: Context, resources: list[dict[str, Any]]) -> None:
    """The Bundle keeps the first resource of each id (the same practitioner reached twice); say so when a later
    one with that id differs, as its content is then not in the output."""
    first: dict[str, dict[str, Any]] = {}
    for res in resources:
        kept = first.setdefault(res["id"], res)
        if kept is not res and kept != res:
            where = ctx.origins.get(res["id"], "")
            ctx.warn("hl7v2-duplicate-key", f"two {res['resourceType']} resources have the same business key "
                     f"(identifier) but differ; the first is kept, the one from {where or 'later rows'} is not",
                     where or None)


def _recognise(ctx: Context, obs: Observation, genetic_order: bool, known: frozenset[str],
               site: tuple[tuple[str, str], ...]) -> None:
    """Set obs.variable: the LRI variable the row carries (`known`: variable_codes(); `site`: the site's names),
    unless its code and name disagree or its value does not fit the variable; say where a name or local code was
    taken for a LOINC variable."""
    obx = obs.obx
    rec, named = recognise_row(obx, known, site, genetic_order)
    obs.variable = rec
    if rec is None:
        return
    if named and named != rec.loinc and named in known:  # named: only of a variable found by its code
        ctx.warn("hl7v2-variable-code-name-conflict",
                 f"OBX-3 is coded {_named(rec.loinc)} but named {obx.get(3, 2)!r}, the name of {_named(named)}; "
                 "the row is kept as a separate result, not in the variant", f"{obx.ref}-3")
        obs.variable, obs.apart = None, True
        return
    obs.plan = plan = row_plan(obs, rec)
    if not (plan.fits if plan is not None else fits(obs)):
        ctx.warn("hl7v2-variable-value-mismatch",
                 f"OBX-3 says {_named(rec.loinc)} but OBX-5 {obx.get(5, 2) or obx.get(5)!r} is not one of its "
                 f"answers (a {obx.get(5, 3) or 'local'} code); "
                 "the row is kept as a separate result, not in the variant", f"{obx.ref}-5")
        obs.variable, obs.apart = None, True
        return
    if rec.how != "code":
        lead = f"OBX-3 {coded_loinc(obx)} is not an LRI genetic variable; " if coded_loinc(obx) else ""
        kind = {"alternate": "alternate code", "local-code": "local code", "name": "text"}[rec.how]
        ctx.inform("hl7v2-variable-recognised", f"{lead}{kind} {rec.taken!r} taken for LOINC {_named(rec.loinc)}",
                   rec.where)


def _named(code: str) -> str:
    """A LOINC variable with its name, for messages: `53037-8 (Genetic variation clinical significance [Imp])`."""
    spec = variable(code)
    return f"{code} ({spec['display']})" if spec else code


def _is_genetic(ctx: Context, order: Order) -> bool:
    """OBR-4 is a genetic report code, or a row carries an LRI variable (by code, alternate code, local code or a
    distinctive name)."""
    obr = order.obr
    codes = variables()["report_codes"]
    if obr.get(4) in codes or obr.get(4, 4) in codes:
        return True
    known = variable_codes()
    return any(recognise(o.obx, known, ctx.options.variable_names) for o in order.observations)


def _effective(ctx: Context, order: Order) -> tuple[str, str] | None:
    """OBR-7 (observation date/time) with its source field: the time of results that carry no OBX-14."""
    obr = order.obr
    ctx.use(obr, 7)
    value = datetime_field(ctx, obr, 7)
    return (value, f"{obr.ref}-7") if value else None


def _order(ctx: Context, order: Order, subject: dict[str, Any] | None) -> list[dict[str, Any]]:
    key = order_key(ctx, order)
    obr = order.obr
    requester = practitioner(ctx, obr, 16) or (practitioner(ctx, order.orc, 12) if order.orc else None)
    request = service_request(ctx, order, subject, requester, key)
    specimens = [specimen(ctx, s.spm, key, subject, request if subject else None) for s in order.specimens]
    first_specimen = specimens[0] if specimens else None
    effective = _effective(ctx, order)
    docs: list[Observation] = []
    kept: list[Observation] = []
    for o in order.observations:
        (docs if o.vt in MAYBE_DOCUMENT and is_document(o) else kept).append(o)
    order.observations = kept
    presented = documents(ctx, docs)
    genomic = _is_genetic(ctx, order)
    if genomic:
        known, site = variable_codes(), ctx.options.variable_names
        for obs in order.observations:
            _recognise(ctx, obs, True, known, site)  # generic names count in an order known to be genetic
    results: list[dict[str, Any]] = []
    conclusion: list[Observation] = []
    plain: list[Observation] = []
    if genomic:
        groups: dict[str, list[Observation]] = {}
        shared: list[Observation] = []
        specs = variables()["variables"]
        for obs in order.observations:
            rec = obs.variable
            code = rec.loinc if rec is not None else None
            spec = specs.get(code) if code else None
            sub = obs.group
            if spec and spec["scope"] == "report":
                conclusion.append(obs)
            elif spec and sub and not is_overall(sub):
                groups.setdefault(sub, []).append(obs)
            elif spec and code == "62374-4":
                shared.append(obs)  # the assembly, stated once for the whole study
            elif spec and sub == "":
                groups.setdefault("", []).append(obs)
            else:
                plain.append(obs)
        # Rows of an unknown code with a variant group's sub-ID belong to that variant.
        for obs in list(plain):
            sub = obs.group
            if sub in groups and sub and not obs.apart:
                groups[sub].append(obs)
                plain.remove(obs)
        implications = []
        pairs = phase_pairs(groups)
        phased = frozenset(id(obs) for _, rows in pairs for _, obs in rows)
        for sub, rows in groups.items():
            var, impl, leftovers = variant(ctx, rows, key, sub, shared, subject, first_specimen, effective, phased)
            results.append(var)
            plain.extend(leftovers)
            if impl:
                implications.append(impl)
        results.extend(implications)
        results.extend(phase_relationship(ctx, key, phase, rows, subject) for phase, rows in pairs)
        # A study-wide row that no variant took (there is none, or each has its own) is a result of its own.
        if shared:
            held = [{r.variable.loinc if r.variable is not None else None for r in rows} for rows in groups.values()]
            plain.extend(o for o in shared if all(o.variable.loinc in codes for codes in held))  # recognised rows
    else:
        plain = list(order.observations)
    seen: dict[tuple[str, str], int] = {}

    def ordinal(obs: Observation) -> int:
        k = (obs.obx.get(3), obs.sub)
        seen[k] = seen.get(k, 0) + 1
        return seen[k]

    for obs in plain:
        # Overall-study rows (sub-ID 1) of a genetic report are genetic results too: category GE says so.
        overall = genomic and is_overall(obs.group)
        code = genetic_row_code(ctx, obs) if obs.variable is not None else None
        results.append(lab_observation(ctx, obs, key, subject, first_specimen, effective, overall, ordinal(obs),
                                       code))
    for s, spec_res in zip(order.specimens, specimens, strict=True):
        for obs in s.observations:
            results.append(lab_observation(ctx, obs, key, subject, spec_res, effective, False, ordinal(obs)))
    report = diagnostic_report(ctx, order, key, genomic, subject, request, specimens, results, conclusion,
                               effective, presented)
    if subject is None:  # R4 ServiceRequest.subject is 1..1: the order numbers stay on the DiagnosticReport
        ctx.warn("hl7v2-order-without-subject", "without a PID the order cannot be a ServiceRequest (its subject is "
                 "required); the DiagnosticReport keeps the order numbers", obr.ref, code="required")
        report.pop("basedOn", None)
        return [*([requester] if requester else []), *specimens, report, *results]
    return [request, *([requester] if requester else []), *specimens, report, *results]
