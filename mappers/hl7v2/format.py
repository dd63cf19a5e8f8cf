"""HL7 v2.5.1 ORU^R01 as a helixgate format (mappers.toolkit.registry)."""

from __future__ import annotations

import re
from typing import Any

from mappers.conversion import Conversion
from mappers.exceptions import Issue, MappingError, ParseError
from mappers.hl7v2.context import Options
from mappers.hl7v2.emit.provenance import MAPPER_VERSION
from mappers.hl7v2.from_fhir import EmitOptions, from_fhir
from mappers.hl7v2.parse import parse_message
from mappers.hl7v2.structure import group_oru
from mappers.hl7v2.to_fhir import to_fhir
from mappers.hl7v2.variable_names import parse_site_entries
from mappers.toolkit.registry import ConvertOptions, Format, Option, Rendered

_ENVELOPE = (b"FHS", b"BHS", b"BTS", b"FTS")
_ZONE = re.compile(r"Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)")


def sniff(data: bytes) -> bool:
    return data[:64].lstrip(b"\xef\xbb\xbf\x0b \t\r\n").startswith((b"MSH", b"FHS", b"BHS"))


def split(data: bytes) -> list[tuple[str, bytes]]:
    """The messages of a batch file (FHS/BHS … BTS/FTS) or of MSH after MSH, each as its own bytes; a single
    message comes back as given."""
    given = data
    data = data.replace(b"\x0b", b"").replace(b"\x1c", b"")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.replace(b"\r\n", b"\r")
    # One message at most, told by scans in C: no envelope, and no MSH or just the one that opens the text. A
    # message of millions of segments (refused later by the segment cap) is then not walked line by line here.
    msh = text.count(b"MSH")
    if not any(e in text for e in _ENVELOPE) and (
            msh == 0 or (msh == 1 and text.lstrip(b" \t\r\n\x0c").startswith(b"MSH"))):
        return [("message 1", given)] if text.strip() else []
    lines = text.split(b"\r") if b"\r" in text else text.split(b"\n")
    messages: list[list[bytes]] = []
    for line in lines:
        line = line.strip(b"\n")
        if not line.strip() or line[:3] in _ENVELOPE:
            continue
        if line.startswith(b"MSH") or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return [(f"message {n}", b"\r".join(m) + b"\r") for n, m in enumerate(messages, 1)]


OPTIONS = (
    Option("variableNames", "site names and local codes of the LRI genetic variables, as a JSON object "
           '{"name or local code": "LOINC"} (e.g. a site file\'s text); added to '
           "mappers/hl7v2/tables/genetic-variable-names.json", metavar="JSON"),
)


def options(opts: ConvertOptions) -> Options:
    """The HL7 v2 mapper's Options from generic ones; raises ParseError for a bad variableNames table."""
    names = opts.param("variableNames")
    try:
        site = parse_site_entries(names) if names else ()
    except ValueError as e:
        raise ParseError(str(e), details="bad-option", expression="variableNames") from None
    if opts.timezone and not _ZONE.fullmatch(opts.timezone):
        raise ParseError(f"timezone {opts.timezone!r} is not +HH:MM, -HH:MM or Z", details="bad-option",
                         expression="timezone")
    return Options(bundle_type=opts.bundle_type, timezone=opts.timezone, recorded=opts.recorded,
                   variable_names=site)


def _to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    return to_fhir(data, options(opts))


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    msg = from_fhir(bundle, EmitOptions(timestamp=opts.recorded))  # MSH-7 when the input states no time
    return Rendered(msg.data, msg.issues)


def check_output(data: bytes) -> list[Issue]:
    """What from_fhir wrote must read back as an ORU^R01: the project's own parser and structure check."""
    try:
        group_oru(parse_message(data))
    except MappingError as e:
        return [Issue("error", "structure", "hl7v2-invalid-output", f"the written message does not read back: "
                      f"{i.message}", i.expression) for i in e.issues]
    return []  # an empty MSH-7 is already reported by from_fhir


FORMAT = Format(
    name="hl7v2",
    title="HL7 v2.5.1 ORU^R01 (LRI genetic variant model)",
    version=MAPPER_VERSION,
    media_type="x-application/hl7-v2+er7; charset=utf-8",
    media_types=("x-application/hl7-v2+er7", "application/hl7-v2", "application/hl7-v2+er7", "application/edi-hl7"),
    sniff=sniff,
    to_fhir=_to_fhir,
    from_fhir=_from_fhir,
    options=OPTIONS,
    split=split,
    check_output=check_output,
    sniff_order=10,
)
