"""helixgate worker: consume the inbound and bulk streams; convert, validate and deliver to the upstream."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import sys

from gateway.cli import status
from gateway.settings import Settings, SettingsError

SUMMARY = "run a worker: deliver queued messages to the upstream FHIR server, run bulk $convert jobs"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help=SUMMARY, description=f"{SUMMARY}. Start as many as you like: they share the "
                       "work through a Redis consumer group. Needs HELIXGATE_REDIS_URL; delivery needs "
                       "HELIXGATE_UPSTREAM_URL.")
    p.add_argument("--concurrency", type=int, help="messages in flight (default 8, or HELIXGATE_WORKER_CONCURRENCY)")
    p.add_argument("--name", default="", help="consumer name in the group (default HOST-PID)")
    p.add_argument("--no-validate", action="store_true", help="deliver unvalidated (HELIXGATE_WORKER_VALIDATE=0)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(run=run)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from gateway.workers import StartFailed, open_worker, run_until_signalled

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs, queries included (PHI)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        _err(f"helixgate: {e}")
        return status.USAGE
    if args.concurrency is not None:
        settings = dataclasses.replace(settings, worker_concurrency=max(1, args.concurrency))
    if args.no_validate:
        settings = dataclasses.replace(settings, worker_validate=False)
    validator = None  # with conversion processes (the default) they load it themselves
    if settings.worker_validate and settings.upstream_url and settings.worker_processes == 0:
        from profiles.context import default_validator
        from profiles.packages import PackageError

        try:
            validator = default_validator()
        except PackageError as e:
            _err(f"helixgate: cannot validate before delivery: {e}\n"
                 "run `helixgate packages install`, or set HELIXGATE_WORKER_VALIDATE=0 to deliver unvalidated")
            return status.INPUT_REJECTED

    gc.collect()
    gc.freeze()  # the validator's definitions live as long as the process: keep gen-2 collections off them

    async def main() -> None:
        async with open_worker(settings, name=args.name, validator=validator) as worker:
            await run_until_signalled(worker)

    try:
        asyncio.run(main())
    except SettingsError as e:
        _err(f"helixgate: {e}")
        return status.USAGE
    except StartFailed as e:
        hint = ("\nrun `helixgate packages install`, or set HELIXGATE_WORKER_VALIDATE=0 to deliver unvalidated"
                if "validate" in str(e) else "")
        _err(f"helixgate: {e}{hint}")
        return status.INPUT_REJECTED
    return status.OK
