"""helixgate conformance: run the conformance kit's suites against a FHIR server or converter, and list them."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from conformance import (
    WRITERS,
    RunOptions,
    SuiteError,
    TestResult,
    load_suite,
    run_suite,
    suite_names,
    write_reports,
)
from conformance.client import redact_url
from gateway.cli import status

SUMMARY = "run conformance suites against a FHIR server or converter (JSON, JUnit and HTML reports)"
NOT_CONFORMANT = 1  # a required test did not pass


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("conformance", help=SUMMARY, description=SUMMARY)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    run = verbs.add_parser("run", help="run a suite against a target", description=(
        "Run a suite against the FHIR base URL TARGET. Progress goes to stderr, the paths of the reports written to "
        "stdout. Exit code 0 when every required test passed, 1 when one did not, 2 for a usage error."))
    run.add_argument("--suite", required=True, metavar="NAME", help=f"one of {', '.join(suite_names())}, or a .json")
    run.add_argument("--target", required=True, metavar="URL", help="FHIR base URL, e.g. http://127.0.0.1:8080/fhir")
    run.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                     help="sent with every request (repeatable); Authorization is redacted in the reports")
    run.add_argument("--report", action="append", default=[], choices=sorted(WRITERS),
                     help="report format to write (repeatable)")
    run.add_argument("--out", type=Path, default=Path("conformance-report"), metavar="DIR",
                     help="where reports go (default ./conformance-report)")
    run.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default 30)")
    run.add_argument("--max-body", type=int, default=32 << 20, metavar="BYTES",
                     help="response bytes read before the test is an error (default 32 MiB)")
    run.add_argument("--inputs", action="append", type=Path, default=[], metavar="DIR",
                     help="where the converter suite finds reference inputs (default: cwd, then the kit's checkout)")
    run.add_argument("--insecure", action="store_true", help="do not verify the target's TLS certificate")
    run.add_argument("-q", "--quiet", action="store_true", help="progress lines for tests that did not pass only")
    run.set_defaults(run=run_command)
    ls = verbs.add_parser("list", help="list the suites", description="List the suites the kit has.")
    ls.add_argument("--tests", action="store_true", help="also list every test, its requirement and source")
    ls.set_defaults(run=list_command)
    p.set_defaults(run=lambda args: (p.print_help(sys.stderr), status.USAGE)[1])


def _headers(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header {value!r} must look like 'Name: value'")
        out[name.strip()] = rest.strip()
    return out


def _progress(quiet: bool) -> Callable[[int, int, TestResult], None]:
    def show(n: int, total: int, r: TestResult) -> None:
        if quiet and r.status == "pass":
            return
        optional = "" if r.test.required else " (optional)"
        line = f"[{n:>{len(str(total))}}/{total}] {r.status.upper():<5} {r.group.id}/{r.test.id}{optional}"
        print(f"{line}  {r.duration_ms:.0f} ms", file=sys.stderr)
        if r.status != "pass":
            print(textwrap.indent(textwrap.fill(r.message, 116), "      "), file=sys.stderr)

    return show


def run_command(args: argparse.Namespace) -> int:
    try:
        headers = _headers(args.header)
        suite = load_suite(args.suite, inputs=args.inputs)
    except (ValueError, SuiteError) as e:
        print(f"helixgate: {e}", file=sys.stderr)
        return status.USAGE
    if not args.target.startswith(("http://", "https://")):
        print(f"helixgate: --target {args.target!r} must be an http:// or https:// URL", file=sys.stderr)
        return status.USAGE
    total = sum(len(g.tests) for g in suite.groups)
    print(f"{suite.title} ({suite.id} {suite.version}): {total} tests against {redact_url(args.target)}",
          file=sys.stderr)
    options = RunOptions(headers=headers, timeout=args.timeout, max_body=args.max_body, verify_tls=not args.insecure)
    report = run_suite(suite, args.target, options, progress=_progress(args.quiet))
    counts = report.counts()
    verdict = "PASSED" if report.passed else f"FAILED: {len(report.required_not_passed)} required test(s) did not pass"
    print(f"{suite.id}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" in {report.duration_s:.1f} s — "
          + verdict, file=sys.stderr)
    try:
        for path in write_reports(report, args.report, args.out):
            print(path)
    except OSError as e:
        print(f"helixgate: cannot write the reports to {args.out}: {e.strerror}", file=sys.stderr)
        return status.USAGE
    return status.OK if report.passed else NOT_CONFORMANT


def list_command(args: argparse.Namespace) -> int:
    for name in suite_names():
        try:
            suite = load_suite(name)
        except SuiteError as e:
            print(f"helixgate: {e}", file=sys.stderr)
            return status.USAGE
        tests = [t for _, t in suite.tests()]
        required = sum(1 for t in tests if t.required)
        print(f"{suite.id:<16} {suite.version:<7} {len(suite.groups)} groups, {len(tests)} tests "
              f"({required} required)  {suite.title}")
        print(textwrap.indent(textwrap.fill(suite.description, 100), "    "))
        if args.tests:
            for group, t in suite.tests():
                flag = "" if t.required else " (optional)"
                print(f"    {group.id}/{t.id}{flag}: {t.title}\n        {t.requirement.kind}: {t.requirement.source}")
    return status.OK
