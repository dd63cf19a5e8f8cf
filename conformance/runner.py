"""Running a suite against a target: each test in order, its outcome and HTTP exchanges recorded."""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from conformance.client import Target, redact_url
from conformance.context import Context, RunState
from conformance.exceptions import CheckFailed, CheckSkipped, ConformanceError
from conformance.model import ERROR, FAIL, PASS, SKIP, Group, RunReport, Suite, TestResult, TestSpec
from conformance.registry import CHECKS

Progress = Callable[[int, int, TestResult], None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    headers: Mapping[str, str] = field(default_factory=dict)  # sent on every request (e.g. Authorization)
    timeout: float = 30.0  # seconds per request, connect to last byte
    max_body: int = 32 << 20  # bytes read from one response before the test becomes an error
    report_body_limit: int = 16 << 10  # bytes of each body kept in the report
    verify_tls: bool = True


def run_suite(suite: Suite, target_url: str, options: RunOptions | None = None, *,
              progress: Progress | None = None) -> RunReport:
    """Run every test of `suite` against the FHIR base `target_url`. Never raises for what the target does:
    each problem becomes that test's `fail` or `error`, and the run goes on."""
    from conformance import __version__

    options = options or RunOptions()
    target = Target(target_url, headers=options.headers, timeout=options.timeout, max_body=options.max_body,
                    report_body_limit=options.report_body_limit, verify_tls=options.verify_tls)
    state = RunState(run_id=uuid.uuid4().hex[:12])
    started = datetime.now(UTC)
    results: list[TestResult] = []
    status_of: dict[str, str] = {}
    total = sum(len(g.tests) for g in suite.groups)
    try:
        for group, test in suite.tests():
            result = _run_one(group, test, target, state, status_of)
            status_of[test.id] = result.status
            results.append(result)
            if progress:
                progress(len(results), total, result)
    finally:
        target.close()
    return RunReport(suite, redact_url(target.base), started, datetime.now(UTC), tuple(results), __version__)


def _run_one(group: Group, test: TestSpec, target: Target, state: RunState, status_of: dict[str, str]) -> TestResult:
    target.exchanges = []
    started = time.perf_counter()
    blocked = [n for n in test.needs if status_of.get(n) != PASS]
    if blocked:
        status = SKIP
        message = "needs " + ", ".join(f"{n} ({status_of.get(n, 'not run')})" for n in blocked) + \
                  ", which did not pass"
    else:
        try:
            message = CHECKS[test.check](Context(target, test, state)) or "ok"
            status = PASS
        except CheckFailed as e:
            status, message = FAIL, str(e)
        except CheckSkipped as e:
            status, message = SKIP, str(e)
        except ConformanceError as e:
            status, message = ERROR, str(e)
        except Exception as e:  # a bug in a check must cost one test, not the run; say where it happened
            frame = traceback.extract_tb(e.__traceback__)[-1]
            status = ERROR
            message = (f"the check raised {type(e).__name__}: {e} (at {Path(frame.filename).name}:{frame.lineno}); "
                       "this is a kit bug, please report it")
    return TestResult(group, test, status, message, (time.perf_counter() - started) * 1000,
                      tuple(target.exchanges))

