"""Checks of a cross-border `$exchange` endpoint: that it enforces a route. Refusals are 403 OperationOutcomes that
name the rule and send nothing; a dry run reports removals without the removed values; a pseudonymising route's
output holds none of the source's identifying values and validates.

Params: `route`, `purpose`, `input` ({path, content_type}; a path relative to the repository root or absolute),
`mechanism`, `filing`, `consents` (a Bundle file of Consent resources), `rule` (the rule a refusal must name),
`absent` (values that must not appear in the answer), `changes` (actions a dry run must list), `rules` (rules
whose changes it must list)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson

from conformance.checks.expect import FHIR_JSON, errors, ok, outcome_text, resource
from conformance.client import Reply
from conformance.context import Context
from conformance.exceptions import CheckFailed, ConformanceError
from conformance.registry import check

ROOT = Path(__file__).resolve().parents[2]


def _file(path: str) -> bytes:
    p = Path(path)
    try:
        return (p if p.is_absolute() else ROOT / p).read_bytes()
    except OSError as e:
        raise ConformanceError(f"cannot read {path}: {e.strerror}") from None


def _parameters(ctx: Context, **override: Any) -> dict[str, Any]:
    params = {**ctx.params, **override}
    info = params["input"]
    p: list[dict[str, Any]] = [
        {"name": "route", "valueString": params["route"]}, {"name": "purpose", "valueCode": params["purpose"]},
        {"name": "content", "valueAttachment": {"contentType": info["content_type"],
                                                "data": base64.b64encode(_file(info["path"])).decode()}}]
    for name in ("mechanism", "filing"):
        if params.get(name):
            p.append({"name": name, "valueString": params[name]})
    if params.get("consents"):
        bundle = orjson.loads(_file(params["consents"]))
        p += [{"name": "consent", "resource": e["resource"]} for e in bundle.get("entry") or []]
    if params.get("dry_run"):
        p.append({"name": "dryRun", "valueBoolean": True})
    return {"resourceType": "Parameters", "parameter": p}


def _post(ctx: Context, body: dict[str, Any]) -> Reply:
    return ctx.target.request("POST", "$exchange", content=orjson.dumps(body),
                              headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})


def _no_values(ctx: Context, reply: Reply) -> None:
    found = [v for v in ctx.param("absent", []) if v.encode() in reply.body]
    if found:
        raise CheckFailed(f"the answer holds {len(found)} value(s) the route removes: {', '.join(found[:5])}")


@check("exchange-refused")
def exchange_refused(ctx: Context) -> str | None:
    """A transfer the route does not allow → 403 with an OperationOutcome naming the rule; no output."""
    reply = _post(ctx, _parameters(ctx))
    if reply.status != 403:
        raise CheckFailed(f"expected HTTP 403 (refused by rule {ctx.param('rule')}), got {reply.describe()}")
    doc = resource(reply, "OperationOutcome")
    issues = errors(doc)
    if not issues or issues[0].get("code") != "forbidden":
        raise CheckFailed(f"the OperationOutcome does not say forbidden: {outcome_text(doc)}")
    said = orjson.dumps(doc).decode()
    if ctx.param("rule") not in said:
        raise CheckFailed(f"the refusal does not name the rule {ctx.param('rule')!r}: {outcome_text(doc)}")
    _no_values(ctx, reply)
    return outcome_text(doc, 1)


@check("exchange-dry-run")
def exchange_dry_run(ctx: Context) -> str | None:
    """A dry run → 200 Parameters with the decision and the changes (removed, generalised, replaced), and none
    of the values it would remove."""
    reply = _post(ctx, _parameters(ctx, dry_run=True))
    ok(reply)
    doc = resource(reply, "Parameters")
    parts = doc.get("parameter") or []
    decision = next((p.get("valueCode") for p in parts if p.get("name") == "decision"), None)
    if decision != "permit":
        raise CheckFailed(f"expected decision permit, got {decision!r}")
    if any(p.get("name") == "output" for p in parts):
        raise CheckFailed("a dry run returned the output")
    actions = {q.get("valueCode") for p in parts if p.get("name") == "change" for q in p.get("part") or []
               if q.get("name") == "action"}
    missing = set(ctx.param("changes", [])) - actions
    if missing:
        raise CheckFailed(f"the diff lists no {', '.join(sorted(missing))} change (it has: {sorted(actions)})")
    rules = {q.get("valueCode") for p in parts if p.get("name") == "change" for q in p.get("part") or []
             if q.get("name") == "rule"}
    silent = set(ctx.param("rules", [])) - rules
    if silent:
        raise CheckFailed(f"no change by rule(s) {', '.join(sorted(silent))} (changes by: {sorted(rules)})")
    _no_values(ctx, reply)
    return f"{sum(1 for p in parts if p.get('name') == 'change')} changes: {', '.join(sorted(actions))}"


@check("exchange-output")
def exchange_output(ctx: Context) -> str | None:
    """A permitted transfer → 200 Parameters whose output holds none of the removed values and validates."""
    reply = _post(ctx, _parameters(ctx))
    ok(reply)
    doc = resource(reply, "Parameters")
    out = next((p.get("resource") for p in doc.get("parameter") or [] if p.get("name") == "output"), None)
    if not isinstance(out, dict):
        raise CheckFailed("the answer has no output resource")
    _no_values(ctx, reply)
    issues = errors(ctx.validator().outcome(out, ()))
    if issues:
        raise CheckFailed(f"the output has {len(issues)} validation error(s): " + outcome_text(
            {"resourceType": "OperationOutcome", "issue": issues}))
    return f"{out.get('resourceType')} of {len(out.get('entry') or [])} entries, valid"


@check("exchange-bad-request")
def exchange_bad_request(ctx: Context) -> str | None:
    """A body that is not a Parameters → 4xx with an OperationOutcome."""
    reply = _post(ctx, {"resourceType": "Patient"})
    if not 400 <= reply.status < 500:
        raise CheckFailed(f"expected a 4xx, got {reply.describe()}")
    return outcome_text(resource(reply, "OperationOutcome"), 1)
