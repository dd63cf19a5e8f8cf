"""A TOML configuration file that mirrors the HELIXGATE_* environment variables.

Every key names a variable without its prefix, in lower case; a table is a prefix: `port = 8080` is HELIXGATE_PORT,
`[mllp] port = 2575` is HELIXGATE_MLLP_PORT. A setting whose value is JSON (HELIXGATE_RATE_LIMITS,
HELIXGATE_MLLP_ACK_CODES, ...) takes a TOML table or array, written out as JSON. Variables set in the environment win
over the file, so a deployment can keep one file and override a value per host. Unknown keys are errors (with the
nearest known name), since a misspelt setting silently left at its default is how outages start.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import MutableMapping
from functools import cache
from pathlib import Path
from typing import Any

PREFIX = "HELIXGATE_"
ENV = "HELIXGATE_CONFIG"  # the file's path, when not given by --config


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the key."""


@cache
def known_variables() -> frozenset[str]:
    """Every HELIXGATE_* name the code reads: collected from the sources, so a new setting needs no list kept."""
    root = Path(__file__).resolve().parent.parent
    names: set[str] = set()
    pattern = re.compile(r"HELIXGATE_[A-Z0-9_]*[A-Z0-9]")
    for package in ("gateway", "mappers", "profiles", "conformance"):
        for path in (root / package).rglob("*.py"):
            names.update(pattern.findall(path.read_text(encoding="utf-8", errors="replace")))
    return frozenset(names - {ENV})


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _flatten(table: dict[str, Any], prefix: str, known: frozenset[str], out: dict[str, str], where: str) -> None:
    for key, value in table.items():
        name = f"{prefix}{key.upper().replace('-', '_')}"
        place = f"{where}.{key}" if where else key
        if name in known:
            out[name] = _text(value)
        elif isinstance(value, dict):
            _flatten(value, name + "_", known, out, place)
        else:
            near = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {near[0][len(PREFIX):].lower()!r}?" if near else ""
            raise ConfigError(f"unknown setting {place!r} (it would be {name}){hint}")


def read(path: str | Path) -> dict[str, str]:
    """The variables a configuration file sets, by name. Raises ConfigError saying what to fix."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not TOML: {e}") from None
    out: dict[str, str] = {}
    try:
        _flatten(doc, PREFIX, known_variables(), out, "")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return out


def apply(path: str | Path, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set the file's variables that the environment does not already set; returns the names taken from the file."""
    environ = os.environ if environ is None else environ
    taken = []
    for name, value in read(path).items():
        if name not in environ:
            environ[name] = value
            taken.append(name)
    return taken
