"""helixgate packages: install the FHIR packages the validator reads, and list what the package cache holds."""

from __future__ import annotations

import argparse
import sys
import time

from gateway.cli import status
from profiles.packages import DEFAULT_PACKAGES, PackageError, PackageRef, cache_dir, install, installed
from profiles.packages.index import resource_count

SUMMARY = "install FHIR packages (IGs and R4 core) into the package cache, or list them"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("packages", help=SUMMARY, description=SUMMARY)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    i = verbs.add_parser("install", help="install packages and their dependencies",
                         description=f"Install FHIR packages and, transitively, their dependencies into the "
                                     f"package cache (HELIXGATE_FHIR_PACKAGE_CACHE, else ~/.fhir/packages). "
                                     f"Default: {' '.join(DEFAULT_PACKAGES)}.")
    i.add_argument("specs", nargs="*", metavar="NAME#VERSION", help="packages to install (default: the set above)")
    i.add_argument("--registry", metavar="URL",
                   help="FHIR package registry tried before npm (default: HELIXGATE_FHIR_REGISTRY)")
    i.add_argument("--offline", action="store_true", help="use only the cache; fail if something is missing")
    i.set_defaults(run=run_install)
    ls = verbs.add_parser("list", help="list the packages in the cache")
    ls.set_defaults(run=run_list)
    p.set_defaults(run=lambda _args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return status.USAGE


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_install(args: argparse.Namespace) -> int:
    specs = args.specs or list(DEFAULT_PACKAGES)
    try:
        refs = [PackageRef.parse(s) for s in specs]
    except PackageError as e:
        _err(f"helixgate: {e}")
        return status.USAGE
    started = time.monotonic()
    try:
        packages = install(refs, registry=args.registry, offline=args.offline, log=_err)
    except PackageError as e:
        _err(f"helixgate: {e}")
        return status.INPUT_REJECTED
    substituted = [f"{p.ref} (for {p.substituted_from})" for p in packages if p.substituted_from]
    _err(f"installed {len(packages)} package(s) in {cache_dir()} in {time.monotonic() - started:.1f} s"
         + (f"; substituted: {', '.join(substituted)}" if substituted else ""))
    return status.OK


def run_list(args: argparse.Namespace) -> int:
    packages = installed()
    if not packages:
        _err(f"no FHIR packages in {cache_dir()}; run: helixgate packages install")
        return status.OK
    rows = [("PACKAGE", "FHIR", "RESOURCES", "SUBSTITUTED FROM")]
    rows += [(str(p.ref), ", ".join(p.fhir_versions) or "?", str(resource_count(p)), p.substituted_from or "")
             for p in packages]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
    for p in packages:
        for name, version in p.missing_dependencies.items():
            print(f"note: {p.ref} was installed without {name}#{version}, which no source publishes")
    print(f"({len(packages)} package(s) in {cache_dir()})")
    return status.OK
