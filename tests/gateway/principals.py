"""The real gateway on a loopback port with callers of the test's choosing: `X-Test-Client: <name>` makes the
request's Principal an API-key client of that name (`X-Test-Access: <class>` sets the route's access class), the
way the auth middleware would after checking a credential. Tests of what acts for a principal (bulk ownership, rate
limits, the audit agent) use it; the credential checks themselves are tested in tests/auth."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.auth.principal import SCOPE_KEY, Principal
from gateway.settings import Settings
from tests.conftest import free_port

ACCESS_KEY = "helixgate.access"


class HeaderPrincipals:
    """ASGI wrapper: a Principal from X-Test-Client (none: ANONYMOUS, as with auth off)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            client = headers.get(b"x-test-client")
            if client:
                scope[SCOPE_KEY] = Principal(client=client.decode(), via="api-key", scopes=("system/*.cruds",))
            access = headers.get(b"x-test-access")
            if access:
                scope[ACCESS_KEY] = access.decode()
        await self.app(scope, receive, send)


class PrincipalApp:
    """The gateway app behind HeaderPrincipals on a loopback port (a context manager, like tests.conftest.ServedApp)."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.app = create_app(settings)
        config = uvicorn.Config(HeaderPrincipals(self.app), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrincipalApp:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("gateway did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def as_client(name: str, access: str | None = None) -> dict[str, str]:
    """Headers that make a request come from API-key client `name` (and, optionally, of access class `access`)."""
    return {"X-Test-Client": name, **({"X-Test-Access": access} if access else {})}
