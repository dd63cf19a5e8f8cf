"""Conversion options and the issue list a China conversion collects."""

from __future__ import annotations

from dataclasses import dataclass, field

from mappers.exceptions import Issue

CHINA_TZ = "+08:00"  # China has a single time zone; WS/T 500 times are written without one


@dataclass(frozen=True, slots=True)
class Options:
    """What the caller decides; mappers read nothing else.

    bundle_type: 'collection' or 'transaction'.
    timezone: zone assumed for source times without one (default +08:00, China Standard Time).
    recorded: a FHIR instant the caller states for Provenance.recorded when the source has no time of its own
        (a WS 445 dataset carries a report date only); mappers read no clock.
    max_bytes: the largest document accepted.
    """

    bundle_type: str = "collection"
    timezone: str = CHINA_TZ
    recorded: str | None = None
    max_bytes: int = 5 * 1024 * 1024


@dataclass(slots=True)
class Notes:
    """The conversion report being collected; the same finding reached twice (e.g. a time read for two elements) is
    listed once."""

    issues: list[Issue] = field(default_factory=list)
    _seen: set[Issue] = field(default_factory=set)

    def add(self, issue: Issue) -> None:
        if issue not in self._seen:
            self._seen.add(issue)
            self.issues.append(issue)

    def warn(self, details: str, message: str, where: str | None = None, code: str = "value") -> None:
        self.add(Issue("warning", code, details, message, where))

    def inform(self, details: str, message: str, where: str | None = None, code: str = "informational") -> None:
        self.add(Issue("information", code, details, message, where))
