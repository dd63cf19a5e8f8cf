"""PID → Patient."""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cx_to_identifier, xad_to_address, xpn_to_human_name, xtn_to_contact_point
from mappers.hl7v2.model import Segment
from mappers.ids import resource_id
from mappers.terminology import translate
from mappers.toolkit.fhirtime import is_date


def _identifiers(ctx: Context, pid: Segment, n: int) -> list[tuple[dict[str, Any], str]]:
    """The Identifiers of PID-n's repetitions, each with the source field it came from."""
    out = []
    for rep in range(1, pid.repetition_count(n) + 1):
        ident = cx_to_identifier(pid, n, rep, ctx)
        if ident is None:
            continue
        where = f"{pid.ref}-{n}" if rep == 1 else f"{pid.ref}-{n}({rep})"
        if "system" not in ident:
            ctx.warn("hl7v2-identifier-without-authority",
                     f"PID-{n} repetition {rep} has no assigning authority; its Identifier has no system", where)
        if "text" in ident.get("type", {}):
            ctx.warn("hl7v2-identifier-type-unknown",
                     f"PID-{n} repetition {rep}: identifier type {ident['type']['text']!r} is not in HL7 table 0203; "
                     "kept as Identifier.type.text", f"{where}.5")
        out.append((ident, where))
    return out


def patient(ctx: Context, pid: Segment) -> dict[str, Any]:
    """Reads PID-3/PID-4 (identifiers), PID-5 (names), PID-7 (birth date), PID-8 (sex), PID-11 (addresses),
    PID-13/14 (telecom). The id derives from the first PID-3 identifier."""
    ctx.use(pid, 1, 7, 8)
    found = _identifiers(ctx, pid, 3) + _identifiers(ctx, pid, 4)  # PID-4: alternate id (v2.5 backward compat.)
    identifiers = [i for i, _ in found]
    key = next(((i.get("system", ""), i["value"]) for i in identifiers), None)
    if key is None:
        ctx.warn("hl7v2-patient-without-identifier", "PID-3 is empty; the Patient id derives from the message",
                 f"{pid.ref}-3")
        key = (ctx.message.msh.raw(4), ctx.message.control_id, str(pid.occurrence))
    res: dict[str, Any] = {"resourceType": "Patient", "id": resource_id("Patient", *key)}
    ctx.origin(res, pid.ref)
    if identifiers:
        res["identifier"] = identifiers
        for i, (_, where) in enumerate(found):
            ctx.origin(res, where, f"identifier[{i}]")
    names = [n for r in range(1, pid.repetition_count(5) + 1) if (n := xpn_to_human_name(pid, 5, r, ctx))]
    if names:
        res["name"] = names
        ctx.origin(res, f"{pid.ref}-5", "name")
    sex = pid.get(8)
    if sex:
        t = translate("v2-0001-to-administrative-gender", sex)
        if t is not None:
            res["gender"] = t.code
            ctx.origin(res, f"{pid.ref}-8", "gender")
            if t.equivalence == "unmatched":
                ctx.warn("hl7v2-code-unmapped", f"PID-8 {sex!r} is not in HL7 table 0001; gender set to unknown",
                         f"{pid.ref}-8")
    birth = pid.get(7)
    if birth:
        digits = birth[:8]
        date = "-".join(x for x in (digits[:4], digits[4:6], digits[6:8]) if x)
        if digits.isdigit() and len(digits) in (4, 6, 8) and is_date(date):
            res["birthDate"] = date
            ctx.origin(res, f"{pid.ref}-7", "birthDate")
            if len(birth) > 8:
                ctx.inform("hl7v2-birth-time-dropped", "PID-7 time of birth not mapped (birthDate is a date)",
                           f"{pid.ref}-7")
        else:
            ctx.warn("hl7v2-bad-datetime", f"PID-7 {birth!r} is not a real date; birthDate not mapped",
                     f"{pid.ref}-7")
    addresses = [a for r in range(1, pid.repetition_count(11) + 1) if (a := xad_to_address(pid, 11, r, ctx))]
    if addresses:
        res["address"] = addresses
    telecom = [t for n in (13, 14) for r in range(1, pid.repetition_count(n) + 1)
               if (t := xtn_to_contact_point(pid, n, r, ctx))]
    if telecom:
        res["telecom"] = telecom
    return res
