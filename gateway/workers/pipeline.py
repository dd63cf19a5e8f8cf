"""What a worker does with one inbound message: convert (HL7 v2 → FHIR transaction Bundle), add the delivery
Provenance, validate, deliver to the upstream.

    Failure                  base
    ├── Permanent            the same input will fail again: dead-letter it now
    └── Transient            the upstream (or Redis) is away: leave the entry pending, it is retried
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.audit import delivery_provenance, with_provenance
from gateway.cache import Cache
from gateway.convert import InvalidOutput, convert
from gateway.formats import HUB, Request
from gateway.upstream import Delivered, Upstream, UpstreamRejected, UpstreamUnavailable, deliver
from mappers.exceptions import MappingError, operation_outcome
from mappers.toolkit.registry import ConvertOptions, registry


class Failure(Exception):
    """Base class: the message was not delivered; `reason` is a kebab-case code, `detail` an OperationOutcome
    or a message (never message content)."""

    def __init__(self, reason: str, detail: dict[str, Any] | str) -> None:
        super().__init__(reason if isinstance(detail, dict) else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Permanent(Failure):
    """Raised when retrying cannot help: unparseable or unconvertible input, validation errors, a 4xx upstream."""


class Transient(Failure):
    """Raised when the upstream is unavailable (after its own retries) or the circuit breaker is open."""


@dataclass(frozen=True, slots=True)
class Message:
    """An inbound stream entry's fields."""

    data: bytes
    source: str
    received: datetime
    facility: str
    control: str

    @property
    def message_id(self) -> str:
        return f"{self.facility}|{self.control}" if self.facility else self.control

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Message:
        def get(name: str) -> str:
            return fields.get(name.encode(), b"").decode("utf-8", "replace")

        try:
            received = datetime.fromisoformat(get("received"))
        except ValueError:
            received = datetime.now(UTC)
        return cls(fields.get(b"data", b""), get("source") or "hl7v2", received, get("facility"), get("control"))


class Pipeline:
    """Convert, validate and deliver; `validator` None skips validation."""

    def __init__(self, upstream: Upstream, cache: Cache, validator: Any = None, timezone: str | None = None) -> None:
        self.upstream = upstream
        self.cache = cache
        self.validator = validator
        self.timezone = timezone

    async def bundle(self, msg: Message) -> dict[str, Any]:
        """The transaction Bundle to deliver, with the delivery Provenance. Raises Permanent."""
        fmt = registry().get(msg.source)
        if fmt is None or fmt.to_fhir is None:
            raise Permanent("unsupported-source", f"no conversion from {msg.source!r} to FHIR")
        # The conversion validates its output (when this worker validates): errors are a permanent failure.
        req = Request(fmt.name, HUB, ConvertOptions("transaction", self.timezone), allow_invalid=self.validator is None)
        try:
            result, _ = await convert(msg.data, req, self.cache, self.validator, offload=len(msg.data) > 64 * 1024)
        except InvalidOutput as e:
            raise Permanent("invalid", operation_outcome(e.issues)) from None
        except MappingError as e:
            raise Permanent("conversion-failed", operation_outcome(e.issues)) from None
        bundle = orjson.loads(result.body)
        recorded = msg.received.astimezone(UTC).isoformat(timespec="milliseconds")
        prov = delivery_provenance(bundle, source_format=msg.source, message_id=msg.message_id,
                                   mapper_version=fmt.version, recorded=recorded)
        return with_provenance(bundle, prov)

    async def run(self, msg: Message) -> Delivered:
        bundle = await self.bundle(msg)
        try:
            return await deliver(self.upstream, bundle)
        except UpstreamRejected as e:
            raise Permanent("upstream-rejected", e.outcome or str(e)) from None
        except UpstreamUnavailable as e:
            raise Transient("upstream-unavailable", str(e)) from None
        except ValueError as e:  # a Bundle that cannot be split for the upstream's transaction limit
            raise Permanent("undeliverable", str(e)) from None
