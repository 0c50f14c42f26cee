"""Prophet with the fixture calendar as known-future regressors (CONVENTIONS.md §8).

Each series gets its own Prophet (multiplicative seasonality and regressors) whose extra
regressors are the event-phase features of :mod:`models.forecasting.events` (coarser bins than
:class:`~models.forecasting.seasonal_events.SeasonalEvents`, to keep the Stan fit fast). ``ds``
is naive UTC inside Prophet and aware UTC outside; the cmdstanpy logger is disabled; the Stan
optimiser and the uncertainty samples are seeded, and the global numpy RNG state is restored
after sampling. Saved via ``prophet.serialize.model_to_json`` (never pickle).

Future events: pass the calendar covering the forecast window at ``fit`` time, or override it
with ``predict(..., events=...)``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Self

import numpy as np
import pandas as pd
from pandas.errors import Pandas4Warning, PerformanceWarning

from models._frames import forecast_frame, median_step_ns, split_series, to_utc
from models.errors import InsufficientHistoryError, NotFittedError, check_saved
from models.forecasting.events import (
    event_classes,
    event_features,
    events_to_records,
    normalise_events,
    records_to_events,
)
from models.forecasting.seasonal_events import check_horizon_level

__all__ = ["ProphetEvents"]

_FORMAT = 1


def _ignore_third_party() -> None:
    """Inside ``catch_warnings`` only: Prophet 1.5 on pandas 3 uses deprecated pandas API
    (``inplace=``) that warns on every fit/predict; it is not ours to fix."""
    for category in (FutureWarning, DeprecationWarning, Pandas4Warning, PerformanceWarning):
        warnings.simplefilter("ignore", category)


def _quiet() -> None:
    logging.getLogger("cmdstanpy").disabled = True  # setLevel is unreliable (cmdstanpy#665)
    logging.getLogger("prophet").setLevel(logging.WARNING)


class ProphetEvents:
    """Prophet per series, fixture-phase features as multiplicative regressors.

    Args:
        seed: seeds the Stan optimiser and the uncertainty samples.
        uncertainty_samples: posterior-predictive draws for the interval (modest: speed).
        bin_minutes: width of the event-phase bins.
        min_class_events: a competition needs this many training events for its own block.
        daily_fourier: Fourier order of the daily seasonality (kickoff-scale detail needs more
            than Prophet's default 4).
    """

    name = "prophet_events"

    def __init__(
        self, seed: int = 0, uncertainty_samples: int = 100, bin_minutes: int = 15,
        min_class_events: int = 8, daily_fourier: int = 12,
    ) -> None:
        self.seed, self.uncertainty_samples = int(seed), int(uncertainty_samples)
        self.bin_minutes, self.min_class_events = int(bin_minutes), int(min_class_events)
        self.daily_fourier = int(daily_fourier)
        self._models: dict[str, Any] | None = None
        self._meta: dict[str, dict[str, Any]] = {}
        self._classes: list[str] = []
        self._events: pd.DataFrame | None = None

    def _features(self, ds: pd.DatetimeIndex, events: pd.DataFrame | None) -> pd.DataFrame:
        return event_features(ds, events, self._classes, bin_minutes=self.bin_minutes)

    def fit(self, frame: pd.DataFrame, events: pd.DataFrame | None = None) -> Self:
        """Fit one Prophet per series; ``events`` (training + forecast window) are kept.

        Raises:
            FrameError: bad frame or events.
            InsufficientHistoryError: a series spans fewer than two days.
        """
        from prophet import Prophet

        _quiet()
        self._events = None if events is None else normalise_events(events)
        self._classes = [] if self._events is None else event_classes(
            self._events, self.min_class_events
        )
        models: dict[str, Any] = {}
        meta: dict[str, dict[str, Any]] = {}
        for s in split_series(frame, who="ProphetEvents.fit"):
            step = median_step_ns(s.ds_ns)
            if step == 0 or s.ds_ns[-1] - s.ds_ns[0] < 2 * 86_400_000_000_000 - step:
                raise InsufficientHistoryError(
                    f"ProphetEvents: series '{s.unique_id}' spans less than two days "
                    f"({s.ds_ns.size} points); collect at least two days of history"
                )
            ds = to_utc(s.ds_ns)
            df = pd.DataFrame({"ds": ds.tz_localize(None), "y": s.y})
            regs: list[str] = []
            if self._events is not None:
                X = self._features(ds, self._events)
                regs = [c for c in X.columns if X[c].to_numpy().any()]
                df = pd.concat([df, X[regs].set_axis(df.index)], axis=1)
            m = Prophet(
                seasonality_mode="multiplicative", daily_seasonality=self.daily_fourier,
                weekly_seasonality=True, yearly_seasonality=False,
                uncertainty_samples=self.uncertainty_samples,
            )
            for r in regs:
                m.add_regressor(r, mode="multiplicative", standardize=False)
            with warnings.catch_warnings():
                _ignore_third_party()
                m.fit(df, seed=self.seed)
            models[s.unique_id] = m
            meta[s.unique_id] = {
                "step_ns": step, "last_ds_ns": int(s.ds_ns[-1]), "regressors": regs,
                "nonneg": bool(np.all(s.y >= 0)),
            }
        if not models:
            raise InsufficientHistoryError("ProphetEvents.fit: the frame has no observed points")
        self._models, self._meta = models, meta
        return self

    def predict(
        self, horizon: int, level: float = 0.9, events: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Forecast ``horizon`` steps per series; ``events`` defaults to the fit-time calendar.

        Raises:
            NotFittedError: before :meth:`fit`.
            ValueError: bad ``horizon`` or ``level``.
        """
        if self._models is None:
            raise NotFittedError("ProphetEvents is not fitted: call fit(frame) before predict()")
        horizon = check_horizon_level(horizon, level)
        _quiet()
        future_events = self._events if events is None else normalise_events(events)
        parts = []
        for uid in sorted(self._models):
            m, meta = self._models[uid], self._meta[uid]
            ds_ns = meta["last_ds_ns"] + meta["step_ns"] * np.arange(1, horizon + 1, dtype=np.int64)
            ds = to_utc(ds_ns)
            df = pd.DataFrame({"ds": ds.tz_localize(None)})
            if meta["regressors"]:
                X = self._features(ds, future_events)
                df = pd.concat([df, X[meta["regressors"]].set_axis(df.index)], axis=1)
            m.interval_width = float(level)
            rng_state = np.random.get_state()  # Prophet samples from the global RNG
            try:
                np.random.seed(self.seed)
                with warnings.catch_warnings():
                    _ignore_third_party()
                    out = m.predict(df)
            finally:
                np.random.set_state(rng_state)
            yhat = out["yhat"].to_numpy(dtype=float)
            lower = np.minimum(out["yhat_lower"].to_numpy(dtype=float), yhat)
            upper = np.maximum(out["yhat_upper"].to_numpy(dtype=float), yhat)
            if meta["nonneg"]:
                yhat = np.maximum(yhat, 0.0)
                lower, upper = np.clip(lower, 0.0, yhat), np.maximum(upper, yhat)
            parts.append((uid, ds_ns, yhat, lower, upper))
        return forecast_frame(parts, horizon, self.name, level)

    def to_dict(self) -> dict[str, Any]:
        """Parameters, classes, kept events and per-series ``model_to_json`` strings."""
        from prophet.serialize import model_to_json

        return {
            "model": self.name,
            "format": _FORMAT,
            "params": {
                "seed": self.seed, "uncertainty_samples": self.uncertainty_samples,
                "bin_minutes": self.bin_minutes, "min_class_events": self.min_class_events,
                "daily_fourier": self.daily_fourier,
            },
            "classes": list(self._classes),
            "events": events_to_records(self._events),
            "state": None if self._models is None else {
                uid: {"prophet": model_to_json(self._models[uid]), **self._meta[uid]}
                for uid in sorted(self._models)
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a model saved by :meth:`to_dict` (``model_from_json``; no pickle).

        Raises:
            ModelError: ``d`` is not a saved ``ProphetEvents`` of a known format.
        """
        check_saved(d, key="model", name=cls.name, fmt=_FORMAT)
        model = cls(**d["params"])
        model._classes = list(d["classes"])
        model._events = records_to_events(d["events"])
        if d["state"] is not None:
            from prophet.serialize import model_from_json

            with warnings.catch_warnings():
                _ignore_third_party()
                model._models = {uid: model_from_json(v["prophet"]) for uid, v in d["state"].items()}
            model._meta = {
                uid: {k: v[k] for k in ("step_ns", "last_ds_ns", "regressors", "nonneg")}
                for uid, v in d["state"].items()
            }
        return model
