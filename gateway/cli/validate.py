"""helixgate validate: FHIR resources and Bundles against the official packages and the profiles they claim."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson

from gateway.cache import MemoryCache
from gateway.cli import status
from gateway.validate import read_resource, validate
from mappers.exceptions import ParseError
from profiles.context import load, split_igs
from profiles.packages import DEFAULT_PACKAGES, PackageError, install
from profiles.validator import Validator

SUMMARY = "validate FHIR resources against R4 and the profiles they claim (or --profile)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help=SUMMARY, description=SUMMARY)
    p.add_argument("files", nargs="+", metavar="FILE", help="FHIR JSON or XML files (- for stdin)")
    p.add_argument("--profile", action="append", default=[], metavar="URL", help="also validate against this profile")
    p.add_argument("--ig", action="append", default=[], metavar="NAME#VERSION|PATH",
                   help="load a package, or a file/folder of StructureDefinitions, ValueSets and CodeSystems")
    p.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or OperationOutcome")
    p.add_argument("-q", "--quiet", action="store_true", help="show errors only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        specs, paths = split_igs(args.ig)
        if specs:
            install(specs, log=lambda m: print(m, file=sys.stderr))
        validator = Validator(load((*DEFAULT_PACKAGES, *specs), paths))
    except PackageError as e:
        print(f"helixgate: {e}", file=sys.stderr)
        return status.USAGE if "--ig" in str(e) else status.INPUT_REJECTED
    worst = status.OK
    cache = MemoryCache(0)
    for name in args.files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            resource = read_resource(data, "xml" if name.endswith(".xml") else "")
        except OSError as e:
            print(f"helixgate: cannot read {name}: {e.strerror}", file=sys.stderr)
            worst = status.INPUT_REJECTED
            continue
        except ParseError as e:
            print(f"helixgate: {name}: {e}", file=sys.stderr)
            worst = status.INPUT_REJECTED
            continue
        result = asyncio.run(validate(resource, tuple(args.profile), validator, cache, offload=False))
        if result.errors:
            worst = status.INPUT_REJECTED
        if args.format == "json":
            sys.stdout.buffer.write(orjson.dumps(result.outcome, option=orjson.OPT_INDENT_2) + b"\n")
        else:
            _table(name, result.outcome, args.quiet)
    return worst


def _table(name: str, outcome: dict, quiet: bool) -> None:
    issues = [i for i in outcome.get("issue", []) if i["details"].get("coding", [{}])[0].get("code") != "ok"]
    errors = sum(1 for i in issues if i["severity"] in ("error", "fatal"))
    warnings = sum(1 for i in issues if i["severity"] == "warning")
    print(f"{name}: {'FAIL' if errors else 'OK'} ({errors} error(s), {warnings} warning(s), "
          f"{len(issues) - errors - warnings} information)")
    for i in issues:
        if quiet and i["severity"] not in ("error", "fatal"):
            continue
        where = (i.get("expression") or [""])[0]
        print(f"  {i['severity']:<11} {i['code']:<13} {where:<45} {i['details']['text']}")
