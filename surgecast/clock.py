"""Clocks injected into the pipeline and scheduler (no hidden ``now()`` calls in the maths)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

__all__ = ["Clock", "accelerated_clock", "system_clock"]

Clock = Callable[[], pd.Timestamp]


def system_clock() -> pd.Timestamp:
    """The wall clock in UTC."""
    return pd.Timestamp.now(tz="UTC")


def accelerated_clock(speed: float, origin: pd.Timestamp | None = None) -> Clock:
    """A clock that runs ``speed`` times faster than the wall clock from ``origin`` (demos).

    At construction the simulated time equals ``origin`` (default: now); each real second then
    advances it by ``speed`` seconds.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    start_real = time.monotonic()
    start_sim = origin if origin is not None else system_clock()

    def now() -> pd.Timestamp:
        return start_sim + pd.Timedelta(seconds=(time.monotonic() - start_real) * speed)

    return now
