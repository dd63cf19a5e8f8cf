"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: NUL-separated JSON on
fds 3 and 4), to open a page and collect what went wrong in it: console errors, uncaught exceptions, log errors
(e.g. Content-Security-Policy violations) and any network request that is not the page itself."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import tempfile
import time
from typing import Any

import orjson

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--remote-debugging-pipe")


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def find_chromium() -> str | None:
    return next((p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))), None)


class Browser:
    """One Chromium process with one page; `problems` lists what the page reported as errors."""

    def __init__(self, binary: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="helixgate-chromium-")
        # Every fd the child gets is first moved to >= 10, so no dup2 onto 3 or 4 can clobber another source.
        to_child, self._out = map(_high, os.pipe())  # we write commands, Chromium reads them on fd 3
        self._in, from_child = map(_high, os.pipe())  # Chromium writes answers on fd 4
        log = _high(os.open(os.path.join(self.profile, "stderr.log"), os.O_WRONLY | os.O_CREAT, 0o600))
        actions = [(os.POSIX_SPAWN_DUP2, to_child, 3), (os.POSIX_SPAWN_DUP2, from_child, 4),
                   (os.POSIX_SPAWN_DUP2, log, 2), (os.POSIX_SPAWN_DUP2, log, 1)]
        self.pid = os.posix_spawn(binary, [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                  os.environ, file_actions=actions)
        for fd in (to_child, from_child, log):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._out, orjson.dumps(msg) + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == msg["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {self.timeout} s")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (see its stderr.log in the profile)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return orjson.loads(raw)

    def wait_event(self, method: str) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while True:
            ev = self._read()
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self, page_url: str) -> list[str]:
        out = []
        for ev in self.events:
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('exception', {}).get('description') or p}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')}")
            elif method == "Network.requestWillBeSent" and p["request"]["url"] not in (page_url, "about:blank"):
                out.append(f"network request: {p['request']['url']}")
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._out, orjson.dumps({"id": 0, "method": "Browser.close"}) + b"\0")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            time.sleep(0.05)
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)
