"""Documents sent inside OBX rows → DiagnosticReport.presentedForm Attachments, not Observation values:
ED (encapsulated data: a signed PDF report, an image) and RP (reference pointer) results, and the text report
some systems send as TX/FT/ST rows without an OBX-3 identifier, one line a row (HL7 v2.5.1 §7.4.2)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.emit import datetime_field
from mappers.hl7v2.structure import Observation

_TEXT = {"TX", "FT", "ST"}
MAYBE_DOCUMENT = frozenset({"ED", "RP", *_TEXT})  # OBX-2 of the rows is_document() looks into
_MIME = re.compile(r"[a-z]+/[a-z0-9][a-z0-9!#$&^_.+-]*")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")


@cache
def media_types() -> dict[str, Any]:
    return json.loads((Path(__file__).parents[1] / "tables" / "ed-media-types.json").read_text("utf-8"))


def is_document(obs: Observation) -> bool:
    """ED/RP rows, and text rows without any OBX-3 (lines of a report)."""
    obx = obs.obx
    vt = obs.vt
    return vt in ("ED", "RP") or (vt in _TEXT and not obx.raw(3))


def content_type(kind: str, subtype: str) -> str | None:
    """Table 0191 type + table 0291 subtype (or a MIME type written as type/subtype) → MIME type, else None."""
    table = media_types()
    if kind.lower() in table["mime_top_levels"] and subtype:
        mime = f"{kind}/{subtype}".lower()
        return mime if _MIME.fullmatch(mime) else None
    return table["subtypes"].get(subtype.upper()) or table["types"].get(kind.upper())


def _title(ctx: Context, obs: Observation) -> str:
    """OBX-3's text (original text, text, alternate text, else the code) as the document's title."""
    obx = obs.obx
    for comp in (9, 2, 5, 1):
        if obx.get(3, comp):
            ctx.use_component(obx, 3, comp)
            return obx.get(3, comp)
    return ""


def _creation(ctx: Context, obs: Observation, att: dict[str, Any]) -> None:
    when = datetime_field(ctx, obs.obx, 14)
    ctx.use(obs.obx, 14)
    if when:
        att["creation"] = when


def _decode(ctx: Context, obs: Observation, encoding: str, data: str, rep: int) -> bytes | None:
    where = f"{obs.obx.ref}-5" if rep == 1 else f"{obs.obx.ref}-5({rep})"
    enc = encoding.upper()
    if enc == "BASE64":
        try:
            return base64.b64decode(re.sub(r"\s+", "", data), validate=True)
        except (binascii.Error, ValueError):
            ctx.warn("hl7v2-bad-base64", "OBX-5.5 is not valid base64 (ED-4 Base64); the document is not kept",
                     f"{where}.5")
            return None
    if enc == "HEX":
        try:
            return bytes.fromhex(data)
        except ValueError:
            ctx.warn("hl7v2-bad-hex", "OBX-5.5 is not valid hexadecimal (ED-4 Hex); the document is not kept",
                     f"{where}.5")
            return None
    if enc in ("A", "NONE", ""):
        return data.encode("utf-8")
    ctx.warn("hl7v2-unknown-encoding", f"ED-4 encoding {encoding!r} is not in HL7 table 0299 (A, Hex, Base64); "
             "the document is not kept", f"{where}.4")
    return None


def _attachment(raw: bytes, mime: str | None, title: str) -> dict[str, Any]:
    att: dict[str, Any] = {}
    if mime:
        att["contentType"] = mime
    att["data"] = base64.b64encode(raw).decode("ascii")
    att["size"] = len(raw)
    att["hash"] = base64.b64encode(hashlib.sha1(raw).digest()).decode("ascii")  # R4 Attachment.hash is SHA-1
    if title:
        att["title"] = title
    return att


def _ed(ctx: Context, obs: Observation, rep: int) -> dict[str, Any] | None:
    """ED: 1 source application, 2 type of data, 3 data subtype, 4 encoding, 5 data."""
    obx = obs.obx
    kind, subtype, encoding, data = (obx.get(5, c, rep=rep) for c in (2, 3, 4, 5))
    ctx.use_component(obx, 5, 2, 3, 4, 5)
    if not data:
        ctx.warn("hl7v2-empty-document", "OBX-5 (ED) carries no data; no document is kept", f"{obx.ref}-5")
        return None
    raw = _decode(ctx, obs, encoding, data, rep)
    if raw is None:
        return None
    if not raw:
        ctx.warn("hl7v2-empty-document", "OBX-5 (ED) decodes to no bytes; no document is kept", f"{obx.ref}-5")
        return None
    mime = content_type(kind, subtype)
    if mime is None:
        ctx.warn("hl7v2-unknown-media-type", f"OBX-5 ED type {kind!r} / subtype {subtype!r} names no MIME type; "
                 "the attachment has no contentType", f"{obx.ref}-5.3")
    magic = media_types()["magic"].get(mime or "")
    if magic and not raw.startswith(magic.encode("latin-1")):
        ctx.warn("hl7v2-document-content-mismatch", f"OBX-5 says {mime} but the decoded bytes do not start as "
                 "such a document does; kept as declared", f"{obx.ref}-5")
    att = _attachment(raw, mime, _title(ctx, obs))
    _creation(ctx, obs, att)
    return att


def _rp(ctx: Context, obs: Observation, rep: int) -> dict[str, Any] | None:
    """RP: 1 pointer, 2 application id (HD), 3 type of data, 4 subtype."""
    obx = obs.obx
    pointer, kind, subtype = obx.get(5, 1, rep=rep), obx.get(5, 3, rep=rep), obx.get(5, 4, rep=rep)
    ctx.use_component(obx, 5, 1, 3, 4)
    if not pointer:
        return None
    att: dict[str, Any] = {}
    mime = content_type(kind, subtype)
    if mime:
        att["contentType"] = mime
    title = _title(ctx, obs)
    if _URL.fullmatch(pointer):
        att["url"] = pointer
    else:  # relative to the application in RP-2, which FHIR cannot resolve
        ctx.warn("hl7v2-pointer-not-a-url", f"OBX-5 (RP) pointer {pointer!r} is not an absolute URL; kept as the "
                 "attachment's title", f"{obx.ref}-5.1")
        title = f"{title}: {pointer}" if title else pointer
    if title:
        att["title"] = title
    _creation(ctx, obs, att)
    return att


def documents(ctx: Context, rows: list[Observation]) -> list[tuple[dict[str, Any], str]]:
    """(Attachment, source field) for the document rows of an order, in order; consecutive text rows without
    OBX-3 become one text/plain document, their lines joined."""
    out: list[tuple[dict[str, Any], str]] = []
    lines: list[str] = []
    first: Observation | None = None

    def flush() -> None:
        nonlocal first
        if first is not None and any(line.strip() for line in lines):
            att = _attachment("\n".join(lines).encode("utf-8"), "text/plain; charset=utf-8", "")
            _creation(ctx, first, att)
            where = first.obx.ref + "-5" if len(lines) == 1 else f"{first.obx.ref}-5 (and the text rows after it)"
            out.append((att, where))
        lines.clear()
        first = None

    for obs in rows:
        obx = obs.obx
        ctx.use(obx, 1, 2, 11)
        if obx.get(2) in _TEXT:
            ctx.use(obx, 5)
            if first is not None and obx.get(14) == first.obx.get(14):
                ctx.use(obx, 14)  # the same time as the first line's, which the document carries
            first = first or obs
            reps = obx.repetitions(5)
            if reps:
                lines.extend(obx.text(5, r) for r in range(1, len(reps) + 1))
            else:
                lines.append("")
            continue
        flush()
        maker = _ed if obx.get(2) == "ED" else _rp
        for rep in range(1, obx.repetition_count(5) + 1):
            att = maker(ctx, obs, rep)
            if att is not None:
                out.append((att, f"{obx.ref}-5" if rep == 1 else f"{obx.ref}-5({rep})"))
    flush()
    if rows:
        ctx.inform("hl7v2-document-rows", f"{len(rows)} OBX row(s) holding a document (ED/RP, or text without "
                   "OBX-3) became DiagnosticReport.presentedForm", rows[0].obx.ref)
    return out
