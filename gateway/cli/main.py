"""helixgate command line: one module per command, each registered with a one-line summary."""

from __future__ import annotations

import argparse
import sys

from gateway import __version__
from gateway.cli import conformance, convert, dlq, packages, serve, translate, validate, worker

COMMANDS = (convert, validate, serve, worker, dlq, packages, translate, conformance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="helixgate", description="FHIR interoperability gateway for genomic results")
    parser.add_argument("--version", action="version", version=f"helixgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
