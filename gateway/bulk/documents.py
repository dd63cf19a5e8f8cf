"""Splitting a bulk input into documents: NDJSON lines (Binary or Parameters resources carrying a document), the
documents of a batch file (a format's `split`, e.g. HL7 v2 FHS/BHS), or one document."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from gateway.fhir_input import parameters
from gateway.formats import detect, media_source
from mappers.toolkit.registry import get

NDJSON_TYPES = {"application/fhir+ndjson", "application/x-ndjson", "application/ndjson"}


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a bulk input, or why a line could not be read (`error`); `where` locates it."""

    data: bytes
    source: str | None
    where: str
    error: str = ""


def _from_resource(doc: object, where: str) -> Document:
    if not isinstance(doc, dict):
        return Document(b"", None, where, "the line is not a JSON object")
    rtype = doc.get("resourceType")
    try:
        if rtype == "Binary":
            media = str(doc.get("contentType", "")).split(";")[0].strip().lower()
            data = base64.b64decode(doc.get("data", ""), validate=True)
            return Document(data, media_source(media, data) or detect(data), where)
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
    split = get(src).split if src else None
    if split is None:
        yield Document(data, src, "document 1")
        return
    for where, doc in split(data):
        yield Document(doc, src, where)
