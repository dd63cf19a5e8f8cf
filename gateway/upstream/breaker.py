"""A circuit breaker: after `threshold` consecutive failures the upstream is left alone for `cooldown` seconds,
then one trial request decides whether it is back (half-open)."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """closed → (threshold consecutive failures) → open → (cooldown) → half-open → success: closed / failure: open."""

    def __init__(self, threshold: int = 5, cooldown: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        """Whether a request may go now; in half-open state only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._trial:
            self._trial = True
            return True
        return False

    def retry_in(self) -> float:
        """Seconds until the breaker lets a trial through (0 when closed)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def failure(self) -> None:
        self._failures += 1
        self._trial = False
        if self._opened_at is not None or self._failures >= self.threshold:
            self._opened_at = self._clock()
