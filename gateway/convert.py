"""The conversion service shared by the HTTP route, the CLI, workers and bulk jobs: consult the cache, convert
through the format registry, validate the output, cache. Data flows one way: mapper → validator → cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from gateway import metrics
from gateway.cache import Cache, cache_key
from gateway.formats import HUB, Converted, Request
from mappers.conversion import Conversion
from mappers.exceptions import Issue, MappingError, operation_outcome
from mappers.toolkit.origins import readable, source_of
from mappers.toolkit.registry import get

MAX_REPORTED_ERRORS = 50  # of an invalid output; the rest are counted


class InvalidOutput(MappingError):
    """Raised when a conversion's output fails validation (HTTP 422, CLI exit 1); each issue names the output
    element and, where the mapper recorded it, the source field that produced it."""

    def __init__(self, errors: list[Issue], total: int) -> None:
        more = f" (the first {len(errors)} are listed)" if total > len(errors) else ""
        super().__init__(f"the converted output has {total} validation error(s){more}; nothing was returned "
                         "(pass allow-invalid to get it with its errors)", details="invalid-output",
                         code="processing", issues=errors)


# A key part of conversions made after the caller split the input and found one document (gateway.routes): a
# lookup made before that split cannot find what another caller converted whole (a phenopacket Cohort as one
# Bundle, where $convert answers a Bundle per member).
ONE_DOCUMENT = "one-document"


async def conversion_key(data: bytes, request: Request, *extra: str) -> str:
    """The cache key of converting `data` as `request` says (`extra`: more key parts, e.g. ONE_DOCUMENT)."""
    parts = (*request.key_parts(), *extra)
    # hashlib lets go of the interpreter on large inputs: hashed in a thread, tens of MB leave the event loop free
    return await run_in_threadpool(cache_key, data, *parts) if len(data) > 1 << 20 else cache_key(data, *parts)


async def cached(key: str, request: Request, cache: Cache) -> Converted | None:
    """The cached conversion under `key` (counted as a cached conversion), or None."""
    hit = await cache.get(key)
    if hit is None:
        return None
    doc = orjson.loads(hit)
    metrics.conversion(request.source, request.target, "cached")
    return Converted(doc["body"].encode(), doc["media_type"], doc["outcome"])


async def convert(data: bytes, request: Request, cache: Cache, validator: Any = None, *, offload: bool = False,
                  runner: Callable[[tuple[Any, ...]], Awaitable[Converted]] | None = None,
                  key: str | None = None) -> tuple[Converted, bool]:
    """Convert `data` as `request` says; returns the result and whether it came from the cache.

    `validator` (profiles.validator.Validator) checks FHIR output; None means it is not available, which refuses
    the conversion unless the request allows invalid output. `offload` runs the CPU-bound work in a thread;
    `runner` hands it, as the job ("convert", data, request), to a sandbox (gateway.sandbox.run_job) instead.
    `key`: a cache key the caller has already looked up (conversion_key, cached) and missed; the result is cached
    under it.

    Raises the mappers' MappingError subclasses, or InvalidOutput; nothing is cached then.
    """
    if key is None:
        key = await conversion_key(data, request)
        hit = await cached(key, request, cache)
        if hit is not None:
            return hit, True
    try:
        if runner is not None:
            result = await runner(("convert", data, request))
        elif offload:
            result = await run_in_threadpool(run, data, request, validator)
        else:
            result = run(data, request, validator)
    except MappingError as e:  # counted here, in the server: a sandbox process's failure comes back as this
        invalid = isinstance(e, InvalidOutput)
        metrics.conversion(request.source, request.target, "invalid-output" if invalid else "refused",
                           e.outcome() if invalid else None)
        raise
    except BaseException as e:  # the sandbox's Cancelled (the client went away), or a bug
        metrics.conversion(request.source, request.target,
                           "cancelled" if type(e).__name__ == "Cancelled" else "error")
        raise
    metrics.conversion(request.source, request.target, "converted", result.outcome)
    payload = {"media_type": result.media_type, "outcome": result.outcome, "body": result.body.decode()}
    await cache.set(key, orjson.dumps(payload))
    return result, False


def run(data: bytes, request: Request, validator: Any = None) -> Converted:
    """The conversion itself (synchronous): source → FHIR (validated when FHIR is the output) → target."""
    src, tgt = get(request.source), get(request.target)
    assert src.to_fhir is not None and tgt.from_fhir is not None  # resolve() picked them
    conv = src.to_fhir(data, request.options)
    issues = list(conv.issues)
    if tgt.name == HUB:
        issues.extend(check(conv, validator, request.allow_invalid))
        return Converted(orjson.dumps(conv.bundle), tgt.media_type, operation_outcome(issues))
    out = tgt.from_fhir(conv.bundle, request.options)
    issues.extend(out.issues)
    if tgt.check_output:
        problems = tgt.check_output(out.data)
        errors = [p for p in problems if p.severity in ("error", "fatal")]
        if errors and not request.allow_invalid:
            raise InvalidOutput(errors[:MAX_REPORTED_ERRORS], len(errors))
        issues.extend(problems)
    if tgt.fhir_of:
        # FHIR written by another writer (an IPS document, FHIR XML) is validated like the hub's own output
        issues.extend(check(Conversion(tgt.fhir_of(out.data), ()), validator, request.allow_invalid))
    return Converted(out.data, tgt.media_type, operation_outcome(issues))


def check(conv: Conversion, validator: Any, allow_invalid: bool) -> list[Issue]:
    """Validate a converted Bundle: errors refuse it (InvalidOutput) unless `allow_invalid`, when they join the
    report; warnings join the report, one issue per distinct message."""
    if validator is None:
        if not allow_invalid:
            raise MappingError("the output cannot be validated: the FHIR packages are not installed (run "
                               "'helixgate packages install'), or allow unvalidated output", details="no-validator",
                               code="not-supported")
        return [Issue("warning", "informational", "output-not-validated",
                      "the output was not validated: the FHIR packages are not installed")]
    # the validator's issues as they are (validate(), not outcome(): the OperationOutcome was only read back here)
    errors: list[Issue] = []
    warnings: dict[tuple[str, str], int] = {}  # distinct warning → how many times, in the order first met
    where: dict[tuple[str, str], str | None] = {}
    for i in validator.validate(conv.bundle, ()):
        severity = i.severity
        if severity == "error" or severity == "fatal":
            path = i.expression or ""
            text = i.message or ""
            source = source_of(conv.bundle, conv.origins, path)
            origin = f" (from {source})" if source else ""
            errors.append(Issue("error", i.code or "invalid", "invalid-output", f"{readable(path)}{origin}: {text}",
                                source or path or None))
        elif severity == "warning":
            k = (i.code or "informational", i.message or "")
            n = warnings.get(k)
            if n is None:  # located once per distinct message: the first occurrence names it
                warnings[k] = 1
                path = i.expression or ""
                where[k] = source_of(conv.bundle, conv.origins, path) or path or None
            else:
                warnings[k] = n + 1
    if errors and not allow_invalid:
        raise InvalidOutput(errors[:MAX_REPORTED_ERRORS], len(errors))
    notes = [Issue("warning", code, "output-warning", f"{text} ({n} times)" if n > 1 else text, where[(code, text)])
             for (code, text), n in warnings.items()]
    return [*errors, *notes]
