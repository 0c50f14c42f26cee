"""The two model interfaces: :class:`Forecaster` and :class:`Detector`.

Both are structural (``typing.Protocol``): a class conforms by having the members, no base class
needed. Frames follow DESIGN §3: input ``unique_id, ds, y``; forecasts
``unique_id, ds, yhat, yhat_lower, yhat_upper, model, level``; anomalies
``unique_id, ds, y, expected, lower, upper, score, is_anomaly, kind, detector``.

Example:
    >>> from models import SeasonalNaive, RobustZScore
    >>> isinstance(SeasonalNaive(), Forecaster), isinstance(RobustZScore(), Detector)
    (True, True)
"""

from __future__ import annotations

from typing import Any, Protocol, Self, runtime_checkable

import pandas as pd

__all__ = ["ANOMALY_COLUMNS", "Detector", "FORECAST_COLUMNS", "Forecaster"]

FORECAST_COLUMNS = ("unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model", "level")
ANOMALY_COLUMNS = (
    "unique_id", "ds", "y", "expected", "lower", "upper", "score", "is_anomaly", "kind", "detector",
)


@runtime_checkable
class Forecaster(Protocol):
    """Fits on a long series frame, predicts ``horizon`` steps ahead with an interval."""

    name: str

    def fit(self, frame: pd.DataFrame, events: pd.DataFrame | None = None) -> Self:
        """Learn per-series state from ``frame``; ``events`` are known future inputs."""
        ...

    def predict(self, horizon: int, level: float = 0.9) -> pd.DataFrame:
        """Return the forecast frame for the next ``horizon`` steps of every fitted series."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters and fitted state as JSON-serialisable data."""
        ...

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a model saved by :meth:`to_dict` (it predicts identically)."""
        ...


@runtime_checkable
class Detector(Protocol):
    """Scores points of a long series frame; usable in batch and online."""

    name: str

    def fit(self, frame: pd.DataFrame) -> Self:
        """Learn the bounded per-series history needed to score later points."""
        ...

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the anomaly frame, one row per observed point of ``frame``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters and state as JSON-serialisable data."""
        ...

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`to_dict` (it scores identically)."""
        ...
