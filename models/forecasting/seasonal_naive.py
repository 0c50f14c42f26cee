"""Seasonal naive: tomorrow looks like today. The floor every forecaster must beat.

The maths are pure numpy functions (:func:`fill_seasonal_gaps`, :func:`seasonal_residuals`,
:func:`residual_quantiles`, :func:`naive_path`, :func:`interval_offsets`); :class:`SeasonalNaive`
only holds per-series state: the last season of values and a quantile table of the in-sample
seasonal residuals ``y[t] - y[t - s]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import forecast_frame, median_step_ns, on_grid, split_series
from models.errors import InsufficientHistoryError, NotFittedError, check_saved
from models.frequency import season_length

__all__ = [
    "QUANTILE_PROBS",
    "SeasonalNaive",
    "fill_seasonal_gaps",
    "interval_offsets",
    "naive_path",
    "residual_quantiles",
    "seasonal_residuals",
]

# Residual quantiles are kept on this grid (0.5 % apart) rather than the residuals themselves, so
# the saved state stays small; any ``level`` is read off it by linear interpolation, and the usual
# levels (0.8, 0.9, 0.95, 0.99) fall exactly on grid points.
QUANTILE_PROBS = np.linspace(0.0, 1.0, 201)
_FORMAT = 1


def fill_seasonal_gaps(values: np.ndarray, season: int) -> np.ndarray:
    """Fill NaN gaps with the value at the same phase of the previous season.

    Gaps in the first season take the next season's value; a phase never observed takes the
    nearest earlier (else later) value in time.

    Example:
        >>> import numpy as np
        >>> fill_seasonal_gaps(np.array([1.0, 2.0, 3.0, np.nan, 5.0, np.nan]), 3).tolist()
        [1.0, 2.0, 3.0, 1.0, 5.0, 3.0]
    """
    n = values.size
    n_seasons = -(-n // season)
    table = pd.DataFrame(
        np.pad(values.astype(float), (0, n_seasons * season - n), constant_values=np.nan)
        .reshape(n_seasons, season)
    )
    filled = table.ffill().bfill().to_numpy().ravel()[:n]
    return pd.Series(filled).ffill().bfill().to_numpy()


def seasonal_residuals(values: np.ndarray, season: int) -> np.ndarray:
    """Return ``y[t] - y[t - season]`` for every pair where both points were observed (not NaN).

    Example:
        >>> import numpy as np
        >>> seasonal_residuals(np.array([1.0, 2.0, 4.0, np.nan]), 2).tolist()
        [3.0]
    """
    diff = values[season:] - values[:-season]
    return diff[np.isfinite(diff)]


def residual_quantiles(residuals: np.ndarray) -> np.ndarray:
    """Empirical quantiles of ``residuals`` at :data:`QUANTILE_PROBS` (linear interpolation).

    Example:
        >>> import numpy as np
        >>> q = residual_quantiles(np.arange(101.0))
        >>> float(q[10]), float(q[190])
        (5.0, 95.0)
    """
    return np.quantile(residuals, QUANTILE_PROBS)


def naive_path(last_season: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last season over ``horizon`` steps.

    Example:
        >>> import numpy as np
        >>> naive_path(np.array([1.0, 2.0, 3.0]), 5).tolist()
        [1.0, 2.0, 3.0, 1.0, 2.0]
    """
    return np.resize(last_season, horizon)


def interval_offsets(
    quantiles: np.ndarray, level: float, horizon: int, season: int
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets to add to the point forecast for a central ``level`` interval.

    The one-season-ahead offsets are the residual quantiles at ``(1 - level) / 2`` and
    ``(1 + level) / 2``, made to straddle zero so ``lower <= yhat <= upper``. A point ``k``
    seasons ahead is ``k`` seasonal differences away from its forecast, so (as for a seasonal
    random walk) the offsets grow with ``sqrt(k)``.

    Example:
        >>> import numpy as np
        >>> lo, hi = interval_offsets(np.linspace(-10, 10, 201), 0.9, 4, 2)
        >>> lo.round(6).tolist(), hi.round(6).tolist()
        ([-9.0, -9.0, -12.727922, -12.727922], [9.0, 9.0, 12.727922, 12.727922])
    """
    lo_q = min(float(np.interp((1.0 - level) / 2.0, QUANTILE_PROBS, quantiles)), 0.0)
    hi_q = max(float(np.interp((1.0 + level) / 2.0, QUANTILE_PROBS, quantiles)), 0.0)
    seasons_ahead = np.ceil(np.arange(1, horizon + 1) / season)
    growth = np.sqrt(seasons_ahead)
    return lo_q * growth, hi_q * growth


@dataclass(frozen=True)
class _SeriesState:
    step_ns: int
    season: int
    last_ds_ns: int
    last_season: np.ndarray
    quantiles: np.ndarray
    nonneg: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_ns": self.step_ns,
            "season": self.season,
            "last_ds_ns": self.last_ds_ns,
            "last_season": self.last_season.tolist(),
            "quantiles": self.quantiles.tolist(),
            "nonneg": self.nonneg,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _SeriesState:
        return cls(
            step_ns=int(d["step_ns"]),
            season=int(d["season"]),
            last_ds_ns=int(d["last_ds_ns"]),
            last_season=np.asarray(d["last_season"], dtype=float),
            quantiles=np.asarray(d["quantiles"], dtype=float),
            nonneg=bool(d["nonneg"]),
        )


class SeasonalNaive:
    """Forecast each series by repeating its last season; intervals from seasonal residuals.

    Args:
        season_length: points per season; ``None`` infers it per series from the sampling step
            and ``period`` (1-minute data and a 1-day period give 1440).
        period: the seasonal period used when ``season_length`` is ``None``.

    Fitting needs, per series, one full season plus one point (so that at least one residual
    ``y[t] - y[t - s]`` exists). Gaps are filled from the same phase of the previous season;
    residuals use only pairs of real observations. ``events`` are accepted and ignored.

    Example:
        >>> import numpy as np, pandas as pd
        >>> ds = pd.date_range("2026-01-01", periods=9, freq="h", tz="UTC")
        >>> frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": [1., 2, 3, 1, 2, 3, 1, 2, 4]})
        >>> fc = SeasonalNaive(season_length=3).fit(frame).predict(horizon=3, level=0.9)
        >>> fc["yhat"].tolist(), fc["yhat_upper"].round(2).tolist()
        ([1.0, 2.0, 4.0], [1.75, 2.75, 4.75])
    """

    name = "seasonal_naive"

    def __init__(
        self, season_length: int | None = None, period: str | pd.Timedelta = "1D"
    ) -> None:
        if season_length is not None and (
            isinstance(season_length, bool) or int(season_length) != season_length
            or season_length < 1
        ):
            raise ValueError(
                f"season_length must be a positive integer or None, got {season_length!r}"
            )
        self.season_length = None if season_length is None else int(season_length)
        self.period = pd.Timedelta(period)
        if self.period <= pd.Timedelta(0):
            raise ValueError(f"period must be positive, got {self.period}")
        self._state: dict[str, _SeriesState] | None = None

    def __repr__(self) -> str:
        return f"SeasonalNaive(season_length={self.season_length}, period={str(self.period)!r})"

    def fit(self, frame: pd.DataFrame, events: pd.DataFrame | None = None) -> Self:
        """Learn the last season and residual quantiles of every series in ``frame``.

        Raises:
            FrameError: the frame breaks the canonical contract.
            InsufficientHistoryError: a series is shorter than one season plus one point.
        """
        del events  # a seasonal naive has no use for known future inputs
        state: dict[str, _SeriesState] = {}
        for s in split_series(frame, who="SeasonalNaive.fit"):
            if s.ds_ns.size < 2:
                raise InsufficientHistoryError(
                    f"SeasonalNaive: series '{s.unique_id}' has {s.ds_ns.size} point(s); it needs "
                    f"at least one full season ({self.period}) plus one point"
                )
            step = pd.Timedelta(median_step_ns(s.ds_ns), unit="ns")
            season = self.season_length or season_length(step, self.period)
            values = on_grid(s.ds_ns, s.y, step.value)
            if values.size < season + 1:
                raise InsufficientHistoryError(
                    f"SeasonalNaive: series '{s.unique_id}' spans {values.size} steps of {step}; "
                    f"it needs at least {season + 1} (one season of {season} steps plus one)"
                )
            residuals = seasonal_residuals(values, season)
            if residuals.size == 0:
                raise InsufficientHistoryError(
                    f"SeasonalNaive: series '{s.unique_id}' has no pair of observations one season "
                    f"({season} steps of {step}) apart; collect more history without gaps"
                )
            state[s.unique_id] = _SeriesState(
                step_ns=step.value,
                season=season,
                last_ds_ns=int(s.ds_ns[0] + (values.size - 1) * step.value),
                last_season=fill_seasonal_gaps(values, season)[-season:].copy(),
                quantiles=residual_quantiles(residuals),
                nonneg=bool(np.all(s.y >= 0)),
            )
        if not state:
            raise InsufficientHistoryError("SeasonalNaive.fit: the frame has no observed points")
        self._state = state
        return self

    def predict(self, horizon: int, level: float = 0.9) -> pd.DataFrame:
        """Forecast the next ``horizon`` grid points after each series' last timestamp.

        Args:
            horizon: number of steps ahead (at least 1).
            level: coverage of the central interval, in (0, 1).

        Raises:
            NotFittedError: called before :meth:`fit`.
            ValueError: ``horizon`` < 1 or ``level`` outside (0, 1).
        """
        if self._state is None:
            raise NotFittedError("SeasonalNaive is not fitted: call fit(frame) before predict()")
        if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be a positive integer number of steps, got {horizon!r}")
        if not (isinstance(level, int | float) and 0.0 < level < 1.0):
            raise ValueError(f"level must be in (0, 1), e.g. 0.9 for a 90% interval; got {level!r}")
        horizon = int(horizon)
        parts = []
        for uid in sorted(self._state):
            st = self._state[uid]
            yhat = naive_path(st.last_season, horizon)
            lo, hi = interval_offsets(st.quantiles, level, horizon, st.season)
            lower = yhat + lo
            if st.nonneg:
                lower = np.maximum(lower, 0.0)
            ds_ns = st.last_ds_ns + st.step_ns * np.arange(1, horizon + 1, dtype=np.int64)
            parts.append((uid, ds_ns, yhat, lower, yhat + hi))
        return forecast_frame(parts, horizon, self.name, level)

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON-serialisable data (floats round-trip exactly)."""
        return {
            "model": self.name,
            "format": _FORMAT,
            "params": {"season_length": self.season_length, "period": str(self.period)},
            "state": None
            if self._state is None
            else {uid: st.to_dict() for uid, st in sorted(self._state.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a model saved by :meth:`to_dict`.

        Raises:
            ModelError: ``d`` was not written by a ``SeasonalNaive`` of a known format.
        """
        check_saved(d, key="model", name=cls.name, fmt=_FORMAT)
        model = cls(**d["params"])
        if d["state"] is not None:
            model._state = {uid: _SeriesState.from_dict(v) for uid, v in d["state"].items()}
        return model
