"""helixgate exchange: cross-border transfers under exchange routes (gateway/exchange/).

    helixgate exchange INPUT --route R --purpose P [--dry-run] [--consent FILE]… [--mechanism ID]… [--filing ID]
    helixgate exchange routes check FILE
    helixgate exchange counters
    helixgate exchange reidentify PSEUDONYM --route R --candidates FILE
    helixgate exchange audit export [-o FILE] | audit verify [FILE]
    helixgate exchange keys new FILE --id KEY_ID
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import orjson

from gateway.cli import status

SUMMARY = "send content across a border under an exchange route (rules, consent, counters, audit)"
REFUSED = 3  # a rule refused the transfer (HTTP 403)
VERBS = ("routes", "counters", "reidentify", "audit", "keys")
USAGE = __doc__.split("\n\n", 1)[1]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exchange", help=SUMMARY, description=SUMMARY, usage=USAGE,
                       formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False)
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(run=lambda args: main(args.argv))


def _routes_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--routes", metavar="FILE", default=os.environ.get("HELIXGATE_EXCHANGE_ROUTES"),
                   help="the exchange routes file (default: HELIXGATE_EXCHANGE_ROUTES)")


def _parser(verb: str | None) -> argparse.ArgumentParser:
    prog = "helixgate exchange" + (f" {verb}" if verb else "")
    p = argparse.ArgumentParser(prog=prog, description=SUMMARY if verb is None else None)
    if verb is None:
        p.add_argument("input", help="the document to send (any format helixgate reads; - for stdin)")
        p.add_argument("--route", required=True, help="the route id")
        p.add_argument("--purpose", required=True, help="the purpose (treatment, research, … or TREAT, HRESCH, …)")
        _routes_option(p)
        p.add_argument("--from", dest="source", metavar="FORMAT", help="the input's format when not detected")
        p.add_argument("--consent", action="append", default=[], metavar="FILE",
                       help="a FHIR Consent (JSON), or a Bundle of them (repeatable)")
        p.add_argument("--mechanism", action="append", default=[], metavar="ID", help="a transfer-mechanism id")
        p.add_argument("--legal-basis", metavar="BASIS")
        p.add_argument("--filing", metavar="ID", help="the HGR (MOST) filing id for genetic content")
        p.add_argument("--dry-run", action="store_true",
                       help="print the decision and what would be removed, generalised or replaced; send nothing")
        p.add_argument("-o", "--output", metavar="FILE", help="write the output here (default stdout)")
    elif verb == "routes":
        p.add_argument("action", choices=["check"])
        p.add_argument("file")
    elif verb == "counters":
        _routes_option(p)
    elif verb == "reidentify":
        p.add_argument("pseudonym", help="the pseudonym (value) to resolve")
        p.add_argument("--route", required=True)
        _routes_option(p)
        p.add_argument("--candidates", required=True, metavar="FILE",
                       help="the source's identifiers, one 'system|value' a line (e.g. an export of the MPI)")
        p.add_argument("--key-id", help="the key the pseudonym was made with (default: the current key)")
    elif verb == "audit":
        p.add_argument("action", choices=["export", "verify"])
        p.add_argument("file", nargs="?", help="verify: an exported NDJSON file (default: the live trail)")
        p.add_argument("-o", "--output", metavar="FILE")
    elif verb == "keys":
        p.add_argument("action", choices=["new"])
        p.add_argument("file")
        p.add_argument("--id", required=True, dest="key_id", help="the new key's id (it becomes current)")
    return p


def main(argv: list[str]) -> int:
    verb = argv[0] if argv and argv[0] in VERBS else None
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {USAGE}", file=sys.stderr if not argv else sys.stdout)
        return status.USAGE if not argv else status.OK
    try:
        args = _parser(verb).parse_args(argv[1:] if verb else argv)
    except SystemExit as e:
        return int(e.code or 0)
    from gateway.exchange.keys import KeyError_
    from gateway.exchange.routes import RoutesError

    try:
        if verb == "routes":
            return _check(args)
        if verb == "keys":
            from gateway.exchange.keys import new_key_file

            new_key_file(args.file, args.key_id)
            print(f"{args.file}: key {args.key_id} added and made current", file=sys.stderr)
            return status.OK
        return asyncio.run(_async(verb, args))
    except RoutesError as e:
        print(f"helixgate: {e}", file=sys.stderr)
        return status.USAGE
    except KeyError_ as e:
        print(f"helixgate: {e}", file=sys.stderr)
        return status.USAGE


def _check(args: argparse.Namespace) -> int:
    from gateway.exchange.routes import explain, load

    routes = load(args.file)
    print(f"{args.file}: version {routes.version}, {len(routes.routes)} route(s), all checks passed\n")
    print("\n\n".join(explain(r) for r in routes.routes.values()))
    return status.OK


def _need_routes(args: argparse.Namespace) -> Any:
    from gateway.exchange.routes import RoutesError, load

    if not args.routes:
        raise RoutesError("(no file)", [("", "name the routes file with --routes or HELIXGATE_EXCHANGE_ROUTES")])
    return load(args.routes)


async def _stores() -> tuple[Any, Any, Any]:
    from gateway.exchange import counters, trail

    url = os.environ.get("HELIXGATE_REDIS_URL", "").strip()
    if not url:
        return None, counters.MemoryCounters(), trail.MemoryTrail()
    from gateway.workers.streams import redis_client

    client = redis_client(url)
    return client, counters.RedisCounters(client), trail.RedisTrail(client)


async def _async(verb: str | None, args: argparse.Namespace) -> int:
    client, counts, trail = await _stores()
    try:
        if verb is None:
            return await _transfer(args, counts, trail)
        if verb == "counters":
            return await _counters(args, counts)
        if verb == "reidentify":
            return await _reidentify(args, trail)
        return await _audit(args, trail)
    finally:
        if client is not None:
            await client.aclose()


def _consents(paths: list[str]) -> tuple[dict[str, Any], ...]:
    found: list[dict[str, Any]] = []
    for path in paths:
        with open(path, "rb") as f:
            doc = orjson.loads(f.read())
        if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
            found += [e["resource"] for e in doc.get("entry") or [] if isinstance(e.get("resource"), dict)]
        elif isinstance(doc, dict):
            found.append(doc)
    return tuple(found)


async def _transfer(args: argparse.Namespace, counts: Any, trail: Any) -> int:
    from gateway.cli.output import write
    from gateway.exchange.http import answer
    from gateway.exchange.pipeline import run, today
    from gateway.exchange.rules import Refused
    from gateway.exchange.rules.facts import Transfer
    from gateway.exchange.service import LocalEngine
    from gateway.settings import Settings
    from mappers.exceptions import MappingError

    routes = _need_routes(args)
    try:
        from pathlib import Path

        data = sys.stdin.buffer.read() if args.input == "-" else Path(args.input).read_bytes()
        consents = _consents(args.consent)
    except (OSError, orjson.JSONDecodeError) as e:
        print(f"helixgate: {e}", file=sys.stderr)
        return status.INPUT_REJECTED
    route = routes.get(args.route)
    transfer = Transfer(purpose=args.purpose, day=today(route) if route else "", mechanisms=tuple(args.mechanism),
                        legal_basis=args.legal_basis, filing=args.filing, consents=consents)
    from profiles.context import default_validator
    from profiles.packages import PackageError

    try:
        validator = default_validator()
    except PackageError:
        validator = None
    upstream = None
    if route is not None and route["delivery"]["mode"] == "upstream":
        from gateway.upstream import make_upstream

        upstream = make_upstream(Settings.from_env())
    try:
        result = await run(data, source=args.source, route_id=args.route, transfer=transfer, routes=routes,
                           engine=LocalEngine(validator, upstream), counters=counts, trail=trail,
                           client=f"cli:{os.environ.get('USER', 'unknown')}", dry_run=args.dry_run)
    except Refused as e:
        sys.stderr.buffer.write(orjson.dumps(e.outcome(), option=orjson.OPT_INDENT_2) + b"\n")
        print(f"helixgate: refused by rule {e.rule}: {e.message}; to satisfy it: {e.satisfy}", file=sys.stderr)
        return REFUSED
    except MappingError as e:
        print(f"helixgate: {e}", file=sys.stderr)
        for issue in e.issues[1:6]:
            print(f"  {issue.message}", file=sys.stderr)
        return status.INPUT_REJECTED
    finally:
        if upstream is not None:
            await upstream.aclose()
    if result.warning:
        print(f"helixgate: warning: {result.warning}", file=sys.stderr)
    if args.dry_run:
        write(args.output, orjson.dumps(answer(result, True), option=orjson.OPT_INDENT_2) + b"\n")
        return REFUSED if result.decision == "refuse" else status.OK
    if route is not None and route["delivery"]["mode"] != "return":
        for d in result.delivered:
            print(f"delivered: {d}", file=sys.stderr)
        return status.OK
    write(args.output, result.body)
    return status.OK


async def _counters(args: argparse.Namespace, counts: Any) -> int:
    limits: dict[str, list[str]] = {}
    if args.routes:
        for r in _need_routes(args).routes.values():
            c = (r.get("rules") or {}).get("counters")
            if c:
                limits.setdefault(r["source"]["exporter"], []).append(
                    f"{r['id']}: warn {c.get('warnAt', '-')}, stop {c['stopAt']}")
    found = await counts.counts()
    if not found:
        print("no data subjects counted yet" + (" (in-process counters: set HELIXGATE_REDIS_URL)"
                                                if counts.kind == "memory" else ""))
    for name, n in found.items():
        exporter, year = name.rsplit(":", 1)
        extra = f"  ({'; '.join(limits[exporter])})" if exporter in limits else ""
        print(f"{exporter}\t{year}\t{n}{extra}")
    return status.OK


async def _reidentify(args: argparse.Namespace, trail: Any) -> int:
    from datetime import UTC, datetime

    from gateway.exchange.reidentify import event, match

    routes = _need_routes(args)
    route = routes.get(args.route)
    if route is None or route["id"] not in routes.keyrings:
        print(f"helixgate: route {args.route!r} does not pseudonymise", file=sys.stderr)
        return status.USAGE
    ring = routes.keyrings[route["id"]]
    with open(args.candidates, encoding="utf-8") as f:
        candidates = [line.strip() for line in f if line.strip()]
    found = match(args.pseudonym, candidates, route["destination"]["id"], ring.key(args.key_id))
    recorded = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    await trail.append(event(route, args.key_id or ring.current, found is not None, recorded,
                             f"cli:{os.environ.get('USER', 'unknown')}"))
    if found is None:
        print("helixgate: no candidate matches the pseudonym under this route's key", file=sys.stderr)
        return status.INPUT_REJECTED
    print(found)
    return status.OK


async def _audit(args: argparse.Namespace, trail: Any) -> int:
    from gateway.exchange.trail import verify

    if args.action == "export":
        lines = [orjson.dumps(item) async for item in trail.entries()]
        data = b"".join(line + b"\n" for line in lines)
        from gateway.cli.output import write

        write(args.output, data)
        print(f"{len(lines)} entries exported", file=sys.stderr)
        return status.OK
    if args.file:
        with open(args.file, "rb") as f:
            items = [orjson.loads(line) for line in f if line.strip()]
    else:
        items = [item async for item in trail.entries()]
    n, problem = verify(items)
    if problem:
        print(f"helixgate: the audit trail is broken at {problem} ({n} entries read)", file=sys.stderr)
        return status.INPUT_REJECTED
    print(f"{n} entries, hash chain intact")
    return status.OK
