"""Phenopackets read and checked with the official schema: the GA4GH `phenopackets` package's protobuf messages and
protobuf's JSON mapping (https://protobuf.dev/programming-guides/json/). Unknown fields and wrong types are refused
with the JSON path of the offending value; what the mappers work on is the canonical JSON (MessageToDict:
lowerCamelCase names, defaults left out), so snake_case input and explicit defaults read the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from phenopackets.schema.v2 import Cohort, Family, Phenopacket

from mappers.exceptions import ParseError, UnsupportedMessage

MAX_BYTES = 32 << 20  # one phenopacket is kilobytes; a cohort of thousands stays well under this
KINDS: dict[str, type[Message]] = {"Phenopacket": Phenopacket, "Family": Family, "Cohort": Cohort}


@dataclass(frozen=True, slots=True)
class Document:
    """A phenopacket schema document: `kind` Phenopacket, Family or Cohort; `doc` its canonical JSON."""

    kind: str
    doc: dict[str, Any]


def field_names(kind: str) -> set[str]:
    """The JSON names (both spellings protobuf accepts) of a top-level message's fields."""
    desc = KINDS[kind].DESCRIPTOR
    return {f.json_name for f in desc.fields} | {f.name for f in desc.fields}


def kind_of(doc: dict[str, Any]) -> str | None:
    """Which top-level message a JSON object is, by its fields: a Family has a proband, a Cohort members, a
    Phenopacket neither; None when a key belongs to none of them."""
    keys = set(doc)
    if keys & {"proband", "relatives", "pedigree", "consanguinousParents", "consanguinous_parents"}:
        kind = "Family"
    elif "members" in keys or "description" in keys:
        kind = "Cohort"
    else:
        kind = "Phenopacket"
    return kind if keys <= field_names(kind) else None


def loads(data: bytes) -> Any:
    if len(data) > MAX_BYTES:
        raise ParseError(f"the input is {len(data)} bytes; a phenopacket document is at most {MAX_BYTES}",
                         details="phenopacket-too-large")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ParseError(f"input is not JSON: {e}", details="phenopacket-bad-json") from None


def read(data: bytes | dict[str, Any], kind: str | None = None) -> Document:
    """Parse and check a phenopacket, family or cohort (JSON bytes or an already parsed object). Raises ParseError
    naming the JSON path of an unknown field or a value of the wrong type, UnsupportedMessage for JSON that is no
    phenopacket schema document."""
    doc = loads(data) if isinstance(data, bytes) else data
    if not isinstance(doc, dict):
        raise UnsupportedMessage("a phenopacket document is a JSON object", details="phenopacket-not-an-object")
    if "resourceType" in doc:
        raise UnsupportedMessage(f"this is a FHIR {doc.get('resourceType')}, not a phenopacket (convert it from "
                                 "fhir)", details="phenopacket-is-fhir", expression="resourceType")
    kind = kind or kind_of(doc) or "Phenopacket"
    message = KINDS[kind]()
    try:
        json_format.ParseDict(doc, message)
    except (json_format.ParseError, TypeError, ValueError, OverflowError, RecursionError) as e:
        path, reason = locate(doc, message.DESCRIPTOR, "")
        raise ParseError(f"{kind}{path}: {reason or _short(e)}", details="phenopacket-schema",
                         expression=f"{kind}{path}" if path else kind) from None
    return Document(kind, canonical(message))


def canonical(message: Message) -> dict[str, Any]:
    """The canonical protobuf JSON of a message: lowerCamelCase names, default values left out."""
    return json_format.MessageToDict(message)


def check(doc: dict[str, Any], kind: str = "Phenopacket") -> None:
    """Raise ParseError when `doc` is not a valid `kind` by the official schema (for what a writer produced)."""
    read(doc, kind)


def _short(e: Exception) -> str:
    text = str(e).split("\n")[0]
    text = text.split(": ")[-1].rstrip(".") if ": " in text else text
    # protobuf's own reading of a Timestamp's fraction ("10.1e551810Z" → float infinity) overflows
    return f"a value out of range ({text})" if isinstance(e, OverflowError) else text


def _field(desc: Descriptor, key: str) -> FieldDescriptor | None:
    return next((f for f in desc.fields if key in (f.json_name, f.name)), None)


def _parses(desc: Descriptor, key: str, value: Any) -> str | None:
    """None when {key: value} parses as a `desc` message, else why not."""
    try:
        json_format.ParseDict({key: value}, _class(desc)())
        return None
    except (json_format.ParseError, TypeError, ValueError, OverflowError, RecursionError) as e:
        return _short(e)


def _class(desc: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(desc)


def locate(value: Any, desc: Descriptor, path: str) -> tuple[str, str | None]:
    """The JSON path (from the message) of the first value protobuf refuses, and why: an unknown field, or a
    value of the wrong type, found by parsing the parts one by one."""
    if not isinstance(value, dict):
        return path, f"expected a JSON object for {desc.name}, got {type(value).__name__}"
    for key, item in value.items():
        f = _field(desc, key)
        here = f"{path}.{key}"
        if f is None:
            return here, f"{desc.name} has no field {key!r}"
        reason = _parses(desc, key, item)
        if reason is None:
            continue
        nested = (f.type == FieldDescriptor.TYPE_MESSAGE and not f.message_type.GetOptions().map_entry
                  and not f.message_type.full_name.startswith("google.protobuf."))
        if not nested:
            return here, reason
        if _repeated(f):
            if not isinstance(item, list):
                return here, f"expected a JSON array, got {type(item).__name__}"
            for i, element in enumerate(item):
                if _parses(desc, key, [element]) is not None:
                    return locate(element, f.message_type, f"{here}[{i}]")
            return here, reason
        return locate(item, f.message_type, here)
    return path, None


def _repeated(f: FieldDescriptor) -> bool:
    flag = getattr(f, "is_repeated", None)  # protobuf 6 (label is deprecated there)
    return bool(flag) if flag is not None else f.label == FieldDescriptor.LABEL_REPEATED
