"""Splitting a bulk input into documents: HL7 v2 messages (plain or a batch file), NDJSON lines (Binary or
Parameters resources carrying a document), or one document of any other source format."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from gateway.fhir_input import parameters
from gateway.formats import MEDIA_TYPES, detect

NDJSON_TYPES = {"application/fhir+ndjson", "application/x-ndjson", "application/ndjson"}
_ENVELOPE = (b"FHS", b"BHS", b"BTS", b"FTS")


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a bulk input, or why a line could not be read (`error`); `where` locates it."""

    data: bytes
    source: str | None
    where: str
    error: str = ""


def hl7v2_messages(data: bytes) -> list[bytes]:
    """The messages of an HL7 v2 input, each as its own bytes (batch envelopes dropped, CR terminators)."""
    data = data.replace(b"\x0b", b"").replace(b"\x1c", b"")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.replace(b"\r\n", b"\r")
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
    return [b"\r".join(m) + b"\r" for m in messages]


def count_hl7v2_messages(data: bytes) -> int:
    """How many MSH segments start a line (cheap; no parsing)."""
    n = 1 if data.lstrip(b"\xef\xbb\xbf\x0b \t\r\n").startswith(b"MSH") else 0
    return n + data.count(b"\rMSH") + data.count(b"\nMSH")


def _from_resource(doc: object, where: str) -> Document:
    if not isinstance(doc, dict):
        return Document(b"", None, where, "the line is not a JSON object")
    rtype = doc.get("resourceType")
    try:
        if rtype == "Binary":
            media = str(doc.get("contentType", "")).split(";")[0].strip().lower()
            data = base64.b64decode(doc.get("data", ""), validate=True)
            return Document(data, MEDIA_TYPES.get(media) or detect(data), where)
        if rtype == "Parameters":
            data, source = b"", None
            for p in parameters(doc):
                if p.get("name") == "input":
                    if "valueString" in p:
                        data = p["valueString"].encode("utf-8")
                    elif "valueBase64Binary" in p:
                        data = base64.b64decode(p["valueBase64Binary"], validate=True)
                elif p.get("name") == "source":
                    source = p.get("valueCode") or p.get("valueString")
            if not data:
                return Document(b"", None, where, "Parameters has no 'input' (valueString or valueBase64Binary)")
            return Document(data, source or detect(data), where)
    except (binascii.Error, ValueError):
        return Document(b"", None, where, "the document is not valid base64")
    return Document(b"", None, where, f"a {rtype or 'JSON object'} line carries no document: send Binary "
                                      "(contentType + data) or Parameters (input, source)")


def documents(data: bytes, media: str, source: str | None) -> Iterator[Document]:
    """The documents of a bulk input of Content-Type `media` (without parameters) and declared `source`."""
    if media in NDJSON_TYPES:
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                yield Document(b"", None, f"line {number}", f"not JSON: {e}")
                continue
            yield _from_resource(doc, f"line {number}")
        return
    src = source or detect(data)
    if src == "hl7v2":
        for number, message in enumerate(hl7v2_messages(data), 1):
            yield Document(message, "hl7v2", f"message {number}")
        return
    yield Document(data, src, "document 1")
