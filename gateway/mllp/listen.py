"""Listening sockets bound before anything starts, so `helixgate serve` starts both its listeners or neither.

`helixgate serve` binds the HTTP and the MLLP socket itself, then hands the MLLP one to the app (`adopt`): with
`--workers N` the same socket reaches every process (uvicorn passes the HTTP one the same way), so the processes
share one accept queue without SO_REUSEPORT. Without SO_REUSEPORT a second gateway on the same port fails to bind
instead of silently taking part of the traffic; it is set only when asked for (HELIXGATE_MLLP_REUSE_PORT=1).
"""

from __future__ import annotations

import socket

_adopted: socket.socket | None = None


def bind(host: str, port: int, *, reuse_port: bool = False, backlog: int = 128) -> socket.socket:
    """A listening, non-blocking TCP socket on host:port. Raises OSError (e.g. EADDRINUSE) when it cannot bind."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # SO_REUSEADDR only skips TIME_WAIT leftovers of a previous run; a live listener still makes bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def adopt(sock: socket.socket | None) -> None:
    """Make `sock` the MLLP socket this process's app serves (instead of binding its own)."""
    global _adopted
    _adopted = sock


def adopted() -> socket.socket | None:
    return _adopted
