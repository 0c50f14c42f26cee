"""Forecasts of the models the retrain job chose, refitted every few minutes.

The retrain job registers, per series, the name of the forecaster (or ensemble) that won its
backtest. The tick rebuilds it from :mod:`models.forecasting.catalog`, fits it on the recent
history, and forecasts far enough ahead to serve until the next refit; between refits it slices
the cached forecast from ``now``. If the chosen model fails, the seasonal-naive floor takes its
place for that tick and the failure is reported (``model`` says ``seasonal_naive[fallback:...]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.forecasting.catalog import build

__all__ = ["ChosenForecasts", "Choice", "combine_median"]

FLOOR = "seasonal_naive"


@dataclass(frozen=True)
class Choice:
    """A registry decision: the model's name and the catalogue members it is made of."""

    name: str
    members: tuple[str, ...]
    version: str = ""


@dataclass
class _Cached:
    choice: Choice
    fitted_at: pd.Timestamp
    forecast: pd.DataFrame


def combine_median(forecasts: list[pd.DataFrame]) -> pd.DataFrame:
    """Median of several forecasts of one series, point by point (bounds kept ordered)."""
    if len(forecasts) == 1:
        return forecasts[0].copy()
    base = forecasts[0][["unique_id", "ds"]].reset_index(drop=True)
    out = base.copy()
    for col in ("yhat", "yhat_lower", "yhat_upper"):
        stacked = np.vstack([f[col].to_numpy(dtype=float) for f in forecasts])
        out[col] = np.median(stacked, axis=0)
    out["yhat_lower"] = np.minimum(out["yhat_lower"], out["yhat"])
    out["yhat_upper"] = np.maximum(out["yhat_upper"], out["yhat"])
    if "level" in forecasts[0]:
        out["level"] = forecasts[0]["level"].to_numpy()
    return out


class ChosenForecasts:
    """Per series: fit the chosen model every ``refit``, slice its forecast every tick."""

    def __init__(self, refit: pd.Timedelta) -> None:
        self.refit = refit
        self._cache: dict[str, _Cached] = {}

    def forecast(
        self,
        choice: Choice,
        history: pd.DataFrame,
        now: pd.Timestamp,
        horizon: int,
        step: pd.Timedelta,
        level: float,
    ) -> tuple[pd.DataFrame, str | None]:
        """The forecast over the next ``horizon`` steps from ``now`` and a failure note (or None).

        Raises:
            Exception: whatever the floor raises when even it cannot forecast.
        """
        uid = str(history["unique_id"].iloc[0])
        if choice.members == (FLOOR,):
            # the floor is cheap and must follow the data every tick
            return self._fit(choice, history, horizon, level), None
        cached = self._cache.get(uid)
        failure = None
        if cached is None or cached.choice != choice or cached.fitted_at > now or (
            now - cached.fitted_at >= self.refit
        ):
            ahead = horizon + int(np.ceil(self.refit / step))
            try:
                cached = _Cached(choice, now, self._fit(choice, history, ahead, level))
                self._cache[uid] = cached
            except Exception as exc:
                self._cache.pop(uid, None)
                failure = f"{choice.name}: {type(exc).__name__}: {exc}"
                floor = self._fit(Choice(FLOOR, (FLOOR,)), history, horizon, level)
                floor["model"] = f"{FLOOR}[fallback:{choice.name}]"
                return floor, failure
        window = cached.forecast
        return window[window["ds"] >= now].head(horizon).reset_index(drop=True), failure

    @staticmethod
    def _fit(choice: Choice, history: pd.DataFrame, horizon: int, level: float) -> pd.DataFrame:
        forecasts = [build(m).fit(history).predict(horizon, level) for m in choice.members]
        out = combine_median(forecasts)
        out["model"] = choice.name
        return out
