"""A real gateway on a loopback port with API keys made for the test (create_app(settings, auth=...) under uvicorn)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.auth.config import AuthConfig
from gateway.auth.keys import KeyStore
from gateway.settings import Settings
from tests.conftest import ServedApp


@dataclass(frozen=True)
class Client:
    scopes: list[str]
    patient: str | None = None


class AuthServed(ServedApp):
    """The gateway with one API key per client (name → Client); `keys[name]` is the key, `auth(name)` its header."""

    def __init__(self, settings: Settings, folder: Path, clients: dict[str, Client],
                 token_url: str | None = None) -> None:
        self.store = KeyStore(folder / "keys.json")
        expires = datetime.now(UTC) + timedelta(hours=1)
        self.keys = {name: self.store.create(name, c.scopes, expires, patient=c.patient)[0]
                     for name, c in clients.items()}
        # token_url: announce OAuth (no issuer is configured, so bearer tokens are refused: discovery only)
        super().__init__(settings, AuthConfig(api_keys_file=str(self.store.path), oauth=bool(token_url),
                                              token_url=token_url))

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.keys[name]}"}
