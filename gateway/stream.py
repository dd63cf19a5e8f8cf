"""Conversions answered as streamed NDJSON (`Accept: application/fhir+ndjson`), for formats that can stream
(Format.ndjson). Each resource is validated as it passes; a failure mid-stream ends the body with an
OperationOutcome line and the trailer-less stream is cut short, so the client sees it was not a success."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.convert import InvalidOutput
from gateway.formats import FHIR_NDJSON, HUB
from gateway.formats import Request as ConvertRequest
from gateway.validate import app_validator
from mappers.exceptions import Issue, MappingError, operation_outcome
from mappers.toolkit.registry import get

log = logging.getLogger("helixgate.http")
_CHUNK = 1 << 16  # one thread hop per ~64 KiB, not per resource


def wants(request: Request, source: str, target: str) -> bool:
    return target == HUB and FHIR_NDJSON in request.headers.get("accept", "") and get(source).ndjson is not None


async def response(body: bytes, req: ConvertRequest, request: Request) -> Response:
    """Streams the conversion; input the mapper refuses is a 4xx OperationOutcome before the first byte."""
    make = get(req.source).ndjson
    assert make is not None
    validator = await app_validator(request)
    pieces = make(body, req.options)
    first = await run_in_threadpool(next, pieces, b"")  # the mapper checks the input before its first piece
    budget = request.app.state.settings.http_timeout_ms / 1000
    lines = validated_lines(first, pieces, validator, req, deadline=time.monotonic() + budget)
    return StreamingResponse(iterate_in_threadpool(lines), media_type=FHIR_NDJSON, headers={"X-Cache": "bypass"})


def validated_lines(first: bytes, pieces: Iterator[bytes], validator: Any, req: ConvertRequest, *,
                    raise_errors: bool = False, deadline: float | None = None) -> Iterator[bytes]:
    """NDJSON text → chunks of whole lines, each resource validated. An error ends the stream with an
    OperationOutcome line (or, with `raise_errors`, raises after writing the lines before it); so does running
    past `deadline` (time.monotonic(); the request's budget: a stream is bounded in memory, not in time)."""
    out: list[bytes] = []
    size = count = 0
    partial: list[bytes] = []  # the pieces of a line not yet ended (a report's long result list comes in many)
    try:
        for piece in _chain(first, pieces):
            if deadline is not None and time.monotonic() > deadline:
                raise MappingError(f"the conversion ran past its budget of the request's time "
                                   f"(HELIXGATE_HTTP_TIMEOUT_MS) after {count} resources; it was stopped",
                                   details="over-time-budget", code="too-costly")
            if b"\n" not in piece:
                partial.append(piece)
                continue
            head, *lines = piece.split(b"\n")
            lines = [b"".join((*partial, head)), *lines]
            partial = [lines.pop()]
            for line in lines:
                if line.strip():
                    count += 1
                    _check(line, validator, req, count)
                    out.append(line + b"\n")
                    size += len(line) + 1
            if size >= _CHUNK:
                yield b"".join(out)
                out, size = [], 0
        tail = b"".join(partial)
        if tail.strip():
            _check(tail, validator, req, count + 1)
            out.append(tail + b"\n")
        yield b"".join(out)
    except MappingError as e:  # ends the stream with why; the client sees no closing success
        if raise_errors:
            yield b"".join(out)
            raise
        log.info("convert %s->ndjson stopped after %d resources: %s", req.source, count, e.issues[0].details)
        yield b"".join(out) + orjson.dumps(operation_outcome(e.issues)) + b"\n"


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _check(line: bytes, validator: Any, req: ConvertRequest, number: int) -> None:
    if validator is None or req.allow_invalid:
        return
    outcome = validator.outcome(orjson.loads(line), ())
    errors = [Issue("error", i.get("code") or "invalid", "invalid-output",
                    f"line {number}: {(i.get('expression') or [''])[0]}: {(i.get('details') or {}).get('text', '')}")
              for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]
    if errors:
        raise InvalidOutput(errors[:20], len(errors))
