"""Logging for the server and workers: level and format from HELIXGATE_LOG_LEVEL and HELIXGATE_LOG_FORMAT.

- HELIXGATE_LOG_LEVEL: debug, info (default), warning, error.
- HELIXGATE_LOG_FORMAT: text (default: `time LEVEL logger: message`) or json (one object per line: time, level,
  logger, message, and the access log's fields — method, route, status, duration_ms, bytes, client).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from gateway.settings import SettingsError

LEVELS = ("debug", "info", "warning", "error")
HANDLER = "helixgate"  # the name of the handler configure() installs
FORMATS = ("text", "json")


TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Clock:
    """A record's time as text, its seconds formatted once per second (strftime and datetime cost more than the
    rest of a line)."""

    def __init__(self, seconds: Callable[[int], str], stamp: str) -> None:
        self._seconds, self._stamp = seconds, stamp
        self._last = (-1, "")  # one attribute: threads that log read a second and its text that belong together

    def __call__(self, created: float) -> str:
        whole = int(created)
        second, text = self._last
        if whole != second:
            text = self._seconds(whole)
            self._last = (whole, text)
        return self._stamp % (text, int((created - whole) * 1000))  # the milliseconds of LogRecord.msecs


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, the time as logging.Formatter writes it (local time, milliseconds)."""

    def __init__(self) -> None:
        super().__init__(TEXT)
        self.clock = _Clock(lambda s: time.strftime(self.default_time_format, time.localtime(s)), "%s,%03d")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.clock(record.created)


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock(lambda s: datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S"), "%s.%03d+00:00")

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": self.clock(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            doc.update(http)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class GatewayHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure() installs: each record a line of text or JSON.

    `later` takes an INFO line without a LogRecord (the access log's line a request) and writes it with the others
    that came within FLUSH_SECONDS, in one write — nginx's buffered access_log: a record and a write a request cost
    more than the rest of a cached request's middleware. A record written meanwhile writes the waiting lines first
    (the order holds); so do flush() and logging.shutdown() at exit. A process killed outright loses at most the
    last FLUSH_SECONDS of lines."""

    FLUSH_SECONDS = 0.05
    MAX_WAITING = 1024  # lines; then written at once

    def __init__(self, stream: TextIO, fmt: str) -> None:
        super().__init__(stream)
        self.own: TextFormatter | JsonFormatter = JsonFormatter() if fmt == "json" else TextFormatter()
        self.setFormatter(self.own)
        self.set_name(HANDLER)
        # (time, logger, args, message, fields): deque's append and popleft are safe across threads (several loops)
        self._waiting: deque[tuple[float, str, tuple[Any, ...], Callable[..., str], Callable[..., dict[str, Any]]]]
        self._waiting = deque()
        self._due_in: asyncio.AbstractEventLoop | None = None  # the loop that will write the waiting lines

    def later(self, logger: str, args: tuple[Any, ...], message: Callable[..., str],
              fields: Callable[..., dict[str, Any]]) -> None:
        """An INFO line of `logger` as of now, written within FLUSH_SECONDS: its message is `message(*args)` and,
        as JSON, its fields `fields(*args)` (what a record's `http` extra carries)."""
        waiting = self._waiting
        waiting.append((time.time(), logger, args, message, fields))
        if len(waiting) >= self.MAX_WAITING:
            self.flush()
        elif self._due_in is None or self._due_in.is_closed():  # none due, or due in a loop that has ended
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop to come back: now
                self.flush()
                return
            loop.call_later(self.FLUSH_SECONDS, self._due)
            self._due_in = loop

    def _due(self) -> None:
        self._due_in = None  # before the lines are taken: one added meanwhile schedules its own turn
        self.flush()

    def _lines(self) -> str:
        own, out = self.own, []
        waiting = self._waiting
        as_json = isinstance(own, JsonFormatter)
        for _ in range(len(waiting)):
            created, logger, args, message, fields = waiting.popleft()
            if as_json:
                out.append(orjson.dumps({"time": own.clock(created), "level": "info", "logger": logger,
                                         "message": message(*args), **fields(*args)}, default=str).decode())
            else:
                out.append(f"{own.clock(created)} INFO {logger}: {message(*args)}")
        out.append("")
        return self.terminator.join(out)

    def emit(self, record: logging.LogRecord) -> None:
        if self._waiting:  # the lines that came first, first
            self.flush()
        super().emit(record)

    def flush(self) -> None:
        self.acquire()
        try:
            if self._waiting and self.stream:
                try:
                    self.stream.write(self._lines())
                except Exception:  # as logging does with a record it cannot write (stderr closed, …)
                    self.handleError(logging.LogRecord(HANDLER, logging.INFO, "", 0, "access lines", None, None))
            super().flush()
        finally:
            self.release()


def sole_handler(logger: logging.Logger) -> GatewayHandler | None:
    """The gateway's handler when an INFO record of `logger` would reach it and nothing else — no other handler, no
    filter, its own formatter (what configure() sets up) — else None, and such records go through logging."""
    found = None
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters:
            return None
        for handler in node.handlers:
            if handler.level > logging.INFO:  # skipped by logging too
                continue
            if (found is not None or type(handler) is not GatewayHandler or handler.filters
                    or handler.formatter is not handler.own):
                return None
            found = handler
        node = node.parent if node.propagate else None
    return found


def chosen(env: Mapping[str, str] | None = None, level: str | None = None) -> tuple[str, str]:
    """(level, format) from the arguments or the environment; SettingsError names a bad value."""
    env = os.environ if env is None else env
    level = (level or env.get("HELIXGATE_LOG_LEVEL") or "info").strip().lower()
    fmt = (env.get("HELIXGATE_LOG_FORMAT") or "text").strip().lower()
    if level not in LEVELS:
        raise SettingsError(f"HELIXGATE_LOG_LEVEL={level!r}: use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise SettingsError(f"HELIXGATE_LOG_FORMAT={fmt!r}: use text or json")
    return level, fmt


def configure(level: str | None = None, env: Mapping[str, str] | None = None) -> None:
    """Set up the root logger (to stderr). `level` (a command-line flag) overrides HELIXGATE_LOG_LEVEL."""
    level, fmt = chosen(env, level)
    handler = GatewayHandler(sys.stderr, fmt)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER]:  # ours from before; others' stay
        old.flush()
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Neither format shows the caller, thread or process, so records need not compute them (the logging HOWTO's
    # "Optimization": a few µs of every access line)
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs, queries included (PHI)
