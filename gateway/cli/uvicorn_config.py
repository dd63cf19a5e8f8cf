"""uvicorn's Config with the MLLP socket `helixgate serve` bound and the gateway's TLS (imported only by serve and
tests that serve: uvicorn is heavy)."""

from __future__ import annotations

import asyncio
import functools
import socket
from typing import Any

import uvicorn

from gateway.auth.certs import CERT_KEY, identity_from_der
from gateway.mllp import listen
from gateway.tls import TlsConfig, server_context, tls_extension


class GatewayConfig(uvicorn.Config):
    """uvicorn's Config carrying the MLLP socket into each server process (pickled with it under `--workers`:
    multiprocessing duplicates the descriptor, as uvicorn does for the HTTP socket), and the HTTP listener's TLS.

    With `tls`, each process builds the SSLContext itself (an SSLContext cannot be pickled) from the gateway's own
    settings rather than uvicorn's ssl_* options, whose default cipher string still admits CBC suites, and serves
    HTTP through a protocol that tells the app about the connection's TLS (see `with_peer_certificate`)."""

    def __init__(self, app: Any, *, mllp_socket: socket.socket | None = None, tls: TlsConfig | None = None,
                 **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.mllp_socket = mllp_socket
        self.tls = tls

    def configure_logging(self) -> None:
        """uvicorn's loggers, then the gateway's in each server process `helixgate serve` starts (it puts the chosen
        level in HELIXGATE_LOG_LEVEL for them); an embedding program's own logging is left alone."""
        super().configure_logging()
        import os

        if os.environ.get("HELIXGATE_LOG_LEVEL"):
            from gateway import logconfig

            logconfig.configure()

    def load(self) -> None:
        listen.adopt(self.mllp_socket)  # before the app (and its lifespan, which starts the listener) exists
        super().load()
        if self.tls is not None:
            self.ssl = server_context(self.tls)
            self.http_protocol_class = with_peer_certificate(self.http_protocol_class)


@functools.cache
def with_peer_certificate(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """`base` (uvicorn's httptools or h11 protocol) adding to each request's scope what the TLS handshake
    established: the ASGI TLS extension `scope["extensions"]["tls"]`, and the verified client certificate's
    CertIdentity under `gateway.auth.certs.CERT_KEY` (read by `client_certificate(scope)`).

    uvicorn builds scopes without either; its protocols call `self.app(scope, ...)` for every request on the
    connection, so the connection's facts are attached by wrapping `self.app` once, when the connection is made
    (the handshake is over by then). The certificate is parsed once per connection, not per request."""

    class PeerCertificate(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is None:
                return
            der = ssl_object.getpeercert(binary_form=True)
            identity = identity_from_der(der) if der else None
            extension = tls_extension(ssl_object, der, identity.subject_text if identity else None)
            app = self.app

            async def with_tls(scope: Any, receive: Any, send: Any) -> None:
                scope.setdefault("extensions", {})["tls"] = extension
                if identity is not None:
                    scope[CERT_KEY] = identity
                await app(scope, receive, send)

            self.app = with_tls

    PeerCertificate.__name__ = PeerCertificate.__qualname__ = f"PeerCertificate{base.__name__}"
    return PeerCertificate
