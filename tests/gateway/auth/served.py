"""A real gateway on a loopback port with API keys made for the test (create_app(settings, auth=...) under uvicorn)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from gateway.app import create_app
from gateway.auth.config import AuthConfig
from gateway.auth.keys import KeyStore
from gateway.settings import Settings
from tests.conftest import free_port


@dataclass(frozen=True)
class Client:
    scopes: list[str]
    patient: str | None = None


class AuthServed:
    """The gateway with one API key per client (name → Client); `keys[name]` is the key, `auth(name)` its header."""

    def __init__(self, settings: Settings, folder: Path, clients: dict[str, Client],
                 token_url: str | None = None) -> None:
        self.store = KeyStore(folder / "keys.json")
        expires = datetime.now(UTC) + timedelta(hours=1)
        self.keys = {name: self.store.create(name, c.scopes, expires, patient=c.patient)[0]
                     for name, c in clients.items()}
        self.port = free_port()
        # token_url: announce OAuth (no issuer is configured, so bearer tokens are refused: discovery only)
        self.app = create_app(settings, auth=AuthConfig(api_keys_file=str(self.store.path), oauth=bool(token_url),
                                                        token_url=token_url))
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.keys[name]}"}

    def __enter__(self) -> AuthServed:
        self.thread.start()
        for _ in range(300):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("gateway did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
