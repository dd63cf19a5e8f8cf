"""Version ordering and the rule that picks a stand-in when a pinned dependency version is published nowhere."""

from __future__ import annotations

from collections.abc import Iterable

from profiles import patterns

_WILDCARD = patterns.compile(r"^\d+(\.(\d+|x|\*))*$")


def is_wildcard(version: str) -> bool:
    """`1.0.x`, `2.*`: a range some packages pin instead of a version."""
    return bool(_WILDCARD.match(version)) and ("x" in version or "*" in version)


def version_key(version: str) -> tuple[tuple[int, ...], int, tuple[tuple[int, int, str], ...]]:
    """Semver-like order: 1.2.10 > 1.2.9, and a release sorts above its pre-releases (5.3.0 > 5.3.0-ballot-tc1)."""
    main, _, pre = version.split("+", 1)[0].partition("-")
    numbers = tuple(int(p) if p.isdigit() else 0 for p in main.split("."))
    parts = pre.replace("-", ".").split(".") if pre else []
    pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)
    return numbers, 0 if pre else 1, pre_key


def major(version: str) -> str:
    return version.split(".", 1)[0]


def newest(versions: Iterable[str]) -> str | None:
    """The highest release; pre-releases only count when there is no release at all."""
    pool = list(versions)
    releases = [v for v in pool if "-" not in v]
    return max(releases or pool, key=version_key) if pool else None


def substitute(pinned: str, available: Iterable[str]) -> str | None:
    """The version to use when `pinned` is not published: for a wildcard pin (`1.0.x`) the newest match; otherwise
    the newest with the same major version, else the newest of all. None when nothing is published."""
    available = list(available)
    if is_wildcard(pinned):
        prefix = [p for p in pinned.split(".") if p not in ("x", "*")]
        matching = [v for v in available if v.split("-", 1)[0].split(".")[: len(prefix)] == prefix]
        if matching:
            return newest(matching)
    return newest(v for v in available if major(v) == major(pinned)) or newest(available)
