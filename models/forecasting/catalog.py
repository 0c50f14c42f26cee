"""The forecasters ``auto`` and the service's retraining choose from, by name.

One table, so the CLI's ``auto``, the daily retrain and the tick build the same models from the
same names (a registry entry records the name; the tick rebuilds it from here).
"""

from __future__ import annotations

from collections.abc import Callable

from models.base import Forecaster
from models.forecasting.ets import ETS
from models.forecasting.mstl import MSTLForecaster
from models.forecasting.seasonal_mean import SeasonalMean
from models.forecasting.seasonal_naive import SeasonalNaive

__all__ = ["AUTO_CANDIDATES", "CATALOG", "build"]

CATALOG: dict[str, Callable[[], Forecaster]] = {
    "seasonal_naive": SeasonalNaive,
    "seasonal_naive_7d": lambda: SeasonalNaive(period="7D"),
    "seasonal_mean_7d": lambda: SeasonalMean(period="7D", k=3, agg="mean"),
    "seasonal_mean_1d": lambda: SeasonalMean(period="1D", k=7, agg="median"),
    "mstl": MSTLForecaster,
    "ets": ETS,
}

#: what ``auto`` backtests (ETS is left out: slow, and its wins did not hold out of sample)
AUTO_CANDIDATES = ("seasonal_naive", "seasonal_naive_7d", "seasonal_mean_7d", "seasonal_mean_1d", "mstl")


def build(name: str) -> Forecaster:
    """A new, unfitted forecaster called ``name``.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
    """
    try:
        return CATALOG[name]()
    except KeyError:
        raise KeyError(f"unknown forecaster {name!r}; known: {', '.join(sorted(CATALOG))}") from None
