"""helixgate packages: install the FHIR packages the validator reads, list what the package cache holds, and report
how the validator runs the invariants they define."""

from __future__ import annotations

import argparse
import os
import sys
import time

from gateway.cli import status
from profiles.packages import (
    DEFAULT_PACKAGES,
    PackageError,
    PackageRef,
    cache_dir,
    install,
    install_local,
    installed,
)
from profiles.packages.index import resource_count

SUMMARY = "install FHIR packages (IGs and R4 core) into the package cache, list them, or report their invariants"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("packages", help=SUMMARY, description=SUMMARY)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    i = verbs.add_parser("install", help="install packages and their dependencies",
                         description=f"Install FHIR packages and, transitively, their dependencies into the "
                                     f"package cache (HELIXGATE_FHIR_PACKAGE_CACHE, else ~/.fhir/packages). "
                                     f"Default: {' '.join(DEFAULT_PACKAGES)}.")
    i.add_argument("specs", nargs="*", metavar="NAME#VERSION|FILE",
                   help="packages to install (default: the set above); a package tarball (.tgz) or package folder "
                        "installs that file, for packages no reachable registry publishes (e.g. HL7 Europe's)")
    i.add_argument("--registry", metavar="URL",
                   help="FHIR package registry tried before npm (default: HELIXGATE_FHIR_REGISTRY)")
    i.add_argument("--offline", action="store_true", help="use only the cache; fail if something is missing")
    i.set_defaults(run=run_install)
    ls = verbs.add_parser("list", help="list the packages in the cache")
    ls.set_defaults(run=run_list)
    inv = verbs.add_parser("invariants", help="which path each invariant of the installed packages runs on",
                           description="Each FHIRPath invariant of the default packages' StructureDefinitions (and "
                                       "of --ig sources) and how the validator runs it: structural (the element walk "
                                       "checks it), rule (a rule module reports it), native (hand-written), "
                                       "compiled (closures over the JSON), fhirpathpy (the FHIRPath engine, with "
                                       "the reason it is not compiled). A compiled invariant still hands the "
                                       "instances it cannot judge exactly to the engine.")
    inv.add_argument("--ig", action="append", default=[], metavar="NAME#VERSION|PATH",
                     help="also read an installed package, or a file/folder of conformance resources")
    inv.add_argument("--format", choices=("table", "json"), default="table")
    inv.add_argument("--path", choices=("structural", "rule", "native", "compiled", "fhirpathpy", "mixed"),
                     help="list only the invariants on this path")
    inv.set_defaults(run=run_invariants)
    p.set_defaults(run=lambda _args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return status.USAGE


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _is_file(spec: str) -> bool:
    """A path rather than NAME#VERSION: it exists, or it is spelt like a path or a tarball."""
    return os.path.exists(spec) or "/" in spec or spec.endswith((".tgz", ".tar.gz"))


def run_install(args: argparse.Namespace) -> int:
    specs = args.specs or list(DEFAULT_PACKAGES)
    files = [s for s in specs if _is_file(s)]
    try:
        refs = [PackageRef.parse(s) for s in specs if s not in files]
    except PackageError as e:
        _err(f"helixgate: {e}")
        return status.USAGE
    started = time.monotonic()
    try:
        packages = [p for f in files for p in install_local(f, registry=args.registry, offline=args.offline,
                                                             log=_err)]
        packages += install(refs, registry=args.registry, offline=args.offline, log=_err) if refs else []
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


def run_invariants(args: argparse.Namespace) -> int:
    from collections import Counter

    import orjson

    from profiles import invariants
    from profiles.context import load, split_igs

    try:
        specs, paths = split_igs(args.ig)
        defs = load((*DEFAULT_PACKAGES, *specs), paths)
    except PackageError as e:
        _err(f"helixgate: {e}")
        return status.USAGE if "--ig" in str(e) else status.INPUT_REJECTED
    rows = invariants.report(defs.structures)
    shown = [r for r in rows if args.path in (None, r.path)]
    if args.format == "json":
        doc = {"summary": dict(Counter(r.path for r in rows)),
               "invariants": [{"key": r.key, "expression": r.expression, "path": r.path, "elements": r.elements,
                               "definitions": list(r.definitions), "reason": r.reason} for r in shown]}
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        return status.OK
    for r in shown:
        expr = r.expression if len(r.expression) <= 90 else r.expression[:87] + "..."
        why = f"  ({r.reason})" if r.reason else ""
        print(f"{r.key:<14} {r.path:<10} {r.elements:>6}  {expr}{why}")
    counts = Counter(r.path for r in rows)
    elements = Counter()
    for r in rows:
        elements[r.path] += r.elements
    print(f"{len(rows)} invariants: " + ", ".join(f"{counts[p]} {p} (on {elements[p]} elements)"
                                                  for p in ("structural", "rule", "native", "compiled", "fhirpathpy",
                                                            "mixed") if counts[p]))
    return status.OK
