"""helixgate serve: the HTTP gateway under uvicorn, and the MLLP listener.

Both listening sockets are bound here, before the app starts: if either port is taken (or not permitted),
nothing starts and the command exits 1 naming the port (or, before that, a TLS certificate, key or CA file that
cannot be used: unreadable, not PEM, a key not matching its certificate). The sockets are then handed to the server
processes (uvicorn passes the HTTP one, `uvicorn_config.GatewayConfig` the MLLP one), so `--workers N` share them
without SO_REUSEPORT.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys
from typing import Any

from gateway import logconfig, metrics
from gateway.auth.config import is_loopback
from gateway.cli import status
from gateway.mllp import listen
from gateway.settings import Settings, SettingsError
from gateway.tls import TlsConfig, TlsError, server_context

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
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                   help="default info, or HELIXGATE_LOG_LEVEL; HELIXGATE_LOG_FORMAT=json for JSON lines")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="serve a non-loopback address without any credentials configured (labs only; logged loudly)")
    tls = p.add_argument_group("transport security (README: Transport security)")
    tls.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate chain (HELIXGATE_TLS_CERT)")
    tls.add_argument("--tls-key", metavar="PEM", help="its private key (HELIXGATE_TLS_KEY)")
    tls.add_argument("--tls-client-ca", metavar="PEM",
                     help="accept client certificates issued by this CA: mutual TLS (HELIXGATE_TLS_CLIENT_CA)")
    tls.add_argument("--tls-client-cert", choices=("optional", "required"),
                     help="whether HTTPS clients must present a certificate (default with a client CA: required; "
                          "HELIXGATE_TLS_CLIENT_CERT)")
    tls.add_argument("--mllp-tls-cert", metavar="PEM", help="MLLP over TLS with this certificate chain "
                     "(HELIXGATE_MLLP_TLS_CERT)")
    tls.add_argument("--mllp-tls-key", metavar="PEM", help="its private key (HELIXGATE_MLLP_TLS_KEY)")
    tls.add_argument("--mllp-tls-client-ca", metavar="PEM", help="the CA of the MLLP partners' client certificates "
                     "(HELIXGATE_MLLP_TLS_CLIENT_CA)")
    tls.add_argument("--mllp-tls-client-cert", choices=("optional", "required"),
                     help="whether MLLP partners must present a certificate (default with a client CA: required; "
                          "HELIXGATE_MLLP_TLS_CLIENT_CERT)")
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
    try:
        http_tls = _transport_security(args, settings)
    except SettingsError as e:
        print(f"helixgate: {e}")
        return status.USAGE
    except TlsError as e:
        print(f"helixgate: {e}; nothing was started")
        return CANNOT_LISTEN
    try:
        log_level, log_format = logconfig.chosen(level=args.log_level)
    except SettingsError as e:
        print(f"helixgate: {e}")
        return status.USAGE
    from gateway.exchange.service import check_env

    problem = check_env()  # HELIXGATE_EXCHANGE_ROUTES: a routes file that cannot be used stops start-up
    if problem:
        print(f"helixgate: {problem}")
        return status.USAGE
    os.environ["HELIXGATE_LOG_LEVEL"] = log_level  # for each server process's logging (GatewayConfig)
    logconfig.configure(log_level)
    if not _access_control(host, args.insecure_no_auth):
        return status.USAGE
    if http_tls is None and not is_loopback(host):
        # Not refused: TLS is often ended by a proxy in front. But tokens, API keys and health data would otherwise
        # cross the network in clear text (BCP 195).
        logging.getLogger("helixgate").warning("serving plain HTTP on %s: unless a TLS-terminating proxy is in front, "
                                               "credentials and health data travel unencrypted (--tls-cert/--tls-key)",
                                               host)
    sockets = _bind_both(host, port, settings)
    if sockets is None:
        return CANNOT_LISTEN
    http, mllp = sockets
    cache = ("Redis at HELIXGATE_REDIS_URL" if settings.redis_url
             else "in-process LRU (set HELIXGATE_REDIS_URL for Redis)")
    logging.getLogger("helixgate").info("helixgate on %s://%s:%d/fhir, cache: %s", "https" if http_tls else "http",
                                        host, port, cache)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": False,
                               "mllp_socket": mllp, "tls": http_tls}
    if log_format == "json":  # uvicorn's own lines through the gateway's JSON handler, not its text one
        options["log_config"] = None
    try:
        if args.workers > 1:
            from uvicorn.supervisors import Multiprocess

            metrics.prepare_multiprocess(args.workers)  # /metrics adds up every server process's counts

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


def _transport_security(args: argparse.Namespace, settings: Settings) -> TlsConfig | None:
    """The HTTP listener's TLS config, after checking every TLS file and mapping both listeners use (raises
    TlsError naming an unusable file, SettingsError for a bad setting). The MLLP flags go into the environment,
    where each server process's app reads them (as HELIXGATE_MLLP_PORT)."""
    from gateway.auth.certs import MtlsClients
    from gateway.mllp.partners import Partners

    flags = {"HELIXGATE_TLS_CERT": args.tls_cert, "HELIXGATE_TLS_KEY": args.tls_key,
             "HELIXGATE_TLS_CLIENT_CA": args.tls_client_ca, "HELIXGATE_TLS_CLIENT_CERT": args.tls_client_cert}
    http_tls = TlsConfig.from_env("HELIXGATE_TLS", {**os.environ, **{k: v for k, v in flags.items() if v}})
    if http_tls is not None:
        server_context(http_tls)
    if MtlsClients.from_env() and (http_tls is None or not http_tls.mutual):
        # Auth would be on with a mechanism no request can satisfy: every protected route would answer 401.
        raise SettingsError("HELIXGATE_MTLS_CLIENTS maps client certificates, but the HTTP listener asks for none: "
                            "give --tls-cert/--tls-key and --tls-client-ca (HELIXGATE_TLS_CLIENT_CA)")
    for name, value in (("HELIXGATE_MLLP_TLS_CERT", args.mllp_tls_cert), ("HELIXGATE_MLLP_TLS_KEY", args.mllp_tls_key),
                        ("HELIXGATE_MLLP_TLS_CLIENT_CA", args.mllp_tls_client_ca),
                        ("HELIXGATE_MLLP_TLS_CLIENT_CERT", args.mllp_tls_client_cert)):
        if value:
            os.environ[name] = value
    if settings.mllp_port is not None:
        mllp_tls = TlsConfig.from_env("HELIXGATE_MLLP_TLS")
        if mllp_tls is not None:
            server_context(mllp_tls)
        Partners.from_env()
    return http_tls


def _access_control(host: str, insecure: bool) -> bool:
    """Auth on by default: False (after saying which setting to give) when the address may be reachable from other
    machines and no credentials are configured, unless --insecure-no-auth says so on purpose."""
    from gateway.auth.config import SETTINGS_HINT, AuthConfig, is_loopback

    log = logging.getLogger("helixgate.auth")
    auth = AuthConfig.from_env()
    if auth.enabled:
        log.info("access control on: %s; every route but /healthz, /fhir/metadata and smart-configuration needs "
                 "credentials", ", ".join(auth.mechanisms()))
        return True
    if is_loopback(host):
        log.info("access control off: no credentials configured, listening on loopback %s only", host)
        return True
    if insecure:
        for line in (f"ACCESS CONTROL IS OFF on {host} (--insecure-no-auth): anyone who reaches this address can "
                     "read, write and convert health data through it.",
                     f"Configure {SETTINGS_HINT} before this gateway sees real data."):
            log.warning("!!! %s", line)
        return True
    print(f"helixgate: refusing to serve {host} without access control: anyone who can reach it could read, write "
          f"and convert health data. Set {SETTINGS_HINT}; or bind to 127.0.0.1; or pass --insecure-no-auth for a "
          "lab. Nothing was started.", file=sys.stderr)
    return False


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
