"""The kit's model: a suite holds groups, a group holds tests; a run gives each test a result.

Suites are data (conformance/suites/*.json, read by `conformance.suites`); each test names the requirement it
checks, with a link to where that requirement is written, and the registered check (code) that checks it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

PASS, FAIL, SKIP, ERROR = "pass", "fail", "skip", "error"
STATUSES = (PASS, FAIL, SKIP, ERROR)
# What a requirement is: a profile constraint, an IG rule (guidance text), a REST behaviour of the FHIR spec,
# or a conversion rule (a fact the source states that the output must carry).
REQUIREMENT_KINDS = ("profile", "ig-rule", "rest", "conversion")


@dataclass(frozen=True, slots=True)
class Requirement:
    kind: str
    text: str  # the requirement, in the words of its source where possible
    source: str  # a URL: IG page or StructureDefinition, FHIR spec section


@dataclass(frozen=True, slots=True)
class TestSpec:
    """One test of a suite: what it checks (requirement), how (check name + params), and what it needs."""

    __test__: ClassVar[bool] = False  # not a pytest class

    id: str
    title: str
    check: str
    requirement: Requirement
    required: bool = True
    needs: tuple[str, ...] = ()  # ids of tests that must pass first (they create what this one reads)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    title: str
    description: str
    tests: tuple[TestSpec, ...]


@dataclass(frozen=True, slots=True)
class Suite:
    id: str
    title: str
    version: str
    description: str
    groups: tuple[Group, ...]

    def tests(self) -> Iterator[tuple[Group, TestSpec]]:
        for group in self.groups:
            for test in group.tests:
                yield group, test


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request and its response as the report shows them: secrets redacted, bodies cut to a limit."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    request_size: int
    status: int | None = None
    reason: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str | None = None
    response_size: int = 0
    truncated: bool = False  # a body was cut for the report (or the read cap stopped the download)
    elapsed_ms: float = 0.0
    error: str | None = None  # transport failure (timeout, TLS, connection), when there was no response

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": {"method": self.method, "url": self.url, "headers": self.request_headers,
                        "body": self.request_body, "size": self.request_size},
            "response": None if self.status is None else {
                "status": self.status, "reason": self.reason, "headers": self.response_headers,
                "body": self.response_body, "size": self.response_size},
            "truncated": self.truncated,
            "elapsedMs": round(self.elapsed_ms, 1),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class TestResult:
    __test__: ClassVar[bool] = False

    group: Group
    test: TestSpec
    status: str
    message: str
    duration_ms: float
    exchanges: tuple[Exchange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        t = self.test
        return {
            "id": t.id, "title": t.title, "group": self.group.id, "check": t.check, "required": t.required,
            "requirement": {"kind": t.requirement.kind, "text": t.requirement.text, "source": t.requirement.source},
            "status": self.status, "message": self.message, "durationMs": round(self.duration_ms, 1),
            "exchanges": [x.to_dict() for x in self.exchanges],
        }


@dataclass(frozen=True, slots=True)
class RunReport:
    suite: Suite
    target: str
    started: datetime
    finished: datetime
    results: tuple[TestResult, ...]
    kit_version: str

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}

    @property
    def required_not_passed(self) -> tuple[TestResult, ...]:
        """Required tests that did not pass, skipped ones included: any of them fails the run."""
        return tuple(r for r in self.results if r.test.required and r.status != PASS)

    @property
    def passed(self) -> bool:
        return not self.required_not_passed

    @property
    def duration_s(self) -> float:
        return (self.finished - self.started).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        s = self.suite
        return {
            "kit": {"name": "helixgate-conformance", "version": self.kit_version},
            "suite": {"id": s.id, "title": s.title, "version": s.version, "description": s.description},
            "target": self.target,
            "started": self.started.isoformat(), "finished": self.finished.isoformat(),
            "durationS": round(self.duration_s, 3),
            "summary": {**self.counts(), "total": len(self.results), "passed": self.passed,
                        "requiredNotPassed": [r.test.id for r in self.required_not_passed]},
            "groups": [{"id": g.id, "title": g.title, "description": g.description,
                        "tests": [r.to_dict() for r in self.results if r.group is g]} for g in s.groups],
        }
