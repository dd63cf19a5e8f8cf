"""MSH → the message's Provenance (mappers.toolkit.provenance): which message (MSH-10, in its sender's namespace),
when it was written (MSH-7), and the converter (a Device naming this mapper's version) as assembler."""

from __future__ import annotations

import re
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import local_system
from mappers.hl7v2.emit import datetime_field
from mappers.toolkit.fhirtime import is_instant
from mappers.toolkit.provenance import provenance

# 0.2.0: times and codes checked before they are emitted, documents as presentedForm, genetic variables by name,
# no conversion time (Provenance and Bundle.timestamp from MSH-7 only), component-level report, origins.
# 0.3.1: MSH-19 (principal language of message) → Bundle.language.
MAPPER_VERSION = "hl7v2-oru-r01/0.3.1"
SOURCE_SYSTEM = "urn:helixgate:hl7v2:msh-10"


def message_time(ctx: Context) -> str | None:
    """MSH-7 as a FHIR dateTime: with its time when it has a zone (its own or the timezone option), which makes it
    an instant (the time of day is completed to seconds as FHIR requires), else its date; None when invalid."""
    msh = ctx.message.msh
    ctx.use(msh, 7)
    return datetime_field(ctx, msh, 7)



# An ISO 639-1 language, optionally with an ISO 3166 region: a BCP 47 tag as-is (RFC 5646 §2.2.1, §2.2.4). ISO 639-2
# three-letter codes are not: BCP 47 takes the two-letter code where one exists, and this mapper keeps no table.
_LANGUAGE = re.compile(r"^([A-Za-z]{2})(?:[-_]([A-Za-z]{2}))?$")


def message_language(ctx: Context) -> str | None:
    """MSH-19, the principal language of the message (CE, HL7 table 0296: ISO 639), as a BCP 47 code for
    Resource.language: 'en', 'EN^English^ISO639' → en; 'en-GB' → en-GB. PID-15 is the patient's language, not the
    message's, and is not read here. A code that is not ISO 639-1 is reported and left unmapped."""
    msh = ctx.message.msh
    code = msh.get(19).strip()
    if not code:
        return None
    m = _LANGUAGE.match(code)
    if m is None:
        ctx.warn("hl7v2-language-not-mapped", f"MSH-19 {code!r} is not an ISO 639-1 language code (optionally with "
                 "a region, en-GB): Bundle.language is not set", f"{msh.ref}-19")
        return None
    ctx.use_component(msh, 19, 1, 2, 3)
    return m[1].lower() + (f"-{m[2].upper()}" if m[2] else "")


def source_identifier(ctx: Context) -> dict[str, str]:
    """The message as an Identifier: MSH-10 is unique per sending application and facility only, so the system
    says whose it is (Bundle.identifier and the Provenance entity)."""
    msh = ctx.message.msh
    sender = "/".join(x for x in (msh.get(3), msh.get(4)) if x)
    system = f"{SOURCE_SYSTEM}:{local_system(sender)[len('urn:id:'):]}" if sender else SOURCE_SYSTEM
    return {"system": system, "value": ctx.message.control_id}


def message_provenance(ctx: Context, targets: list[dict[str, Any]], device: dict[str, Any],
                       author: dict[str, Any] | None, occurred: str | None,
                       system: str | None = None) -> dict[str, Any] | None:
    """Reads MSH-3/4 (sender: the namespace of MSH-10), MSH-9, MSH-10, MSH-11/12/18 (how it was sent); `occurred`
    is MSH-7 (message_time), `system` the one of source_identifier() when the caller has it. None when neither
    MSH-7 nor the caller's `recorded` option is an instant (Provenance.recorded is 1..1)."""
    msh = ctx.message.msh
    ctx.use(msh, 3, 9, 10, 11, 12, 18)
    app, facility = msh.get(3), msh.get(4)
    sender = f"{app}/{facility}" if app and facility else app or facility
    system = system or source_identifier(ctx)["system"]
    recorded = occurred if occurred and is_instant(occurred) else ctx.options.recorded
    if recorded and not is_instant(recorded):
        ctx.warn("hl7v2-bad-recorded", f"the recorded option {recorded!r} is not a FHIR instant; not used")
        recorded = None
    description = f"HL7 v2 {ctx.message.message_type} {ctx.message.control_id} from {sender}".strip()
    res = provenance((system, ctx.message.control_id), description, targets, device, recorded, occurred, author)
    if res is None:
        ctx.inform("hl7v2-no-provenance", "MSH-7 is not an instant (no seconds or no time zone, and no timezone "
                   "option) and no recorded time was given: the Bundle has no Provenance of the message",
                   f"{msh.ref}-7")
        return None
    ctx.origin(res, f"{msh.ref}-10")
    ctx.origin(res, f"{msh.ref}-7", "recorded")
    return res
