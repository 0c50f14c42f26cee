"""Retries with exponential backoff and a circuit breaker, for collectors that call out.

A source that is down must cost a tick a few seconds at most, not ``series × retries ×
timeout``: the first fetches retry with backoff, then the breaker opens and every further fetch
fails at once until ``reset_after`` has passed; one trial fetch then decides (success closes it,
failure opens it again). Time and sleeping are injected so tests run without waiting.

Example:
    >>> t = [0.0]
    >>> breaker = CircuitBreaker(failures=2, reset_after=30.0, clock=lambda: t[0])
    >>> breaker.failure("refused"); breaker.failure("refused")
    >>> breaker.state, breaker.allow()
    ('open', False)
    >>> t[0] = 31.0
    >>> breaker.allow(), breaker.state   # one trial after the cool-down
    (True, 'half-open')
    >>> breaker.success(); breaker.state
    'closed'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["CircuitBreaker", "RetryPolicy"]

BreakerState = Literal["closed", "open", "half-open"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often to retry a transient failure and how long to wait before each retry.

    Args:
        retries: retries after the first attempt (0 = try once).
        backoff: wait before the first retry, in seconds.
        factor: each further retry waits this many times longer.
        max_backoff: longest wait between two attempts, in seconds.
    """

    retries: int = 2
    backoff: float = 0.5
    factor: float = 2.0
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.factor < 1 or self.max_backoff < 0:
            raise ValueError(
                f"RetryPolicy needs retries >= 0, backoff >= 0, factor >= 1 and max_backoff >= 0, "
                f"got {self}"
            )

    def delays(self) -> list[float]:
        """The waits before each retry, e.g. ``[0.5, 1.0]`` for two retries.

        Example:
            >>> RetryPolicy(retries=3, backoff=1, factor=2, max_backoff=3).delays()
            [1.0, 2.0, 3.0]
        """
        return [
            float(min(self.backoff * self.factor**i, self.max_backoff)) for i in range(self.retries)
        ]


class CircuitBreaker:
    """Opens after ``failures`` consecutive failed fetches; lets one trial through after
    ``reset_after`` seconds (half-open); closes on the first success.

    Args:
        failures: consecutive failures (each after its retries) that open the breaker.
        reset_after: seconds the breaker stays open before a trial fetch is allowed.
        clock: monotonic seconds (injected in tests).
    """

    def __init__(
        self,
        failures: int = 3,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or reset_after < 0:
            raise ValueError(
                f"CircuitBreaker needs failures >= 1 and reset_after >= 0, got {failures}, "
                f"{reset_after}"
            )
        self.failures = failures
        self.reset_after = reset_after
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial = False
        self.last_error: str | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._trial else "open"

    def retry_in(self) -> float:
        """Seconds until a trial fetch is allowed (0 when closed or due)."""
        if self._opened_at is None:
            return 0.0
        return max(self._opened_at + self.reset_after - self._clock(), 0.0)

    def allow(self) -> bool:
        """May a fetch go out now? While open, only one trial once the cool-down is over."""
        if self._opened_at is None:
            return True
        if self._trial:
            return False  # a trial is in flight (single-threaded: its outcome comes next)
        if self.retry_in() <= 0:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        """A fetch reached the source: close."""
        self._consecutive = 0
        self._opened_at = None
        self._trial = False
        self.last_error = None

    def failure(self, error: str) -> None:
        """A fetch failed after its retries: count it, open (again) at the threshold."""
        self.last_error = error
        self._consecutive += 1
        if self._trial or self._consecutive >= self.failures:
            self._opened_at = self._clock()
        self._trial = False
