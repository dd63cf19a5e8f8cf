"""helixgate upstream-jwks: the public JWKS of the gateway's upstream client key, to register with the upstream's
authorization server (SMART Backend Services client registration)."""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from gateway.cli import status

SUMMARY = "print the public JWKS of HELIXGATE_UPSTREAM_PRIVATE_KEY (register it with the upstream's OAuth server)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upstream-jwks", help=SUMMARY, description=(
        "Prints {\"keys\": [<public JWK>]} for the key the gateway signs its client assertions with: kid (as "
        "HELIXGATE_UPSTREAM_KEY_ID, else the RFC 7638 thumbprint), alg RS384 or ES384, use sig. Never the "
        "private key."))
    p.add_argument("--key", metavar="PEM", help="the private key (default: HELIXGATE_UPSTREAM_PRIVATE_KEY)")
    p.add_argument("--kid", help="the key id (default: HELIXGATE_UPSTREAM_KEY_ID, else the key's thumbprint)")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from gateway.settings import SettingsError
    from gateway.upstream.credentials import load_private_key, public_jwk

    path = args.key or os.environ.get("HELIXGATE_UPSTREAM_PRIVATE_KEY")
    if not path:
        print("helixgate upstream-jwks: give --key PEM or set HELIXGATE_UPSTREAM_PRIVATE_KEY", file=sys.stderr)
        return status.USAGE
    try:
        key = load_private_key(path)
    except SettingsError as e:
        print(f"helixgate upstream-jwks: {e}", file=sys.stderr)
        return status.INPUT_REJECTED
    jwk = public_jwk(key, args.kid or os.environ.get("HELIXGATE_UPSTREAM_KEY_ID") or None)
    sys.stdout.write(orjson.dumps({"keys": [jwk]}, option=orjson.OPT_INDENT_2).decode() + "\n")
    return status.OK
