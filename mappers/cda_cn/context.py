"""Conversion options and the issue list a China conversion collects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mappers.exceptions import Issue

CHINA_TZ = "+08:00"  # China has a single time zone; WS/T 500 times are written without one


@dataclass(frozen=True, slots=True)
class Options:
    """What the caller decides; mappers read nothing else.

    bundle_type: 'collection' or 'transaction'.
    timezone: zone assumed for source times without one (default +08:00, China Standard Time).
    received: when the edge received the input (Bundle.timestamp, Provenance.recorded).
    max_bytes: the largest document accepted.
    """

    bundle_type: str = "collection"
    timezone: str = CHINA_TZ
    received: datetime | None = None
    max_bytes: int = 5 * 1024 * 1024


@dataclass(slots=True)
class Notes:
    issues: list[Issue] = field(default_factory=list)

    def warn(self, details: str, message: str, where: str | None = None, code: str = "value") -> None:
        self.issues.append(Issue("warning", code, details, message, where))

    def inform(self, details: str, message: str, where: str | None = None, code: str = "informational") -> None:
        self.issues.append(Issue("information", code, details, message, where))
