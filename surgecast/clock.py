"""Clocks injected into the pipeline and scheduler (no hidden ``now()`` calls in the maths)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

__all__ = ["AcceleratedClock", "Clock", "accelerated_clock", "system_clock"]

Clock = Callable[[], pd.Timestamp]


def system_clock() -> pd.Timestamp:
    """The wall clock in UTC."""
    return pd.Timestamp.now(tz="UTC")


@dataclass(frozen=True)
class AcceleratedClock:
    """Simulated time running ``speed`` times faster than the wall clock since ``start_real``.

    A plain value (picklable): ``surgecast run`` hands the same clock to its scheduler child.
    ``start_real`` is ``time.monotonic()``, which on Linux is one system-wide clock, so parent
    and child read the same simulated time.
    """

    speed: float
    start_sim: pd.Timestamp
    start_real: float

    def __call__(self) -> pd.Timestamp:
        return self.start_sim + pd.Timedelta(seconds=(time.monotonic() - self.start_real) * self.speed)


def accelerated_clock(speed: float, origin: pd.Timestamp | None = None) -> Clock:
    """A clock that runs ``speed`` times faster than the wall clock from ``origin`` (demos).

    At construction the simulated time equals ``origin`` (default: now); each real second then
    advances it by ``speed`` seconds.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    start_sim = origin if origin is not None else system_clock()
    return AcceleratedClock(float(speed), start_sim, time.monotonic())
