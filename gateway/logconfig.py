"""Logging for the server and workers: level and format from HELIXGATE_LOG_LEVEL and HELIXGATE_LOG_FORMAT.

- HELIXGATE_LOG_LEVEL: debug, info (default), warning, error.
- HELIXGATE_LOG_FORMAT: text (default: `time LEVEL logger: message`) or json (one object per line: time, level,
  logger, message, and the access log's fields — method, route, status, duration_ms, bytes, client).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

import orjson

from gateway.settings import SettingsError

LEVELS = ("debug", "info", "warning", "error")
HANDLER = "helixgate"  # the name of the handler configure() installs
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name(HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER]:  # ours from before; others' stay
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Neither format shows the caller, thread or process, so records need not compute them (the logging HOWTO's
    # "Optimization": a few µs of every access line)
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs, queries included (PHI)
