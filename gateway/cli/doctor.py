"""helixgate doctor: check a deployment (settings, FHIR packages, Redis persistence, upstream, auth, TLS, clock)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from gateway.cli import status

SUMMARY = "check a deployment (packages, Redis persistence, upstream, auth, TLS, clock) and say what to fix"
MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help=SUMMARY, description=SUMMARY + ". Reads the same settings as `helixgate serve` "
                       "(environment, --config file); changes nothing. Exit 1 when a check fails.")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or JSON lines")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gateway.doctor import diagnose

    findings = asyncio.run(diagnose())
    for f in findings:
        if args.format == "json":
            sys.stdout.write(orjson.dumps(f.as_dict()).decode() + "\n")
        else:
            print(f"{MARK[f.status]} {f.check}: {f.detail}" + (f"\n     fix: {f.fix}" if f.fix else ""))
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    print(f"{failed} failed, {warned} warning(s), {len(findings) - failed - warned} ok", file=sys.stderr)
    return status.INPUT_REJECTED if failed else status.OK
