"""PID → Patient."""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cx_to_identifier, xad_to_address, xpn_to_human_name, xtn_to_contact_point
from mappers.hl7v2.model import Segment
from mappers.ids import resource_id
from mappers.terminology import translate


def patient(ctx: Context, pid: Segment) -> dict[str, Any]:
    """Reads PID-3 (identifiers), PID-5 (names), PID-7 (birth date), PID-8 (sex), PID-11 (addresses),
    PID-13/14 (telecom). The id derives from the first PID-3 identifier."""
    ctx.use(pid, 1, 3, 5, 7, 8, 11, 13, 14)
    identifiers = []
    for rep in range(1, len(pid.repetitions(3)) + 1):
        ident = cx_to_identifier(pid, 3, rep)
        if ident is None:
            continue
        if "system" not in ident:
            ctx.warn("hl7v2-identifier-without-authority",
                     f"PID-3 repetition {rep} has no assigning authority; its Identifier has no system",
                     f"{pid.ref}-3({rep})")
        identifiers.append(ident)
    key = next(((i.get("system", ""), i["value"]) for i in identifiers), None)
    if key is None:
        ctx.warn("hl7v2-patient-without-identifier", "PID-3 is empty; the Patient id derives from the message",
                 f"{pid.ref}-3")
        key = (ctx.message.msh.raw(4), ctx.message.control_id, str(pid.occurrence))
    res: dict[str, Any] = {"resourceType": "Patient", "id": resource_id("Patient", *key)}
    if identifiers:
        res["identifier"] = identifiers
    names = [n for r in range(1, len(pid.repetitions(5)) + 1) if (n := xpn_to_human_name(pid, 5, r))]
    if names:
        res["name"] = names
    sex = pid.get(8)
    if sex:
        t = translate("v2-0001-to-administrative-gender", sex)
        if t is not None:
            res["gender"] = t.code
            if t.equivalence == "unmatched":
                ctx.warn("hl7v2-code-unmapped", f"PID-8 {sex!r} is not in HL7 table 0001; gender set to unknown",
                         f"{pid.ref}-8")
    birth = pid.get(7)
    if birth:
        date = birth[:8]
        if len(date) >= 4 and date.isdigit():
            res["birthDate"] = "-".join(x for x in (date[:4], date[4:6], date[6:8]) if x)
            if len(birth) > 8:
                ctx.inform("hl7v2-birth-time-dropped", "PID-7 time of birth not mapped (birthDate is a date)",
                           f"{pid.ref}-7")
        else:
            ctx.warn("hl7v2-bad-datetime", f"PID-7 {birth!r} is not a date; not mapped", f"{pid.ref}-7")
    addresses = [a for r in range(1, len(pid.repetitions(11)) + 1) if (a := xad_to_address(pid, 11, r))]
    if addresses:
        res["address"] = addresses
    telecom = [t for n in (13, 14) for r in range(1, len(pid.repetitions(n)) + 1)
               if (t := xtn_to_contact_point(pid, n, r))]
    if telecom:
        res["telecom"] = telecom
    return res
