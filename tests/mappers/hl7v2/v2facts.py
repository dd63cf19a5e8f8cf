"""Reads back, from an ORU^R01 written from FHIR, what its OBX rows say: OBX-4 groups and their variables."""

from __future__ import annotations

from collections import defaultdict

from mappers.hl7v2 import parse_message
from mappers.hl7v2.model import Message


def message(data: bytes) -> Message:
    msg = parse_message(data)
    assert msg.message_type == "ORU^R01" and msg.version == "2.5.1"
    return msg


Group = dict[str, list[str]]


def groups(msg: Message) -> dict[str, Group]:
    """OBX-4 sub-ID → OBX-3 code → OBX-5.1 of each row (the code of a CWE, the number, the string), in row order."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for obx in msg.all("OBX"):
        out[obx.get(4)][obx.get(3)].append(obx.get(5))
    return {k: dict(v) for k, v in out.items()}


def variant_groups(msg: Message) -> dict[str, Group]:
    """The LRI variant groups (2a, 2b, …); dotted sub-groups (2i.1: an implication of 2i) are not among them."""
    return {k: v for k, v in groups(msg).items() if k.startswith("2") and "." not in k}


def gene_symbols(msg: Message, sub: str) -> list[str]:
    """OBX-5.2 (the display: the gene symbol) of the 48018-6 rows of group `sub`."""
    return [o.get(5, 2) for o in msg.all("OBX") if o.get(4) == sub and o.get(3) == "48018-6"]
