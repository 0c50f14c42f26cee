"""Sampling step and season length of a series: pure helpers.

Example:
    >>> import pandas as pd
    >>> ds = pd.date_range("2026-01-01", periods=5, freq="1min", tz="UTC")
    >>> step = infer_step(ds)
    >>> step, season_length(step)
    (Timedelta('0 days 00:01:00'), 1440)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from models._frames import median_step_ns
from models.errors import InsufficientHistoryError

__all__ = ["infer_step", "season_length"]


def infer_step(ds: Iterable[Any] | pd.Series | pd.Index | np.ndarray) -> pd.Timedelta:
    """Return the sampling step of ``ds``: the median of the positive gaps between timestamps.

    The median makes it robust to missing points (a few long gaps) and to jitter; duplicates and
    order do not matter.

    Args:
        ds: timestamps (datetime-like values, a Series, an Index or an array).

    Raises:
        InsufficientHistoryError: fewer than two distinct timestamps.

    Example:
        >>> import pandas as pd
        >>> ds = pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:05", "2026-01-01 00:20",
        ...                      "2026-01-01 00:25"], utc=True)
        >>> infer_step(ds)
        Timedelta('0 days 00:05:00')
    """
    index = pd.DatetimeIndex(pd.to_datetime(pd.Index(ds), utc=True)).as_unit("ns")
    step = median_step_ns(np.sort(index.asi8))
    if step == 0:
        raise InsufficientHistoryError(
            f"cannot infer the sampling step from {index.nunique()} distinct timestamp(s); "
            "pass at least two points per series"
        )
    return pd.Timedelta(step, unit="ns")


def season_length(step: pd.Timedelta | str, period: pd.Timedelta | str = "1D") -> int:
    """Return how many steps make one ``period`` (the season length in points).

    Args:
        step: the sampling step (see :func:`infer_step`).
        period: the seasonal period, one day by default.

    Raises:
        ValueError: ``step`` or ``period`` is not positive, or ``period`` is not a whole number
            of steps (a seasonal model on such a grid would drift).

    Example:
        >>> season_length("15min"), season_length("1h", period="7D")
        (96, 168)
    """
    step_td, period_td = pd.Timedelta(step), pd.Timedelta(period)
    if step_td <= pd.Timedelta(0):
        raise ValueError(f"step must be positive, got {step_td}")
    if period_td < step_td:
        raise ValueError(f"period ({period_td}) must be at least one step ({step_td})")
    n, rest = divmod(period_td.value, step_td.value)
    if rest:
        raise ValueError(
            f"period {period_td} is not a whole number of steps of {step_td} "
            f"({period_td / step_td:.3f}); resample the series or pass season_length explicitly"
        )
    return int(n)
