"""MSH → Provenance naming the source message (MSH-10) and the converter as assembler."""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.emit import datetime_field, ref
from mappers.ids import resource_id

MAPPER_VERSION = "hl7v2-oru-r01/0.1.1"  # 0.1.1: transactions give every resource an identifier


def converter_device() -> dict[str, Any]:
    """The converter itself, as the Provenance assembler."""
    return {
        "resourceType": "Device",
        "id": resource_id("Device", "helixgate", MAPPER_VERSION),
        "deviceName": [{"name": "helixgate", "type": "user-friendly-name"}],
        "version": [{"value": MAPPER_VERSION}],
    }


def provenance(ctx: Context, targets: list[dict[str, Any]], device: dict[str, Any],
               source_org: dict[str, Any] | None) -> dict[str, Any]:
    """Reads MSH-3/4 (sender), MSH-7 (message time), MSH-9, MSH-10 (control id)."""
    msh = ctx.message.msh
    ctx.use(msh, 3, 4, 7, 9, 10, 11, 12, 18)
    sender = "/".join(x for x in (msh.get(3), msh.get(4)) if x)
    res: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": resource_id("Provenance", msh.get(3), msh.get(4), ctx.message.control_id),
        "target": [ref(t) for t in targets],
    }
    occurred = datetime_field(ctx, msh, 7)
    if occurred:
        res["occurredDateTime"] = occurred
    received = ctx.options.received
    res["recorded"] = received.isoformat(timespec="seconds") if received else (
        occurred if occurred and "T" in occurred else "1970-01-01T00:00:00Z")
    if not received and not (occurred and "T" in occurred):
        ctx.warn("provenance-recorded-unknown", "no receive time given and MSH-7 is not an instant; "
                 "Provenance.recorded set to the epoch", "MSH-7")
    res["activity"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                   "code": "CREATE", "display": "create"}]}
    agents = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                    "code": "assembler", "display": "Assembler"}]}, "who": ref(device)}]
    if source_org:
        agents.append({"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                            "code": "author", "display": "Author"}]}, "who": ref(source_org)})
    res["agent"] = agents
    res["entity"] = [{
        "role": "source",
        "what": {"identifier": {"system": "urn:helixgate:hl7v2:msh-10", "value": ctx.message.control_id},
                 "display": f"HL7 v2 {ctx.message.message_type} {ctx.message.control_id} from {sender}".strip()},
    }]
    return res
