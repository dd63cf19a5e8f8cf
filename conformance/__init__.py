"""The conformance kit: suites (data) of tests (each naming the requirement it checks and its source), run
against a vendor's FHIR server or converter, with JSON, JUnit XML and HTML reports.

    suite = load_suite("genomics-server")
    report = run_suite(suite, "https://fhir.example.org/r4", RunOptions(headers={"Authorization": "Bearer …"}))
    write_reports(report, ["json", "junit", "html"], Path("out"))
"""

__version__ = "0.1.0"

from conformance.context import Context
from conformance.exceptions import CheckFailed, CheckSkipped, ConformanceError, SuiteError, TargetError
from conformance.model import (
    ERROR,
    FAIL,
    PASS,
    SKIP,
    STATUSES,
    Exchange,
    Group,
    Requirement,
    RunReport,
    Suite,
    TestResult,
    TestSpec,
)
from conformance.registry import CHECKS, check
from conformance.reports import WRITERS, write_reports
from conformance.runner import RunOptions, run_suite
from conformance.suites import available_formats, load_suite, suite_names

__all__ = [
    "CHECKS",
    "ERROR",
    "FAIL",
    "PASS",
    "SKIP",
    "STATUSES",
    "WRITERS",
    "CheckFailed",
    "CheckSkipped",
    "ConformanceError",
    "Context",
    "Exchange",
    "Group",
    "Requirement",
    "RunOptions",
    "RunReport",
    "Suite",
    "SuiteError",
    "TargetError",
    "TestResult",
    "TestSpec",
    "available_formats",
    "check",
    "load_suite",
    "run_suite",
    "suite_names",
    "write_reports",
]
