"""Fixtures of the kit's tests: any ASGI app served on loopback, and the reference and hostile targets."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import ASGIApp

from tests.conformance.servers import ReferenceServer, hostile_app
from tests.conftest import free_port


@contextlib.contextmanager
def served(app: ASGIApp) -> Iterator[str]:
    """Serve `app` on a free loopback port; yields its base URL (no /fhir)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(250):
        if server.started:
            break
        time.sleep(0.02)
    else:
        raise RuntimeError("test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def reference_fhir() -> Iterator[str]:
    """A conformant in-memory Genomics FHIR server; yields its FHIR base URL."""
    with served(ReferenceServer().app()) as url:
        yield url + "/fhir"


@pytest.fixture(scope="session")
def hostile_fhir() -> Iterator[str]:
    with served(hostile_app()) as url:
        yield url + "/fhir"
