"""helixgate dlq: list, show and replay dead-lettered messages and jobs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from gateway.cli import status
from gateway.settings import Settings, SettingsError

SUMMARY = "inspect and replay the dead-letter stream (messages that could not be delivered)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dlq", help=SUMMARY, description=f"{SUMMARY}. Needs HELIXGATE_REDIS_URL.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    ls = verbs.add_parser("list", help="one line per dead letter: id, time, reason, attempts, facility, control id")
    ls.add_argument("--count", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    ls.set_defaults(run=lambda a: _run(_list, a))
    show = verbs.add_parser("show", help="one dead letter in full: the reason's OperationOutcome and the message")
    show.add_argument("id")
    show.set_defaults(run=lambda a: _run(_show, a))
    rp = verbs.add_parser("replay", help="put dead letters back on their stream for the workers")
    rp.add_argument("id", nargs="?", help="the dead letter to replay")
    rp.add_argument("--all", action="store_true", help="replay every dead letter")
    rp.set_defaults(run=lambda a: _run(_replay, a))
    p.set_defaults(run=lambda _a: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return status.USAGE


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run(verb: Any, args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from gateway.workers.streams import migrate_legacy, redis_client

    try:
        settings = Settings.from_env()
    except SettingsError as e:
        _err(f"helixgate: {e}")
        return status.USAGE
    if not settings.redis_url:
        _err("helixgate: the dead-letter stream is in Redis; set HELIXGATE_REDIS_URL")
        return status.USAGE

    async def main() -> int:
        client = redis_client(settings.redis_url)
        try:
            await migrate_legacy(client)  # dead letters kept under the name before the hash tag
            return await verb(client, args)
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except (RedisError, OSError) as e:
        _err(f"helixgate: Redis at HELIXGATE_REDIS_URL is unavailable ({type(e).__name__}: {e})")
        return status.INPUT_REJECTED


async def _list(client: Any, args: argparse.Namespace) -> int:
    from gateway.workers.dlq import list_dead

    dead = await list_dead(client, args.count)
    if args.json:
        for d in dead:
            print(orjson.dumps(d.summary).decode())
        return status.OK
    if not dead:
        _err("the dead-letter stream is empty")
        return status.OK
    rows = [("ID", "AT", "REASON", "ATTEMPTS", "FACILITY", "CONTROL/JOB")]
    rows += [(d.id, d.at, d.reason, str(d.attempts), d.summary["facility"], d.summary["control"] or d.summary["job"])
             for d in dead]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=False)) + "  " + r[5])
    return status.OK


async def _show(client: Any, args: argparse.Namespace) -> int:
    from gateway.workers.dlq import get_dead

    dead = await get_dead(client, args.id)
    if dead is None:
        _err(f"helixgate: no dead letter {args.id} (see `helixgate dlq list`)")
        return status.INPUT_REJECTED
    try:
        detail: Any = orjson.loads(dead.detail)
    except orjson.JSONDecodeError:
        detail = dead.detail
    fields = {k.decode(): v.decode("utf-8", "replace") for k, v in dead.fields.items()}
    doc = {**dead.summary, "original_stream": dead.stream, "original_id": dead.original_id, "detail": detail,
           "fields": fields}
    sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return status.OK


async def _replay(client: Any, args: argparse.Namespace) -> int:
    from gateway.workers.dlq import replay, replay_all

    if args.all == bool(args.id):
        _err("helixgate: give one dead letter ID or --all")
        return status.USAGE
    if args.all:
        ids = await replay_all(client)
        _err(f"replayed {len(ids)} dead letter(s)")
        return status.OK
    new = await replay(client, args.id)
    if new is None:
        _err(f"helixgate: no dead letter {args.id} (see `helixgate dlq list`)")
        return status.INPUT_REJECTED
    _err(f"replayed {args.id} as {new}")
    return status.OK
