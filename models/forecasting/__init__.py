"""Forecasters: fit on a long series frame, predict a forecast frame with intervals."""

from models.forecasting.ets import ETS
from models.forecasting.mstl import MSTLForecaster
from models.forecasting.seasonal_naive import SeasonalNaive

__all__ = ["ETS", "MSTLForecaster", "SeasonalNaive"]
