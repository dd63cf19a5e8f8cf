"""A loopback authorization server's key endpoint the test controls: discovery metadata plus a JWKS whose keys,
status and Cache-Control the test sets, counting requests. Tokens a real AS will not issue (expired, not yet valid,
other issuer, rotated keys) are signed here with the test's own keys and checked against this server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.auth.oidc import ClientKey


class KeyServer:
    def __init__(self) -> None:
        self.keys: list[ClientKey] = []
        self.extra_jwks: list[dict[str, Any]] = []  # raw JWKs served besides `keys`
        self.jwks_status = 200
        self.cache_control: str | None = None
        self.metadata_issuer: str | None = None  # None: its own URL
        self.counts: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.counts[path] = server.counts.get(path, 0) + 1
                if path == "/.well-known/openid-configuration":
                    self._json(200, {"issuer": server.metadata_issuer or server.issuer,
                                     "jwks_uri": f"{server.issuer}/jwks", "token_endpoint": f"{server.issuer}/token"})
                elif path == "/jwks":
                    body = {"keys": [k.public_jwk() for k in server.keys] + server.extra_jwks}
                    self._json(server.jwks_status, body, server.cache_control)
                else:
                    self._json(404, {"error": "not_found"})

            def _json(self, status: int, body: Any, cache_control: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if cache_control:
                    self.send_header("Cache-Control", cache_control)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> KeyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def jwks_fetches(self) -> int:
        return self.counts.get("/jwks", 0)

    def new_key(self, alg: str = "RS256") -> ClientKey:
        key = ClientKey.generate(alg)
        self.keys.append(key)
        return key

    def mint(self, key: ClientKey, audience: str, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        """An access token signed by `key`: iss = this server, the given aud, 5 minutes, typ at+jwt (claims set to
        None are left out)."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": audience, "sub": "crafted", "client_id": "crafted", "iat": now,
                "exp": now + 300, "scope": "system/*.rs", "jti": f"j{now}", **claims}
        return key.sign({k: v for k, v in body.items() if v is not None}, {"typ": "at+jwt", **(headers or {})})
