"""Checks of a $convert endpoint on reference inputs: the output's facts and its profile validity."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson

from conformance.checks import facts
from conformance.checks.expect import FHIR_JSON, media_type, ok, resource
from conformance.client import Reply
from conformance.context import Context
from conformance.exceptions import CheckFailed, ConformanceError
from conformance.registry import check


def _input(ctx: Context) -> tuple[dict[str, Any], bytes]:
    info = ctx.param("input")
    try:
        return info, Path(info["path"]).read_bytes()
    except OSError as e:
        raise ConformanceError(f"cannot read the reference input {info['path']}: {e.strerror}") from None


def post(ctx: Context, accept: str = FHIR_JSON) -> Reply:
    """POST the input to [base]/$convert with the group's query (e.g. ?target=ips)."""
    info, data = _input(ctx)
    return ctx.target.request("POST", "$convert", content=data, params=info["query"] or None,
                              headers={"Content-Type": info["content_type"], "Accept": accept})


def _key(ctx: Context) -> str:
    """Where an input's output is kept: per input and target (one input is converted to several targets)."""
    info = ctx.param("input")
    target = (info.get("query") or {}).get("target")
    return f"out-{info['id']}" + (f"-{target}" if target else "")


def output(ctx: Context) -> dict[str, Any]:
    """The Bundle `convert-input` kept for this input and target."""
    return ctx.saved(_key(ctx))["bundle"]




@check("convert-input")
def convert_input(ctx: Context) -> str | None:
    """POST [base]/$convert with the input → 200 and a FHIR Bundle (kept for the facts and validity tests)."""
    reply = post(ctx)
    ok(reply)
    bundle = resource(reply, "Bundle")
    entries = bundle.get("entry") or []
    if not entries:
        raise CheckFailed("the Bundle has no entries")
    ctx.save(_key(ctx), bundle=bundle)
    kinds: dict[str, int] = {}
    for e in entries:
        rtype = (e.get("resource") or {}).get("resourceType", "?")
        kinds[rtype] = kinds.get(rtype, 0) + 1
    return f"Bundle ({bundle.get('type')}) of {len(entries)}: " + ", ".join(f"{n} {t}" for t, n in kinds.items())


@check("convert-content-type")
def convert_content_type(ctx: Context) -> str | None:
    reply = post(ctx)
    ok(reply)
    media_type(reply, [FHIR_JSON], "the converted Bundle")
    return reply.headers.get("content-type")


@check("convert-facts")
def convert_facts(ctx: Context) -> str | None:
    """Every fact the input's .facts.json states is in the output."""
    path = ctx.param("input")["facts"]
    try:
        expected = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise ConformanceError(f"cannot read the facts file {path}: {e}") from None
    bad, count, unchecked = facts.compare(expected, output(ctx))
    if bad:
        more = f" (+{len(bad) - 6} more)" if len(bad) > 6 else ""
        raise CheckFailed(f"{len(bad)} of {count} facts differ: " + "; ".join(bad[:6]) + more)
    return f"{count} facts match" + (f" (not checked: {', '.join(unchecked)})" if unchecked else "")


@check("convert-validates")
def convert_validates(ctx: Context) -> str | None:
    """The output validates with no error against base R4 and every profile its resources claim, and the
    genomic resources claim the IG profiles they are (params.claims: type + code → profile)."""
    bundle = output(ctx)
    unclaimed = []
    for entry in bundle.get("entry") or []:
        res = entry.get("resource") or {}
        code = res.get("code")  # a CodeableConcept, or a list of them (PractitionerRole.code)
        codes = {c.get("code") for cc in (code if isinstance(code, list) else [code])
                 for c in (cc or {}).get("coding") or [] if isinstance(cc, dict)}
        claims = {str(p).split("|")[0] for p in (res.get("meta") or {}).get("profile") or []}
        for rule in ctx.param("claims", []):
            if res.get("resourceType") == rule["type"] and rule["code"] in codes and rule["profile"] not in claims:
                unclaimed.append(f"{entry.get('fullUrl') or res.get('id')} ({rule['type']} {rule['code']}) does "
                                 f"not claim {rule['profile'].rsplit('/', 1)[-1]}")
    found = [i for i in ctx.validator().validate(bundle) if i.severity in ("error", "fatal")]
    if found or unclaimed:
        lines = unclaimed[:3] + [f"{i.expression}: {i.message}" for i in found[:5]]
        raise CheckFailed(f"{len(found)} validation error(s), {len(unclaimed)} missing profile claim(s): " +
                          "; ".join(lines))
    claimed = sum(1 for e in bundle.get("entry") or [] if (e.get("resource") or {}).get("meta", {}).get("profile"))
    return f"no errors; {claimed} resource(s) claim profiles"


@check("convert-parameters")
def convert_parameters(ctx: Context) -> str | None:
    """The operation's own form: Parameters in (input), Parameters out (output = the Bundle)."""
    info, data = _input(ctx)
    try:
        value: dict[str, Any] = {"valueString": data.decode("utf-8")}
    except UnicodeDecodeError:
        value = {"valueBase64Binary": base64.b64encode(data).decode()}
    params = [{"name": "input", **value}, {"name": "source", "valueCode": info["format"]}]
    reply = ctx.target.request("POST", "$convert", json={"resourceType": "Parameters", "parameter": params},
                               headers={"Accept": FHIR_JSON})
    ok(reply)
    doc = resource(reply, "Parameters")
    output = next((p for p in doc.get("parameter") or [] if p.get("name") == "output"), None)
    if output is None:
        raise CheckFailed("the Parameters answer has no 'output' parameter")
    if (output.get("resource") or {}).get("resourceType") != "Bundle":
        raise CheckFailed("Parameters.output does not hold a Bundle resource")
    return f"output: Bundle of {len(output['resource'].get('entry') or [])}"
