"""Seasonal mean / median: each future point is the average of the last ``k`` same-phase values.

With ``period="7D"`` this is "the mean of the last k same weekdays at this time of day", the
forecast that wins on traffic with a weekly rhythm (weekends differ from weekdays), and it is
less noisy than repeating one week. With the median, one odd day (an outage, a holiday) in the
last ``k`` seasons does not leak into the forecast. Pure numpy, so fitting takes milliseconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.errors import InsufficientHistoryError
from models.forecasting._components import ComponentForecaster, Components

__all__ = ["SeasonalMean", "seasonal_mean_path", "seasonal_mean_insample"]


def _stack(values: np.ndarray, season: int, k: int) -> np.ndarray:
    """Rows ``j = 1..k``: ``values`` shifted by ``j`` seasons (NaN where it runs off the start)."""
    n = values.size
    out = np.full((k, n), np.nan)
    for j in range(1, k + 1):
        lag = j * season
        if lag < n:
            out[j - 1, lag:] = values[:-lag]
    return out


def seasonal_mean_insample(values: np.ndarray, season: int, k: int, agg: str = "mean") -> np.ndarray:
    """In-sample predictions: ``agg`` of the up to ``k`` previous same-phase values (NaN if none).

    Example:
        >>> import numpy as np
        >>> seasonal_mean_insample(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 2, 2).tolist()
        [nan, nan, 1.0, 2.0, 2.0, 3.0]
    """
    lagged = _stack(values, season, k)
    pred = np.full(values.size, np.nan)
    seen = np.isfinite(lagged).any(axis=0)
    fn = np.nanmedian if agg == "median" else np.nanmean
    pred[seen] = fn(lagged[:, seen], axis=0)
    return pred


def seasonal_mean_path(values: np.ndarray, season: int, k: int, agg: str = "mean") -> np.ndarray:
    """One season ahead: per phase, ``agg`` of the last ``k`` (or as many as exist) seasons.

    Example:
        >>> import numpy as np
        >>> seasonal_mean_path(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 2, 2).tolist()
        [4.0, 5.0]
    """
    k = max(1, min(k, values.size // season))
    table = values[values.size - k * season:].reshape(k, season)
    return np.median(table, axis=0) if agg == "median" else table.mean(axis=0)


class SeasonalMean(ComponentForecaster):
    """Average of the last ``k`` seasons of ``period``; needs one season plus one point.

    Args:
        period: the season to average over (``"7D"``: same weekday; ``"1D"``: same hour).
        k: how many past seasons to average (fewer when the history is shorter).
        agg: ``"mean"`` or ``"median"``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> ds = pd.date_range("2026-01-01", periods=24 * 3, freq="h", tz="UTC")
        >>> y = np.tile(np.arange(24.0), 3)
        >>> SeasonalMean("1D", k=2).fit(pd.DataFrame({"unique_id": "a", "ds": ds, "y": y})
        ...                             ).predict(3)["yhat"].tolist()
        [0.0, 1.0, 2.0]
    """

    name = "seasonal_mean"
    #: one season plus one point is enough (a week and a day for ``period="7D"``)
    min_seasons = 1

    def __init__(self, period: str | pd.Timedelta = "7D", k: int = 3, agg: str = "mean") -> None:
        super().__init__(period)
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if agg not in ("mean", "median"):
            raise ValueError(f"agg must be 'mean' or 'median', got {agg!r}")
        self.k, self.agg = int(k), agg

    def _params(self) -> dict[str, Any]:
        return {"period": str(self.period), "k": self.k, "agg": self.agg}

    def _fit_values(self, values: np.ndarray, season: int) -> Components:
        if values.size <= season:
            raise InsufficientHistoryError(
                f"SeasonalMean needs more than one season ({season} points); got {values.size}"
            )
        cycle = seasonal_mean_path(values, season, self.k, self.agg)
        pred = seasonal_mean_insample(values, season, self.k, self.agg)
        return Components(
            level=0.0, slope=0.0, phi=0.0, cycles=(cycle,), day_ahead_errors=values - pred
        )
