"""Configuration, read once at the edge from HELIXGATE_* environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """Raised when an environment variable holds a value that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None  # None: the embedded in-process LRU cache
    cache_ttl_seconds: int = 7 * 24 * 3600
    cache_max_entries: int = 2048
    max_request_bytes: int = 10 * 1024 * 1024
    v2_timezone: str | None = None  # '+HH:MM' assumed for HL7 v2 times without a zone

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def integer(name: str, default: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not an integer") from None
            if value < 0:
                raise SettingsError(f"{name}={raw!r} must not be negative")
            return value

        tz = env.get("HELIXGATE_V2_TIMEZONE") or None
        if tz is not None:
            tz = check_timezone(tz, "HELIXGATE_V2_TIMEZONE")
        d = cls()
        return cls(
            host=env.get("HELIXGATE_HOST", d.host),
            port=integer("HELIXGATE_PORT", d.port),
            redis_url=env.get("HELIXGATE_REDIS_URL") or None,
            cache_ttl_seconds=integer("HELIXGATE_CACHE_TTL", d.cache_ttl_seconds),
            cache_max_entries=integer("HELIXGATE_CACHE_MAX_ENTRIES", d.cache_max_entries),
            max_request_bytes=integer("HELIXGATE_MAX_REQUEST_BYTES", d.max_request_bytes),
            v2_timezone=tz,
        )


def check_timezone(value: str, name: str = "time zone") -> str:
    """'+08:00', '-05:00' or 'Z' (→ '+00:00'); raises SettingsError otherwise."""
    if value in ("Z", "z", "UTC"):
        return "+00:00"
    if not re.fullmatch(r"[+-](0\d|1[0-4]):[0-5]\d", value):
        raise SettingsError(f"{name} {value!r} must look like +08:00, -05:00 or Z")
    return value
