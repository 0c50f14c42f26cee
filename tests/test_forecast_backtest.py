"""Backtest metrics, rolling origins, conformal offsets and ``auto`` selection (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import ModelError, SeasonalNaive
from models.forecasting.backtest import coverage, cutoff_indices, mase, rolling_origin, smape
from models.forecasting.seasonal_mean import SeasonalMean
from models.forecasting.selection import backtest_metrics, conformal_offsets, select_and_fit


def hourly(days: int, seed: int = 3, weekly: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    lam = 80 + 50 * np.sin(2 * np.pi * t / 24) + weekly * (((t // 24) % 7) >= 5)
    ds = pd.date_range("2026-01-05", periods=t.size, freq="h", tz="UTC")
    return pd.DataFrame({"unique_id": "s", "ds": ds, "y": rng.poisson(lam).astype(float)})


def test_metrics_exact_values():
    assert smape(np.array([100.0, 0.0]), np.array([50.0, 0.0])) == pytest.approx(100 / 3)
    assert mase(np.array([3.0]), np.array([1.0]), np.array([0.0, 1.0, 2.0, 3.0]), 2) == 1.0
    assert mase(np.array([3.0]), np.array([1.0]), np.array([5.0, 5.0, 5.0]), 1) == 2.0  # flat
    assert coverage(np.array([1.0, 5.0, 2.0]), np.zeros(3), np.full(3, 2.0)) == pytest.approx(2 / 3)


def test_rolling_origin_windows():
    f = pd.DataFrame({"unique_id": "a", "ds": range(20), "y": np.arange(20.0)})
    wins = rolling_origin(f, 4, 3)
    assert [len(tr) for tr, _ in wins] == [8, 12, 16]
    assert [te["y"].tolist()[0] for _, te in wins] == [8.0, 12.0, 16.0]
    assert all(len(te) == 4 for _, te in wins)
    assert len(rolling_origin(f, 4, 10)) == 4  # origins leaving < horizon training points drop
    assert cutoff_indices(100, 10, 3, 5, 50) == [80, 85, 90]
    with pytest.raises(ValueError, match="horizon"):
        rolling_origin(f, 0, 3)


def test_conformal_offsets_straddle_and_grow():
    rng = np.random.default_rng(0)
    errors = rng.normal(size=(4, 48)) * np.linspace(1, 3, 48)
    lo, hi = conformal_offsets(errors, 0.9, 60)
    assert lo.shape == hi.shape == (60,)
    assert (lo <= 0).all() and (hi >= 0).all()
    assert (np.diff(hi[:48]) >= 0).all() and (np.diff(lo[:48]) <= 0).all()
    assert hi[-1] > hi[47]  # steps past the backtest widen with sqrt(step)
    lo0, hi0 = conformal_offsets(np.full((2, 5), 3.0), 0.9, 5)
    assert lo0.tolist() == [0.0] * 5 and hi0.tolist() == [3.0] * 5  # biased errors: one side


def test_seasonal_mean_uses_same_weekday():
    frame = hourly(28, weekly=60.0)
    fc = SeasonalMean("7D", k=3).fit(frame).predict(24 * 7)
    weekend = fc["ds"].dt.day_of_week >= 5
    assert fc.loc[weekend, "yhat"].mean() - fc.loc[~weekend, "yhat"].mean() > 40
    with pytest.raises(ValueError, match="agg"):
        SeasonalMean(agg="mode")


def test_selection_picks_weekly_candidate_and_calibrates():
    frame = hourly(35, weekly=80.0)
    builders = {"daily": SeasonalNaive, "weekly_mean": lambda: SeasonalMean("7D", k=3)}
    fc, sel = select_and_fit(frame.iloc[:-24], 24, 0.9, builders, season=24)
    assert sel.model == "weekly_mean" and sel.windows == 5
    assert set(fc["model"]) == {"weekly_mean"} and len(fc) == 24
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    cover = []
    for seed in range(8):  # one day's coverage is noisy: average over held-out days
        f = hourly(35, seed=seed, weekly=80.0)
        out, _ = select_and_fit(f.iloc[:-24], 24, 0.9, builders, season=24)
        cover.append(coverage(f["y"].to_numpy()[-24:], out["yhat_lower"], out["yhat_upper"]))
    assert 0.75 <= float(np.mean(cover)) <= 0.99


def test_selection_records_backtest_smape_and_held_out_coverage():
    frame = hourly(35, weekly=80.0)
    builders = {"daily": SeasonalNaive, "weekly_mean": lambda: SeasonalMean("7D", k=3)}
    _, sel = select_and_fit(frame, 24, 0.9, builders, season=24)
    # Poisson noise around a level of 80-130: a good backtest is off by about a tenth, in percent
    # (a fraction, or a forecast of zeros at 200, would fail)
    assert 3 < sel.metrics["smape"] < 25
    assert 0.5 <= sel.metrics["coverage"] <= 1.0


def test_backtest_metrics_hold_each_window_out_of_its_interval():
    actual = np.full((3, 4), 100.0)
    calm = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, -1.0, 1.0, -1.0]])
    # the third window's errors are far beyond what the other two calibrate: never covered
    errors = np.vstack([calm, [[50.0, -50.0, 50.0, -50.0]]])
    got = backtest_metrics(actual, errors, 0.9)
    assert got["coverage"] == pytest.approx(2 / 3)  # two windows fully in, one fully out
    assert got["smape"] == pytest.approx(smape(actual.ravel(), (actual - errors).ravel()))
    assert "coverage" not in backtest_metrics(actual[:1], errors[:1], 0.9)  # one window: unknown


def test_selection_skips_failing_candidate_and_raises_when_none_left():
    class Broken(SeasonalNaive):
        def fit(self, frame, events=None):
            raise ModelError("boom")

    frame = hourly(10)
    fc, sel = select_and_fit(frame, 6, 0.9, {"ok": SeasonalNaive, "bad": Broken}, season=24)
    assert sel.model == "ok" and "bad" not in sel.scores
    with pytest.raises(ModelError, match="no candidate"):
        select_and_fit(frame, 6, 0.9, {"bad": Broken}, season=24)
    with pytest.raises(ModelError, match="no backtest window"):
        select_and_fit(frame.head(50), 6, 0.9, {"ok": SeasonalNaive}, season=24)


# the shared conformance suite over SeasonalMean (a daily variant: the suite's frame is 4 days)
import tests.test_models_conformance as conf  # noqa: E402


class DailyMean(SeasonalMean):
    def __init__(self, period: str = "1D", k: int = 3, agg: str = "median") -> None:
        super().__init__(period, k, agg)


CONFORMANCE = [
    conf.test_forecaster_fit_returns_self, conf.test_predict_before_fit_raises,
    conf.test_forecast_columns_dtypes_and_grid, conf.test_forecast_interval_ordered_and_finite,
    conf.test_forecaster_is_deterministic, conf.test_forecaster_json_round_trip,
    conf.test_forecaster_series_are_independent, conf.test_forecaster_input_order_does_not_matter,
    conf.test_forecaster_short_history_raises,
]


@pytest.mark.parametrize("check", CONFORMANCE, ids=lambda f: f.__name__)
def test_seasonal_mean_conformance(check, monkeypatch):
    monkeypatch.setitem(conf.FORECASTERS, DailyMean.name, DailyMean)
    check(DailyMean)


def test_combination_weights_inverse_score_top_and_ratio():
    from models.forecasting.selection import combination_weights

    w = combination_weights({"a": 1.0, "b": 1.2, "c": 1.4, "d": 1.3})
    assert list(w) == ["a", "b", "d"]  # the three best, best first
    assert w["a"] / w["b"] == pytest.approx(1.2) and sum(w.values()) == pytest.approx(1.0)
    assert combination_weights({"a": 1.0, "b": 1.6}) == {"a": 1.0}  # past MAX_RATIO: left out
    assert combination_weights({"a": 1.0, "b": 1.1}, choose="b") == {"b": 1.0}
    assert combination_weights({"a": 0.0, "b": 1.0}) == {"a": 1.0}  # a perfect backtest


def test_isotonic_and_band_never_narrows():
    from models.forecasting.selection import isotonic

    assert isotonic(np.array([3.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0])).tolist() == [2.0] * 3
    rng = np.random.default_rng(0)
    errors = rng.normal(size=(5, 96)) * np.sqrt(np.arange(1, 97))
    lo, hi = conformal_offsets(errors, 0.9, 120)
    assert (np.diff(hi) >= -1e-12).all() and (np.diff(lo) <= 1e-12).all()
    assert (lo <= 0).all() and (hi >= 0).all()


def test_selection_blends_close_candidates():
    frame = hourly(21, seed=5)
    builders = {"naive": SeasonalNaive, "mean3": lambda: SeasonalMean("1D", k=3),
                "mean7": lambda: SeasonalMean("1D", k=7)}
    fc, sel = select_and_fit(frame, 24, 0.9, builders, season=24)
    assert abs(sum(sel.weights.values()) - 1.0) < 1e-12 and len(sel.weights) >= 2
    assert set(fc["model"]) == {"+".join(sel.weights)}
    parts = {n: b().fit(frame).predict(24)["yhat"].to_numpy() for n, b in builders.items()}
    parts["ensemble_median"] = np.median(np.vstack(list(parts.values())), axis=0)
    expect = sum(w * parts[o] for o, w in sel.weights.items())
    np.testing.assert_allclose(fc["yhat"], np.maximum(expect, 0.0))
    forced, s2 = select_and_fit(frame, 24, 0.9, builders, season=24, choose="ensemble_median")
    assert s2.weights == {"ensemble_median": 1.0}
    np.testing.assert_allclose(forced["yhat"], np.maximum(parts["ensemble_median"], 0.0))
