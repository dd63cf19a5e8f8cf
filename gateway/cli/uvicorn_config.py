"""uvicorn's Config with the MLLP socket `helixgate serve` bound (imported only by serve: uvicorn is heavy)."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from gateway.mllp import listen


class GatewayConfig(uvicorn.Config):
    """uvicorn's Config carrying the MLLP socket into each server process (pickled with it under `--workers`:
    multiprocessing duplicates the descriptor, as uvicorn does for the HTTP socket)."""

    def __init__(self, app: Any, *, mllp_socket: socket.socket | None = None, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.mllp_socket = mllp_socket

    def load(self) -> None:
        listen.adopt(self.mllp_socket)  # before the app (and its lifespan, which starts the listener) exists
        super().load()
