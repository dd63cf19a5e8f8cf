"""Serialising a Converter as it runs: NDJSON lines or a Bundle, written piece by piece (never whole in memory).

The DiagnosticReport comes last, its `result` list streamed from the ids the Converter kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

import orjson

from mappers.toolkit.bundle import bundle, entry

if TYPE_CHECKING:
    from mappers.vcf.to_fhir import Converter


def _report_json(report: dict[str, Any], conv: Converter) -> Iterator[bytes]:
    """The DiagnosticReport `report` as JSON, its `result` streamed in pieces."""
    head = orjson.dumps(report)
    refs = conv.result_refs()
    first = next(refs, None)
    if first is None:
        yield head
        return
    yield head[:-1] + b',"result":[' + orjson.dumps(first)
    batch: list[bytes] = []
    for r in refs:
        batch.append(orjson.dumps(r))
        if len(batch) == 4096:
            yield b"," + b",".join(batch)
            batch = []
    if batch:
        yield b"," + b",".join(batch)
    yield b"]}"


def ndjson(conv: Converter) -> Iterator[bytes]:
    """NDJSON (one resource per line, references 'Type/id'); the DiagnosticReport is the last line."""
    for res in chain(conv.resources(), conv.closing()):
        yield orjson.dumps(res) + b"\n"
    yield from _report_json(conv.report(), conv)
    yield b"\n"


def bundle_json(conv: Converter) -> Iterator[bytes]:
    """A Bundle, written as it is produced (no whole-Bundle object in memory). The Bundle and its entries follow
    the one policy of mappers.toolkit.bundle (id, no timestamp without a source instant, conditional creates)."""
    transaction = conv.options.bundle_type == "transaction"
    head = bundle([], conv.options.bundle_type, (conv.ctx.key,))
    del head["entry"]
    yield orjson.dumps(head)[:-1] + b',"entry":['
    sep = b""
    for res in chain(conv.resources(), conv.closing()):
        yield sep + orjson.dumps(entry(res, transaction))
        sep = b","
    report_entry = entry(conv.report(), transaction)
    entry_json = orjson.dumps(report_entry)
    marker = b'"resource":'
    cut = entry_json.index(marker) + len(marker)
    # The report (with its streamed result list) goes where its result-less copy would.
    res_json = orjson.dumps(report_entry["resource"])
    yield sep + entry_json[:cut]
    yield from _report_json(report_entry["resource"], conv)
    yield entry_json[cut + len(res_json):]
    yield b"]}"
