"""The service-side forecasting pieces: chosen-model cache, ensembles, the retrain policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surgecast.forecasting import Choice, ChosenForecasts, combine_median
from surgecast.retrain import RetrainPolicy, select_many, select_one

STEP = pd.Timedelta("10min")


def series(days: int = 10, uid: str = "s:rps") -> pd.DataFrame:
    ds = pd.date_range("2026-11-01", periods=days * 144, freq=STEP, tz="UTC")
    rng = np.random.default_rng(3)
    daily = 100 + 50 * np.sin(2 * np.pi * np.arange(len(ds)) / 144)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": rng.poisson(daily).astype(float)})


def test_combine_median_is_pointwise_and_keeps_bounds_ordered():
    ds = pd.date_range("2026-01-01", periods=2, freq="h", tz="UTC")
    frames = [
        pd.DataFrame({"unique_id": "a", "ds": ds, "yhat": [1.0, 5.0], "yhat_lower": [0.0, 4.0],
                      "yhat_upper": [2.0, 6.0]}),
        pd.DataFrame({"unique_id": "a", "ds": ds, "yhat": [3.0, 7.0], "yhat_lower": [2.9, 6.0],
                      "yhat_upper": [3.5, 9.0]}),
        pd.DataFrame({"unique_id": "a", "ds": ds, "yhat": [2.0, 6.0], "yhat_lower": [1.0, 5.5],
                      "yhat_upper": [2.5, 8.0]}),
    ]  # fmt: skip
    out = combine_median(frames)
    assert out["yhat"].tolist() == [2.0, 6.0]
    assert out["yhat_lower"].tolist() == [1.0, 5.5]
    assert out["yhat_upper"].tolist() == [2.5, 8.0]
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()


def test_a_chosen_model_is_refitted_only_every_refit_interval():
    frame = series()
    now = frame["ds"].iloc[-1] + STEP
    cache = ChosenForecasts(refit=pd.Timedelta("30min"))
    choice = Choice("seasonal_mean_1d", ("seasonal_mean_1d",), "v1")
    first, failure = cache.forecast(choice, frame, now, 6, STEP, 0.9)
    assert failure is None and len(first) == 6 and set(first["model"]) == {"seasonal_mean_1d"}
    later = now + pd.Timedelta("20min")
    again, _ = cache.forecast(choice, frame, later, 6, STEP, 0.9)
    assert again["ds"].iloc[0] == later  # sliced from the cached fit
    pd.testing.assert_frame_equal(
        again.head(4).reset_index(drop=True),
        first[first["ds"] >= later].head(4).reset_index(drop=True),
    )
    assert cache._cache["s:rps"].fitted_at == now
    cache.forecast(choice, frame, now + pd.Timedelta("40min"), 6, STEP, 0.9)
    assert cache._cache["s:rps"].fitted_at == now + pd.Timedelta("40min")


def test_a_failing_choice_falls_back_to_the_floor_and_says_so(monkeypatch):
    frame = series()
    now = frame["ds"].iloc[-1] + STEP

    def boom(self, frame, events=None):
        raise ValueError("no convergence")

    monkeypatch.setattr("models.forecasting.seasonal_mean.SeasonalMean.fit", boom)
    out, failure = ChosenForecasts(pd.Timedelta("15min")).forecast(
        Choice("seasonal_mean_7d", ("seasonal_mean_7d",)), frame, now, 3, STEP, 0.9
    )
    assert set(out["model"]) == {"seasonal_naive[fallback:seasonal_mean_7d]"}
    assert "no convergence" in failure


def test_select_one_picks_a_catalogue_model_and_records_the_window():
    policy = RetrainPolicy(train_window_days=10, horizon_minutes=60, windows=2,
                           candidates=("seasonal_naive", "seasonal_mean_1d"))  # fmt: skip
    result = select_one(series(), policy)
    assert result.error is None
    assert result.model in {"seasonal_naive", "seasonal_mean_1d", "ensemble_median"}
    assert result.n_points == 1440 and len(result.data_hash) == 16
    assert result.train_start.startswith("2026-11-01")


def test_select_many_isolates_a_failing_series():
    policy = RetrainPolicy(windows=2, candidates=("seasonal_naive",))
    short = series(days=1, uid="short:rps").head(5)
    results = {r.unique_id: r for r in select_many([series(), short], policy, n_jobs=1)}
    assert results["s:rps"].model == "seasonal_naive"
    assert results["short:rps"].model is None and results["short:rps"].error


@pytest.mark.parametrize("minutes", [1, 60, 61])
def test_policy_horizon_in_steps(minutes):
    assert RetrainPolicy(horizon_minutes=minutes).horizon_steps(pd.Timedelta("1min")) == minutes
