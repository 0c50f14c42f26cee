"""MSTL and ETS forecasters: behaviour on synthetic seasonal data and interval coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecasting import ETS, MSTLForecaster
from models.forecasting._components import component_path, damped_steps
from models.forecasting.mstl import best_ses_alpha, mstl_periods, ses_levels


def frame_of(y: np.ndarray, freq: str = "h") -> pd.DataFrame:
    ds = pd.date_range("2026-01-05", periods=y.size, freq=freq, tz="UTC")
    return pd.DataFrame({"unique_id": "s", "ds": ds, "y": y})


def test_pure_helpers():
    assert damped_steps(1.0, 3).tolist() == [1.0, 2.0, 3.0]
    assert component_path(1.0, 1.0, 1.0, [np.array([0.0, 1.0])], 3).tolist() == [2.0, 4.0, 4.0]
    assert ses_levels(np.array([4.0, 8.0]), 1.0).tolist() == [4.0, 8.0]
    assert best_ses_alpha(np.ones(30), 3) == 0.02  # all equal: first alpha wins ties
    assert mstl_periods(24 * 15, 24) == [24, 168] and mstl_periods(24 * 14, 24) == [24]


@pytest.mark.parametrize("cls", [MSTLForecaster, ETS])
def test_recovers_noise_free_seasonal_pattern(cls):
    t = np.arange(24 * 21)
    y = 100 + 30 * np.sin(2 * np.pi * t / 24) + 10 * np.cos(2 * np.pi * t / 168)
    fc = cls().fit(frame_of(y)).predict(24)
    t_next = np.arange(t.size, t.size + 24)
    truth = 100 + 30 * np.sin(2 * np.pi * t_next / 24) + 10 * np.cos(2 * np.pi * t_next / 168)
    tol = 1.0 if cls is MSTLForecaster else 12.0  # ETS has no weekly season
    assert np.max(np.abs(fc["yhat"].to_numpy() - truth)) < tol


@pytest.mark.parametrize("cls", [MSTLForecaster, ETS])
def test_interval_coverage_on_held_out_poisson(cls):
    rng = np.random.default_rng(11)
    cover = []
    for _ in range(6):
        t = np.arange(24 * 24)
        lam = 60 + 50 * np.sin(2 * np.pi * t / 24) ** 2
        y = rng.poisson(lam).astype(float)
        train, test = y[:-24], y[-24:]
        fc = cls().fit(frame_of(train)).predict(24, level=0.9)
        cover.append(np.mean((test >= fc["yhat_lower"]) & (test <= fc["yhat_upper"])))
    assert 0.8 <= float(np.mean(cover)) <= 0.97


def test_short_history_raises_with_series_name():
    from models import InsufficientHistoryError

    with pytest.raises(InsufficientHistoryError, match="'s'"):
        ETS().fit(frame_of(np.arange(30.0)))


# ETS and MSTL are in models.FORECASTERS: tests/test_models_conformance.py covers them.
