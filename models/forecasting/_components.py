"""Shared state and prediction for forecasters of the form level + damped trend + repeated cycles.

Both :class:`~models.forecasting.mstl.MSTLForecaster` and :class:`~models.forecasting.ets.ETS`
reduce a fitted series to the same small state: a level, a slope with a damping factor, the
last cycle of each seasonal component, and a quantile table of *day-ahead* in-sample errors
(the error of forecasting ``y[t]`` from the model's state one season earlier). Intervals read
those quantiles and widen with ``sqrt`` of the number of seasons ahead, like the seasonal-naive
floor, so they are calibrated to the horizon the service actually forecasts (hours to a day)
rather than to one-step residuals, which are far too narrow.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import forecast_frame, median_step_ns, on_grid, split_series
from models.errors import InsufficientHistoryError, ModelError, NotFittedError, check_saved
from models.forecasting.seasonal_naive import (
    fill_seasonal_gaps,
    interval_offsets,
    residual_quantiles,
)
from models.frequency import season_length

_FORMAT = 1


def damped_steps(phi: float, horizon: int) -> np.ndarray:
    """Cumulative damped trend multipliers ``phi + phi^2 + ... + phi^k`` for ``k = 1..horizon``.

    Example:
        >>> damped_steps(0.5, 3).tolist()
        [0.5, 0.75, 0.875]
    """
    return np.cumsum(phi ** np.arange(1, horizon + 1, dtype=float))


def component_path(
    level: float, slope: float, phi: float, cycles: list[np.ndarray], horizon: int
) -> np.ndarray:
    """``level + damped slope + every cycle repeated`` over ``horizon`` steps.

    Example:
        >>> import numpy as np
        >>> component_path(10.0, 0.0, 0.0, [np.array([1.0, -1.0])], 3).tolist()
        [11.0, 9.0, 11.0]
    """
    path = level + slope * damped_steps(phi, horizon)
    for cycle in cycles:
        path = path + np.resize(cycle, horizon)
    return path


@dataclass(frozen=True)
class ComponentState:
    """Fitted state of one series (JSON round-trips exactly: floats go through ``repr``)."""

    step_ns: int
    season: int
    last_ds_ns: int
    level: float
    slope: float
    phi: float
    cycles: tuple[np.ndarray, ...]
    quantiles: np.ndarray
    nonneg: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_ns": self.step_ns, "season": self.season, "last_ds_ns": self.last_ds_ns,
            "level": self.level, "slope": self.slope, "phi": self.phi,
            "cycles": [c.tolist() for c in self.cycles], "quantiles": self.quantiles.tolist(),
            "nonneg": self.nonneg,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ComponentState:
        return cls(
            step_ns=int(d["step_ns"]), season=int(d["season"]), last_ds_ns=int(d["last_ds_ns"]),
            level=float(d["level"]), slope=float(d["slope"]), phi=float(d["phi"]),
            cycles=tuple(np.asarray(c, dtype=float) for c in d["cycles"]),
            quantiles=np.asarray(d["quantiles"], dtype=float), nonneg=bool(d["nonneg"]),
        )


@dataclass(frozen=True)
class Components:
    """What a subclass's ``_fit_values`` returns for one gap-filled series."""

    level: float
    slope: float
    phi: float
    cycles: tuple[np.ndarray, ...]
    day_ahead_errors: np.ndarray


class ComponentForecaster:
    """Template: the public ``fit``/``predict`` validate; subclasses implement ``_fit_values``.

    Args:
        period: the main seasonal period (one day); the season length is inferred per series.
    """

    name = "components"
    #: a series must span at least this many seasons to be fitted
    min_seasons = 2

    def __init__(self, period: str | pd.Timedelta = "1D") -> None:
        self.period = pd.Timedelta(period)
        if self.period <= pd.Timedelta(0):
            raise ValueError(f"period must be positive, got {self.period}")
        self._state: dict[str, ComponentState] | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _params(self) -> dict[str, Any]:
        """Constructor arguments, saved by :meth:`to_dict` (subclasses with more extend this)."""
        return {"period": str(self.period)}

    @abstractmethod
    def _fit_values(self, values: np.ndarray, season: int) -> Components:
        """Fit one gap-free series of at least ``min_seasons * season`` points."""

    def fit(self, frame: pd.DataFrame, events: pd.DataFrame | None = None) -> Self:
        """Fit every series of ``frame`` (``events`` are accepted and ignored for now).

        Raises:
            FrameError: the frame breaks the canonical contract.
            InsufficientHistoryError: a series spans fewer than ``min_seasons`` seasons.
            ModelError: the numerical fit failed (non-finite state); fall back to seasonal naive.
        """
        del events
        who = f"{type(self).__name__}.fit"
        state: dict[str, ComponentState] = {}
        for s in split_series(frame, who=who):
            step_ns = median_step_ns(s.ds_ns)
            if step_ns == 0:
                raise InsufficientHistoryError(
                    f"{type(self).__name__}: series '{s.unique_id}' has {s.ds_ns.size} point(s); "
                    f"it needs at least {self.min_seasons} seasons of {self.period}"
                )
            step = pd.Timedelta(step_ns, unit="ns")
            season = season_length(step, self.period)
            values = on_grid(s.ds_ns, s.y, step_ns)
            if values.size < self.min_seasons * season or season < 2:
                raise InsufficientHistoryError(
                    f"{type(self).__name__}: series '{s.unique_id}' spans {values.size} steps of "
                    f"{step}; it needs at least {self.min_seasons * season} "
                    f"({self.min_seasons} seasons of {season} steps)"
                )
            comp = self._fit_values(fill_seasonal_gaps(values, season), season)
            errors = comp.day_ahead_errors[np.isfinite(comp.day_ahead_errors)]
            finite = np.isfinite([comp.level, comp.slope, comp.phi]).all() and all(
                np.isfinite(c).all() for c in comp.cycles
            )
            if not finite or errors.size == 0:
                raise ModelError(
                    f"{type(self).__name__}: fit of series '{s.unique_id}' gave a non-finite "
                    "state; use the seasonal-naive fallback for this series"
                )
            state[s.unique_id] = ComponentState(
                step_ns=step_ns, season=season,
                last_ds_ns=int(s.ds_ns[0] + (values.size - 1) * step_ns),
                level=float(comp.level), slope=float(comp.slope), phi=float(comp.phi),
                cycles=tuple(np.asarray(c, dtype=float) for c in comp.cycles),
                quantiles=residual_quantiles(errors), nonneg=bool(np.all(s.y >= 0)),
            )
        if not state:
            raise InsufficientHistoryError(f"{who}: the frame has no observed points")
        self._state = state
        return self

    def predict(self, horizon: int, level: float = 0.9) -> pd.DataFrame:
        """Forecast ``horizon`` grid steps past each series' last timestamp, with an interval.

        Raises:
            NotFittedError: called before :meth:`fit`.
            ValueError: ``horizon`` < 1 or ``level`` outside (0, 1).
        """
        if self._state is None:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(frame) before predict()"
            )
        if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be a positive integer number of steps, got {horizon!r}")
        if not (isinstance(level, int | float) and 0.0 < level < 1.0):
            raise ValueError(f"level must be in (0, 1), e.g. 0.9 for a 90% interval; got {level!r}")
        horizon = int(horizon)
        parts = []
        for uid in sorted(self._state):
            st = self._state[uid]
            yhat = component_path(st.level, st.slope, st.phi, list(st.cycles), horizon)
            lo, hi = interval_offsets(st.quantiles, level, horizon, st.season)
            lower, upper = yhat + lo, yhat + hi
            if st.nonneg:  # counts and rates: never forecast below zero
                yhat = np.maximum(yhat, 0.0)
                lower = np.minimum(np.maximum(lower, 0.0), yhat)
                upper = np.maximum(upper, yhat)
            ds_ns = st.last_ds_ns + st.step_ns * np.arange(1, horizon + 1, dtype=np.int64)
            parts.append((uid, ds_ns, yhat, lower, upper))
        return forecast_frame(parts, horizon, self.name, level)

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON-serialisable data."""
        return {
            "model": self.name,
            "format": _FORMAT,
            "params": self._params(),
            "state": None
            if self._state is None
            else {uid: st.to_dict() for uid, st in sorted(self._state.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a model saved by :meth:`to_dict`.

        Raises:
            ModelError: ``d`` was not written by this model in a known format.
        """
        check_saved(d, key="model", name=cls.name, fmt=_FORMAT)
        model = cls(**d["params"])
        if d["state"] is not None:
            model._state = {uid: ComponentState.from_dict(v) for uid, v in d["state"].items()}
        return model
