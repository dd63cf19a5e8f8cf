"""The validation service shared by `POST /fhir/$validate` and `helixgate validate`: read the resource,
consult the cache, validate."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from gateway import metrics
from gateway.cache import Cache, cache_key
from mappers.exceptions import ParseError
from profiles.validator import Validator

VALIDATION_PREFIX = "helixgate:val:"
_loading = asyncio.Lock()


async def app_validator(request: Request) -> Validator:
    """The app's validator, built on first use (indexing the packages takes a second or two), once per app.

    Raises PackageError (naming the install command) when the default packages are not installed.
    """
    from profiles.context import default_validator

    state = request.app.state
    if getattr(state, "validator", None) is None:
        async with _loading:
            if getattr(state, "validator", None) is None:
                state.validator = await run_in_threadpool(default_validator)
    return state.validator


@dataclass(frozen=True, slots=True)
class Validated:
    outcome: dict[str, Any]
    errors: int
    cached: bool


def read_resource(data: bytes, media_type: str = "") -> dict[str, Any]:
    """FHIR JSON or XML → a resource dict. Raises ParseError saying what is wrong and where."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if "xml" in media_type or head == b"<":
        from profiles.xml import XmlError, xml_to_json

        try:
            return xml_to_json(data, None)
        except XmlError as e:
            raise ParseError(f"the XML cannot be read: {e}", details="bad-xml") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ParseError(f"the JSON cannot be read: {e}", details="bad-json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise ParseError("expected a FHIR resource: a JSON object with a resourceType", details="not-a-resource")
    return doc


async def validate(resource: dict[str, Any], profiles: tuple[str, ...], validator: Validator | None, cache: Cache,
                   *, offload: bool = True, runner: Callable[[tuple[Any, ...]], Awaitable[Any]] | None = None,
                   fingerprint: str | None = None) -> Validated:
    """Validate (or fetch the cached outcome for) `resource` against its claims and `profiles`.

    The key hashes the canonical JSON, the requested profiles and the definitions' fingerprint, so a new
    package set never serves an old verdict. With `runner` (gateway.sandbox.run_job) the validation runs as the
    job ("validate-resource", resource, profiles) and `fingerprint` names the definitions (None: not cached).
    """
    if runner is None:
        assert validator is not None
        fingerprint = validator.defs.fingerprint
    try:
        canonical = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        canonical = None  # deeper than orjson writes (255 levels) or integers beyond 64 bits: validated, not cached
    key = cache_key(canonical, fingerprint, *profiles, prefix=VALIDATION_PREFIX) if canonical and fingerprint else None
    hit = await cache.get(key) if key else None
    if hit is not None:
        outcome = orjson.loads(hit)
        metrics.issues("validate", outcome)
        return Validated(outcome, _errors(outcome), True)
    if runner is not None:
        outcome = await runner(("validate-resource", resource, profiles))
    elif offload:
        outcome = await run_in_threadpool(validator.outcome, resource, profiles)  # type: ignore[union-attr]
    else:
        outcome = validator.outcome(resource, profiles)  # type: ignore[union-attr]
    metrics.issues("validate", outcome)
    if key:
        await cache.set(key, orjson.dumps(outcome))
    return Validated(outcome, _errors(outcome), False)


def _errors(outcome: dict[str, Any]) -> int:
    return sum(1 for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal"))
