"""helixgate serve: the HTTP gateway under uvicorn."""

from __future__ import annotations

import argparse
import logging

from gateway.cli import status
from gateway.settings import Settings, SettingsError

SUMMARY = "run the HTTP gateway (POST /fhir/$convert, GET /fhir/metadata, GET /healthz)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=SUMMARY, description=SUMMARY)
    p.add_argument("--host", help="bind address (default 127.0.0.1, or HELIXGATE_HOST)")
    p.add_argument("--port", type=int, help="port (default 8080, or HELIXGATE_PORT)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app

    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"helixgate: {e}")
        return status.USAGE
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cache = ("Redis at HELIXGATE_REDIS_URL" if settings.redis_url
             else "in-process LRU (set HELIXGATE_REDIS_URL for Redis)")
    logging.getLogger("helixgate").info("helixgate on http://%s:%d/fhir, cache: %s", host, port, cache)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=args.log_level, access_log=False)
    return status.OK
