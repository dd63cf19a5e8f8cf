"""helixgate keys: API keys for system-to-system clients (create, list, revoke) in HELIXGATE_API_KEYS_FILE."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import UTC, datetime, timedelta

from gateway.cli import status

SUMMARY = "create, list and revoke API keys (HELIXGATE_API_KEYS_FILE)"
_DURATION = re.compile(r"(\d{1,6})([dhm])\Z")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help=SUMMARY, description=(
        "API keys for clients without an OAuth authorization server. Clients send 'Authorization: ApiKey <key>'. "
        "The key is printed once, by create; the file keeps only its SHA-256."))
    p.add_argument("--file", metavar="PATH", help="the keys file (default: HELIXGATE_API_KEYS_FILE)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    create = verbs.add_parser("create", help="create a key and print it (once) on stdout")
    create.add_argument("name", help="the client's name: what the gateway audits, rate-limits and owns bulk jobs by")
    create.add_argument("--scope", action="append", default=[], required=True, metavar="SCOPE",
                        help="a SMART scope (repeatable): system/$convert, system/$validate, system/$translate, "
                             "system/Observation.rs, user/*.cruds, …")
    create.add_argument("--expires", default="90d", metavar="WHEN",
                        help="Nd, Nh or Nm from now, or a date/time (2027-01-31, 2027-01-31T12:00Z); default 90d")
    create.add_argument("--patient", metavar="ID", help="limit the key's patient/ scopes to this Patient's "
                        "compartment (without it, patient/ scopes grant nothing)")
    create.set_defaults(run=_create)
    ls = verbs.add_parser("list", help="list the keys (names, ids, scopes, expiry, state; never the keys)")
    ls.set_defaults(run=_list)
    revoke = verbs.add_parser("revoke", help="revoke a key by name or id (servers refuse it on the next request)")
    revoke.add_argument("name", help="the key's name or id")
    revoke.set_defaults(run=_revoke)
    p.set_defaults(run=lambda args: (p.print_help(sys.stderr), status.USAGE)[1])


def expiry(text: str, now: datetime | None = None) -> datetime:
    """When a key given `--expires text` expires; ValueError naming the accepted forms."""
    now = now or datetime.now(UTC)
    m = _DURATION.match(text.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now + {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--expires {text!r}: give Nd, Nh, Nm or a date such as 2027-01-31") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from gateway.auth.keys import KeyStore

    path = args.file or os.environ.get("HELIXGATE_API_KEYS_FILE")
    if not path:
        raise ValueError("no keys file: give --file PATH or set HELIXGATE_API_KEYS_FILE")
    return KeyStore(path)


def _create(args: argparse.Namespace) -> int:
    from gateway.auth.keys import KeyStoreError

    try:
        store = _store(args)
        key, record = store.create(args.name, args.scope, expiry(args.expires), patient=args.patient)
    except (ValueError, KeyStoreError, OSError) as e:
        print(f"helixgate: {e}", file=sys.stderr)
        return status.USAGE
    print(f"created API key {record.name!r} (id {record.id}), scopes {' '.join(record.scopes)}, expires "
          f"{record.expires}; it is shown only now: send it as 'Authorization: ApiKey <key>'", file=sys.stderr)
    print(key)
    return status.OK


def _list(args: argparse.Namespace) -> int:
    try:
        keys = _store(args).list()
    except (ValueError, OSError) as e:
        print(f"helixgate: {e}", file=sys.stderr)
        return status.USAGE
    if not keys:
        print("no API keys", file=sys.stderr)
        return status.OK
    print(f"{'NAME':<24} {'ID':<12} {'STATE':<8} {'EXPIRES':<20} SCOPES")
    for k in keys:
        patient = f"  (patient {k.patient})" if k.patient else ""
        print(f"{k.name:<24} {k.id:<12} {k.state():<8} {k.expires:<20} {' '.join(k.scopes)}{patient}")
    return status.OK


def _revoke(args: argparse.Namespace) -> int:
    from gateway.auth.keys import KeyStoreError

    try:
        revoked = _store(args).revoke(args.name)
    except (ValueError, KeyStoreError, OSError) as e:
        print(f"helixgate: {e}", file=sys.stderr)
        return status.USAGE
    for k in revoked:
        print(f"revoked API key {k.name!r} (id {k.id})", file=sys.stderr)
    return status.OK
