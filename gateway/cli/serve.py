"""helixgate serve: the HTTP gateway under uvicorn, and the MLLP listener.

Both listening sockets are bound here, before the app starts: if either port is taken (or not permitted),
nothing starts and the command exits 1 naming the port. The sockets are then handed to the server processes
(uvicorn passes the HTTP one, `uvicorn_config.GatewayConfig` the MLLP one), so `--workers N` share them without
SO_REUSEPORT.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
from typing import Any

from gateway.cli import status
from gateway.mllp import listen
from gateway.settings import Settings, SettingsError

SUMMARY = "run the HTTP gateway (POST /fhir/$convert, GET /fhir/metadata, GET /healthz) and the MLLP listener"
CANNOT_LISTEN = 1  # a port is taken or not permitted: nothing was started


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=SUMMARY, description=SUMMARY)
    p.add_argument("--host", help="bind address (default 127.0.0.1, or HELIXGATE_HOST)")
    p.add_argument("--port", type=int, help="port (default 8080, or HELIXGATE_PORT)")
    p.add_argument("--mllp-port", type=int, metavar="N",
                   help="also listen for HL7 v2 over MLLP on port N (or HELIXGATE_MLLP_PORT); needs Redis")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="server processes (default 1); they share the HTTP and MLLP sockets")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.cli.uvicorn_config import GatewayConfig

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
    sockets = _bind_both(host, port, settings)
    if sockets is None:
        return CANNOT_LISTEN
    http, mllp = sockets
    cache = ("Redis at HELIXGATE_REDIS_URL" if settings.redis_url
             else "in-process LRU (set HELIXGATE_REDIS_URL for Redis)")
    logging.getLogger("helixgate").info("helixgate on http://%s:%d/fhir, cache: %s", host, port, cache)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": args.log_level, "access_log": False,
                               "mllp_socket": mllp}
    try:
        if args.workers > 1:
            from uvicorn.supervisors import Multiprocess

            config = GatewayConfig("gateway.app:create_app", factory=True, workers=args.workers, **options)
            try:  # uvicorn ≥ 0.36 builds the Server in each process; earlier versions take it as `target`
                supervisor = Multiprocess(config, sockets=[http])  # type: ignore[call-arg]
            except TypeError:
                supervisor = Multiprocess(config, target=uvicorn.Server(config).run, sockets=[http])  # type: ignore[call-arg]
            supervisor.run()
        else:
            uvicorn.Server(GatewayConfig(create_app(settings), **options)).run(sockets=[http])
    finally:
        for sock in (http, mllp):
            if sock is not None:
                sock.close()
    return status.OK


def _bind_both(host: str, port: int, settings: Settings) -> tuple[socket.socket, socket.socket | None] | None:
    """The HTTP and (when configured) MLLP listening sockets, or None after saying which port could not be bound."""
    try:
        http = listen.bind(host, port)
    except OSError as e:
        print(f"helixgate: cannot listen for HTTP on {host}:{port}: {e.strerror or e}; nothing was started")
        return None
    if settings.mllp_port is None:
        return http, None
    mllp_host = settings.mllp_host or host
    try:
        mllp = listen.bind(mllp_host, settings.mllp_port, reuse_port=settings.mllp_reuse_port)
    except OSError as e:
        http.close()
        print(f"helixgate: cannot listen for MLLP on {mllp_host}:{settings.mllp_port}: {e.strerror or e} (is another "
              "helixgate serve running?); nothing was started")
        return None
    logging.getLogger("helixgate").info("MLLP listener on %s:%d", mllp_host, mllp.getsockname()[1])
    return http, mllp
