"""surgecast models: forecasters and anomaly detectors over the long ``unique_id, ds, y`` frame.

A leaf package: it knows pandas and numpy, never ``surgecast``. Models are looked up by name in
:data:`FORECASTERS` and :data:`DETECTORS`.

Example:
    >>> import pandas as pd
    >>> ds = pd.date_range("2026-01-01", periods=8, freq="h", tz="UTC")
    >>> frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": [1.0, 2.0] * 4})
    >>> FORECASTERS["seasonal_naive"](season_length=2).fit(frame).predict(2)["yhat"].tolist()
    [1.0, 2.0]
"""

from models.anomaly.novelty import Novelty
from models.anomaly.robust_zscore import RobustZScore
from models.base import Detector, Forecaster
from models.errors import FrameError, InsufficientHistoryError, ModelError, NotFittedError
from models.forecasting.ets import ETS
from models.forecasting.mstl import MSTLForecaster
from models.forecasting.seasonal_events import SeasonalEvents
from models.forecasting.seasonal_mean import SeasonalMean
from models.forecasting.seasonal_naive import SeasonalNaive
from models.frequency import infer_step, season_length

__all__ = [
    "DETECTORS",
    "ETS",
    "FORECASTERS",
    "MSTLForecaster",
    "SeasonalEvents",
    "SeasonalMean",
    "Detector",
    "Forecaster",
    "FrameError",
    "InsufficientHistoryError",
    "ModelError",
    "NotFittedError",
    "Novelty",
    "RobustZScore",
    "SeasonalNaive",
    "infer_step",
    "season_length",
]

FORECASTERS: dict[str, type[Forecaster]] = {
    "ets": ETS,
    "mstl": MSTLForecaster,
    "seasonal_events": SeasonalEvents,
    "seasonal_naive": SeasonalNaive,
}
DETECTORS: dict[str, type[Detector]] = {"novelty": Novelty, "robust_zscore": RobustZScore}
