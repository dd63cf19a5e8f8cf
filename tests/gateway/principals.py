"""The real gateway on a loopback port with auth on: API keys from a key store made for the test (gateway.auth.keys),
so requests carry real credentials and the auth middleware puts their Principal and access class in the scope.
Tests of what acts for a client (bulk ownership, rate limits, the audit agent) use it; the credential checks
themselves are tested in tests/auth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.auth.config import AuthConfig
from gateway.auth.keys import KeyStore
from gateway.settings import Settings
from tests.conftest import ServedApp

OPERATIONS = ["system/$convert", "system/$validate", "system/$translate", "system/*.cruds"]


class KeyedApp(ServedApp):
    """create_app(settings) with API keys for `clients` (name → scopes; default: every operation and resource) on a
    loopback port; `clients=None` runs it with auth off. A context manager, like tests.conftest.ServedApp."""

    def __init__(self, settings: Settings, folder: Path | None = None,
                 clients: dict[str, list[str]] | None = None, same_keys: KeyedApp | None = None,
                 oauth: bool = False) -> None:
        self.keys: dict[str, str] = {}
        auth = AuthConfig(oauth=oauth)  # oauth: bearer tokens too, as the HELIXGATE_OAUTH_* environment says
        if same_keys is not None:  # another server process of the same deployment: the same key store
            self.keys, auth = same_keys.keys, same_keys.app.state.auth.config
        elif clients is not None:
            assert folder is not None
            store = KeyStore(folder / "keys.json")
            expires = datetime.now(UTC) + timedelta(hours=1)
            for name, scopes in clients.items():
                self.keys[name], _ = store.create(name, scopes or OPERATIONS, expires)
            auth = AuthConfig(api_keys_file=str(store.path), oauth=oauth)
        super().__init__(settings, auth)

    def auth(self, name: str) -> dict[str, str]:
        """The headers of a request by client `name`."""
        return {"Authorization": f"ApiKey {self.keys[name]}"}
