"""helixgate serve: the HTTP gateway under uvicorn."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

from gateway.cli import status
from gateway.settings import Settings, SettingsError

SUMMARY = "run the HTTP gateway (POST /fhir/$convert, GET /fhir/metadata, GET /healthz) and the MLLP listener"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=SUMMARY, description=SUMMARY)
    p.add_argument("--host", help="bind address (default 127.0.0.1, or HELIXGATE_HOST)")
    p.add_argument("--port", type=int, help="port (default 8080, or HELIXGATE_PORT)")
    p.add_argument("--mllp-port", type=int, metavar="N",
                   help="also listen for HL7 v2 over MLLP on port N (or HELIXGATE_MLLP_PORT); needs Redis")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="server processes (default 1); an MLLP port is shared by all of them (SO_REUSEPORT)")
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
    if args.mllp_port is not None:
        settings = dataclasses.replace(settings, mllp_port=args.mllp_port)
        os.environ["HELIXGATE_MLLP_PORT"] = str(args.mllp_port)  # for --workers processes, which read the env
    if settings.mllp_port is not None and not settings.redis_url:
        print("helixgate: the MLLP listener needs HELIXGATE_REDIS_URL: messages are stored in a Redis stream "
              "before they are acknowledged")
        return status.USAGE
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs, queries included (PHI)
    cache = ("Redis at HELIXGATE_REDIS_URL" if settings.redis_url
             else "in-process LRU (set HELIXGATE_REDIS_URL for Redis)")
    logging.getLogger("helixgate").info("helixgate on http://%s:%d/fhir, cache: %s", host, port, cache)
    if settings.mllp_port is not None:
        logging.getLogger("helixgate").info("MLLP listener on %s:%d", settings.mllp_host or host, settings.mllp_port)
    if args.workers > 1:
        uvicorn.run("gateway.app:create_app", factory=True, host=host, port=port, workers=args.workers,
                    log_level=args.log_level, access_log=False)
    else:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=args.log_level, access_log=False)
    return status.OK
