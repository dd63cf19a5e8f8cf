"""The registry of checks: suites (data) name a check, and the check (code) is registered here by that name.

    @check("read-resource")
    def read_resource(ctx: Context) -> str | None:
        ...  # raise CheckFailed / CheckSkipped / TargetError, or return a short pass message
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.context import Context

Check = Callable[["Context"], "str | None"]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    """Register the decorated function as the check `name`; a second function under one name is a bug."""

    def register(fn: Check) -> Check:
        if name in CHECKS and CHECKS[name] is not fn:
            raise ValueError(f"check {name!r} is registered twice ({CHECKS[name].__module__}, {fn.__module__})")
        CHECKS[name] = fn
        return fn

    return register
