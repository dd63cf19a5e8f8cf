"""Serialising a Converter as it runs: NDJSON lines or a Bundle, written piece by piece (never whole in memory).

The DiagnosticReport comes last, its `result` list streamed from the ids the Converter kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

import orjson

from mappers.ids import resource_id

if TYPE_CHECKING:
    from mappers.vcf.to_fhir import Converter


def _report_json(conv: Converter) -> Iterator[bytes]:
    """The DiagnosticReport as JSON, `result` streamed in pieces."""
    head = orjson.dumps(conv.report())
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
    yield from _report_json(conv)
    yield b"\n"


def bundle_json(conv: Converter) -> Iterator[bytes]:
    """A Bundle, written as it is produced (no whole-Bundle object in memory)."""
    transaction = conv.options.bundle_type == "transaction"
    head: dict[str, Any] = {"resourceType": "Bundle", "id": resource_id("Bundle", conv.ctx.key,
                                                                          conv.options.bundle_type),
                            "type": conv.options.bundle_type}
    if conv.options.received:
        head["timestamp"] = conv.options.received.isoformat(timespec="seconds")
    yield orjson.dumps(head)[:-1] + b',"entry":['
    sep = b""
    for res in chain(conv.resources(), conv.closing()):
        yield sep + orjson.dumps(_entry(res, transaction))
        sep = b","
    report = conv.report()
    entry = _entry(report, transaction)
    entry_json = orjson.dumps(entry)
    marker = b'"resource":'
    cut = entry_json.index(marker) + len(marker)
    # The report (with its streamed result list) goes where the placeholder resource would.
    res_json = orjson.dumps(entry["resource"])
    yield sep + entry_json[:cut]
    yield from _report_json(conv)
    yield entry_json[cut + len(res_json):]
    yield b"]}"


def _entry(res: dict[str, Any], transaction: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{res['id']}", "resource": res}
    if transaction:
        req = {"method": "POST", "url": res["resourceType"]}
        ident = next((i for i in res.get("identifier", []) if i.get("system") and i.get("value")), None)
        if ident and res["resourceType"] == "Patient":
            req["ifNoneExist"] = f"identifier={ident['system']}|{ident['value']}"
        entry["request"] = req
    return entry
