"""Seasonal profile × learned event uplift: the light event-aware forecaster.

``yhat(t) = baseline(t) * (1 + u(t))`` where

* ``baseline`` is the mean of the same phase over the last ``seasons`` seasons (weekly with two
  weeks of history, else daily) of the *deflated* series ``y / (1 + u)``, so past surges do not
  leak into it as spurious repeated bumps;
* ``u(t) = X(t) @ beta`` is the event uplift: ``X`` are the importance-weighted phase features of
  :mod:`models.forecasting.events` (competition class, kickoff hour, weekday), ``beta`` a ridge
  regression of the in-sample ratio ``y / baseline - 1`` on them (pure numpy, no intercept: no
  event, no uplift). Baseline and uplift are refined alternately a few times.

Without events (``fit(frame)``) this is a plain seasonal-profile forecaster: the "same model
without events" of the event benchmark. Intervals are empirical quantiles of the in-sample
relative errors, widened for the baseline being an in-sample mean.

Future events: pass the fixture calendar covering the forecast window at ``fit`` time (the
usual case: fixtures are known weeks ahead), or override it with ``predict(..., events=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from models._frames import forecast_frame, median_step_ns, on_grid, split_series
from models.errors import InsufficientHistoryError, NotFittedError, check_saved
from models.forecasting.events import (
    event_classes,
    event_features,
    events_to_records,
    normalise_events,
    records_to_events,
)
from models.frequency import season_length

__all__ = [
    "SeasonalEvents", "check_horizon_level", "ridge", "seasonal_profile", "smooth_design",
]

_FORMAT = 1
_PROBS = np.linspace(0.0, 1.0, 201)


def check_horizon_level(horizon: Any, level: Any) -> int:
    """Validate ``predict`` arguments; return ``horizon`` as an int."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | float) or (
        int(horizon) != horizon or horizon < 1
    ):
        raise ValueError(f"horizon must be a positive integer number of steps, got {horizon!r}")
    if not (isinstance(level, int | float) and 0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), e.g. 0.9 for a 90% interval; got {level!r}")
    return int(horizon)


def ridge(X: np.ndarray, r: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge coefficients without intercept: ``(X'X + alpha I)^-1 X'r``.

    Example:
        >>> import numpy as np
        >>> ridge(np.array([[1.0], [1.0]]), np.array([2.0, 2.0]), 0.0).tolist()
        [2.0]
    """
    gram = X.T @ X + alpha * np.eye(X.shape[1])
    return np.linalg.solve(gram, X.T @ r)


def smooth_design(ds_ns: np.ndarray, order: int = 12) -> np.ndarray:
    """Intercept, ``order`` daily Fourier pairs and six weekday dummies at ``ds_ns`` (UTC).

    A baseline this smooth cannot absorb a 75-minute kickoff ramp, so fitting it jointly with the
    event features separates the uplift from the daily cycle (a free 5-minute weekly profile
    would absorb the mean surge of every recurring slot, e.g. Tuesday 20:00).

    Example:
        >>> import numpy as np
        >>> smooth_design(np.array([0]), order=1).round(6).tolist()  # Thursday 1970-01-01 00:00
        [[1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    """
    day_ns = 86_400_000_000_000
    tod = (ds_ns % day_ns) / day_ns
    k = np.arange(1, order + 1)
    ang = 2 * np.pi * tod[:, None] * k[None, :]
    dow = ((ds_ns // day_ns) + 3) % 7  # Monday = 0
    dummies = (dow[:, None] == np.arange(1, 7)[None, :]).astype(float)
    return np.column_stack([np.ones(ds_ns.size), np.sin(ang), np.cos(ang), dummies])


def seasonal_profile(values: np.ndarray, season: int, seasons: int) -> np.ndarray:
    """Mean (ignoring NaN) of the last ``seasons`` full seasons, aligned to the end of ``values``.

    Phase ``k`` of the result is the phase of ``values[-season + k]``; a phase never observed
    takes the mean of the observed ones.

    Example:
        >>> import numpy as np
        >>> seasonal_profile(np.array([9.0, 1.0, 2.0, 3.0, 4.0]), 2, 2).tolist()
        [2.0, 3.0]
    """
    n = min(seasons, values.size // season)
    table = values[values.size - n * season:].reshape(n, season)
    with np.errstate(all="ignore"):
        observed = np.isfinite(table)
        counts = observed.sum(axis=0)
        sums = np.where(observed, table, 0.0).sum(axis=0)
        prof = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    fill = np.nanmean(prof) if np.isfinite(prof).any() else 0.0
    return np.where(np.isfinite(prof), prof, fill)


@dataclass(frozen=True)
class _State:
    step_ns: int
    season: int
    last_ds_ns: int
    profile: np.ndarray
    beta: np.ndarray | None
    quantiles: np.ndarray
    nonneg: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_ns": self.step_ns, "season": self.season, "last_ds_ns": self.last_ds_ns,
            "profile": self.profile.tolist(),
            "beta": None if self.beta is None else self.beta.tolist(),
            "quantiles": self.quantiles.tolist(), "nonneg": self.nonneg,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _State:
        return cls(
            step_ns=int(d["step_ns"]), season=int(d["season"]), last_ds_ns=int(d["last_ds_ns"]),
            profile=np.asarray(d["profile"], dtype=float),
            beta=None if d["beta"] is None else np.asarray(d["beta"], dtype=float),
            quantiles=np.asarray(d["quantiles"], dtype=float), nonneg=bool(d["nonneg"]),
        )


class SeasonalEvents:
    """Seasonal-profile baseline times a ridge-learned, metadata-driven event uplift.

    Args:
        seasons: how many past seasons the baseline profile averages.
        alpha: ridge penalty on the uplift coefficients.
        bin_minutes: width of the event-phase bins (see :mod:`models.forecasting.events`).
        min_class_events: a competition needs this many training events for its own block.
        iterations: baseline/uplift refinement rounds.

    Example:
        >>> import numpy as np, pandas as pd
        >>> ds = pd.date_range("2026-01-01", periods=96, freq="h", tz="UTC")
        >>> frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": 10.0 + np.arange(96) % 24})
        >>> SeasonalEvents().fit(frame).predict(3)["yhat"].tolist()
        [10.0, 11.0, 12.0]
    """

    name = "seasonal_events"

    def __init__(
        self, seasons: int = 4, alpha: float = 10.0, bin_minutes: int = 5,
        min_class_events: int = 3, iterations: int = 3,
    ) -> None:
        if int(seasons) != seasons or seasons < 2:
            raise ValueError(f"seasons must be an integer >= 2, got {seasons!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.seasons, self.alpha, self.bin_minutes = int(seasons), float(alpha), int(bin_minutes)
        self.min_class_events, self.iterations = int(min_class_events), int(iterations)
        self._state: dict[str, _State] | None = None
        self._classes: list[str] = []
        self._events: pd.DataFrame | None = None

    def _features(self, ds_ns: np.ndarray, events: pd.DataFrame | None) -> np.ndarray:
        return event_features(
            ds_ns, events, self._classes, bin_minutes=self.bin_minutes
        ).to_numpy()

    def fit(self, frame: pd.DataFrame, events: pd.DataFrame | None = None) -> Self:
        """Learn each series' seasonal profile and, with ``events``, the event uplift.

        Args:
            frame: canonical long frame ``unique_id, ds, y``.
            events: fixture calendar (``start, end, sport, competition, importance``) covering
                the training window and, ideally, the forecast window; kept for ``predict``.

        Raises:
            FrameError: bad frame or events.
            InsufficientHistoryError: a series spans fewer than two days.
        """
        self._events = None if events is None else normalise_events(events)
        self._classes = (
            [] if self._events is None
            else event_classes(self._events, self.min_class_events)
        )
        state: dict[str, _State] = {}
        for s in split_series(frame, who="SeasonalEvents.fit"):
            step_ns = median_step_ns(s.ds_ns)
            if step_ns == 0:
                raise InsufficientHistoryError(
                    f"SeasonalEvents: series '{s.unique_id}' has {s.ds_ns.size} point(s); it "
                    "needs at least two days of history"
                )
            day = season_length(pd.Timedelta(step_ns, unit="ns"), "1D")
            values = on_grid(s.ds_ns, s.y, step_ns)
            if values.size < 2 * day:
                raise InsufficientHistoryError(
                    f"SeasonalEvents: series '{s.unique_id}' spans {values.size} steps; it "
                    f"needs at least two days ({2 * day} steps)"
                )
            season = 7 * day if values.size >= 14 * day else day
            grid = int(s.ds_ns[0]) + step_ns * np.arange(values.size, dtype=np.int64)
            state[s.unique_id] = self._fit_one(values, grid, step_ns, season)
        if not state:
            raise InsufficientHistoryError("SeasonalEvents.fit: the frame has no observed points")
        self._state = state
        return self

    def _fit_one(self, values: np.ndarray, grid: np.ndarray, step_ns: int, season: int) -> _State:
        n = values.size
        phase = (np.arange(n) - n) % season  # phase k of the profile = phase of values[-season+k]
        X = None if self._events is None else self._features(grid, self._events)
        if X is not None and not X.any():
            X = None
        uplift = np.zeros(n)
        beta = None
        if X is not None:
            # stage 1: event uplift against a smooth baseline (identifiable, see smooth_design),
            # alternating a log-space baseline fit on the deflated series and a ridge of the ratio
            B = smooth_design(grid)
            good = np.isfinite(values) & (values > 0)
            for _ in range(self.iterations):
                logd = np.log(values[good] / (1.0 + uplift[good]))
                coef = np.linalg.lstsq(B[good], logd, rcond=None)[0]
                smooth = np.exp(B @ coef)
                rows = X.any(axis=1) & np.isfinite(values)
                beta = ridge(X[rows], values[rows] / smooth[rows] - 1.0, self.alpha)
                uplift = np.maximum(X @ beta, -0.9)
        # stage 2: the fine seasonal profile of the deflated series
        profile = seasonal_profile(values / (1.0 + uplift), season, self.seasons)
        base = profile[phase]
        fitted = base * (1.0 + uplift)
        ok = np.isfinite(values) & (fitted > 0)
        rel = values[ok] / fitted[ok] - 1.0
        k = min(self.seasons, n // season)
        # the profile is an in-sample mean of k seasons: scale the errors up to out-of-sample
        widen = np.sqrt((k + 1) / (k - 1)) if k > 1 else np.sqrt(2.0)
        quantiles = np.quantile(rel * widen, _PROBS) if rel.size else np.zeros(_PROBS.size)
        return _State(
            step_ns=step_ns, season=season, last_ds_ns=int(grid[-1]), profile=profile,
            beta=beta, quantiles=quantiles, nonneg=bool(np.nanmin(values) >= 0),
        )

    def predict(
        self, horizon: int, level: float = 0.9, events: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Forecast ``horizon`` steps after each series' last timestamp.

        Args:
            horizon: steps ahead (>= 1).
            level: central interval coverage in (0, 1).
            events: fixture calendar for the forecast window; defaults to the fit-time events.

        Raises:
            NotFittedError: before :meth:`fit`.
            ValueError: bad ``horizon`` or ``level``.
        """
        if self._state is None:
            raise NotFittedError("SeasonalEvents is not fitted: call fit(frame) before predict()")
        horizon = check_horizon_level(horizon, level)
        future = self._events if events is None else normalise_events(events)
        lo_q = hi_q = 0.0
        parts = []
        for uid in sorted(self._state):
            st = self._state[uid]
            ds_ns = st.last_ds_ns + st.step_ns * np.arange(1, horizon + 1, dtype=np.int64)
            base = np.resize(st.profile, horizon)
            uplift = np.zeros(horizon)
            if st.beta is not None and future is not None:
                uplift = np.maximum(self._features(ds_ns, future) @ st.beta, -0.9)
            yhat = base * (1.0 + uplift)
            lo_q = min(float(np.interp((1.0 - level) / 2.0, _PROBS, st.quantiles)), 0.0)
            hi_q = max(float(np.interp((1.0 + level) / 2.0, _PROBS, st.quantiles)), 0.0)
            scale = np.abs(yhat)
            lower = yhat + lo_q * scale
            if st.nonneg:
                lower = np.maximum(lower, 0.0)
            parts.append((uid, ds_ns, yhat, np.minimum(lower, yhat), yhat + hi_q * scale))
        return forecast_frame(parts, horizon, self.name, level)

    def _params(self) -> dict[str, Any]:
        return {
            "seasons": self.seasons, "alpha": self.alpha, "bin_minutes": self.bin_minutes,
            "min_class_events": self.min_class_events, "iterations": self.iterations,
        }

    def to_dict(self) -> dict[str, Any]:
        """Parameters, classes, kept events and per-series state as JSON-ready data."""
        return {
            "model": self.name,
            "format": _FORMAT,
            "params": self._params(),
            "classes": list(self._classes),
            "events": events_to_records(self._events),
            "state": None if self._state is None
            else {uid: st.to_dict() for uid, st in sorted(self._state.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a model saved by :meth:`to_dict`.

        Raises:
            ModelError: ``d`` is not a saved ``SeasonalEvents`` of a known format.
        """
        check_saved(d, key="model", name=cls.name, fmt=_FORMAT)
        model = cls(**d["params"])
        model._classes = list(d["classes"])
        model._events = records_to_events(d["events"])
        if d["state"] is not None:
            model._state = {uid: _State.from_dict(v) for uid, v in d["state"].items()}
        return model
