"""helixgate command line: one module per command, imported only when its command runs (start-up stays quick)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from gateway import __version__, config_file

# name → (module, one-line summary shown by --help); each module has add_parser(sub) and SUMMARY.
COMMANDS = {
    "convert": ("gateway.cli.convert", "convert between FHIR and the other formats (convert --help lists them)"),
    "validate": ("gateway.cli.validate", "validate FHIR resources against R4 and the profiles they claim"),
    "translate": ("gateway.cli.translate", "translate a code through the shipped ConceptMaps (FHIR $translate)"),
    "serve": ("gateway.cli.serve", "run the HTTP gateway and, with --mllp-port, the MLLP listener"),
    "worker": ("gateway.cli.worker", "run a worker: deliver queued messages upstream, run bulk $convert jobs"),
    "dlq": ("gateway.cli.dlq", "inspect and replay the dead-letter stream"),
    "packages": ("gateway.cli.packages", "install FHIR packages into the package cache, or list them"),
    "conformance": ("gateway.cli.conformance", "run conformance suites against a FHIR server or converter"),
    "keys": ("gateway.cli.keys", "create, list and revoke API keys (HELIXGATE_API_KEYS_FILE)"),
    "doctor": ("gateway.cli.doctor", "check a deployment (packages, Redis persistence, upstream, auth, TLS, clock)"),
    "exchange": ("gateway.cli.exchange", "send content across a border under an exchange route (rules, audit)"),
    "upstream-jwks": ("gateway.cli.upstream_jwks", "print the public JWKS of the gateway's upstream client key"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="helixgate", description="FHIR interoperability gateway for genomic results")
    parser.add_argument("--version", action="version", version=f"helixgate {__version__}")
    parser.add_argument("--config", metavar="FILE", help="a TOML file of settings (the HELIXGATE_* variables without "
                        "their prefix; the environment wins); default $HELIXGATE_CONFIG")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] != "--config")),
                  None)
    for name, (module, summary) in COMMANDS.items():
        if name == chosen:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    args = parser.parse_args(argv)
    config = args.config or os.environ.get(config_file.ENV)
    if config:
        try:
            config_file.apply(config)
        except config_file.ConfigError as e:
            print(f"helixgate: {e}", file=sys.stderr)
            return 2
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. piped into head: end quietly, as other tools do (128 + SIGPIPE)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 141


if __name__ == "__main__":
    sys.exit(main())
