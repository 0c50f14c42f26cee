"""SeasonalNaive: exact numbers on hand-made series, gaps, short history, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import FrameError, InsufficientHistoryError, ModelError, SeasonalNaive
from models.forecasting.seasonal_naive import (
    fill_seasonal_gaps,
    interval_offsets,
    naive_path,
    seasonal_residuals,
)

PATTERN = np.array([5, 3, 2, 2, 3, 6, 12, 20, 25, 22, 20, 21, 24, 22, 20, 21, 25, 30, 38, 45,
                    40, 30, 18, 9], dtype=float)


def hourly(values, uid: str = "svc:rps", start: str = "2026-03-02") -> pd.DataFrame:
    ds = pd.date_range(start, periods=len(values), freq="h", tz="UTC").as_unit("ns")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(values, dtype=float)})


def test_perfect_daily_pattern_predicts_itself_with_zero_width():
    fc = SeasonalNaive().fit(hourly(np.tile(PATTERN, 3))).predict(48)
    np.testing.assert_array_equal(fc["yhat"], np.tile(PATTERN, 2))
    np.testing.assert_array_equal(fc["yhat_lower"], fc["yhat"])
    np.testing.assert_array_equal(fc["yhat_upper"], fc["yhat"])
    assert fc["ds"].iloc[0] == pd.Timestamp("2026-03-05", tz="UTC")


def test_season_inferred_from_one_minute_steps():
    ds = pd.date_range("2026-03-02", periods=1441 + 60, freq="min", tz="UTC")
    y = np.arange(ds.size, dtype=float) % 1440
    model = SeasonalNaive().fit(pd.DataFrame({"unique_id": "a", "ds": ds, "y": y}))
    assert model.to_dict()["state"]["a"]["season"] == 1440
    fc = model.predict(3)
    np.testing.assert_array_equal(fc["yhat"], [61.0, 62.0, 63.0])  # one day before each point


def test_interval_is_the_empirical_residual_quantile():
    # residuals y[t] - y[t-3] are [0, 0, 0, 0, 0, 1]: q05 = 0, q95 = 0.75 (linear interpolation)
    frame = hourly([1, 2, 3, 1, 2, 3, 1, 2, 4])
    fc = SeasonalNaive(season_length=3).fit(frame).predict(3, level=0.9)
    np.testing.assert_array_equal(fc["yhat"], [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(fc["yhat_lower"], fc["yhat"])
    np.testing.assert_allclose(fc["yhat_upper"], [1.75, 2.75, 4.75], rtol=0, atol=1e-12)


def test_interval_grows_with_sqrt_of_seasons_ahead():
    rng = np.random.default_rng(1)
    frame = hourly(100 + np.tile(PATTERN, 10) + rng.normal(0, 3, 240))
    fc = SeasonalNaive().fit(frame).predict(72, level=0.9)
    width = (fc["yhat_upper"] - fc["yhat_lower"]).to_numpy()
    np.testing.assert_allclose(width[:24], width[0])
    np.testing.assert_allclose(width[24:48], width[0] * np.sqrt(2))
    np.testing.assert_allclose(width[48:], width[0] * np.sqrt(3))


def test_higher_level_gives_wider_interval():
    rng = np.random.default_rng(2)
    model = SeasonalNaive().fit(hourly(rng.poisson(np.tile(PATTERN * 5, 8))))
    w80 = model.predict(24, 0.8).eval("yhat_upper - yhat_lower")
    w99 = model.predict(24, 0.99).eval("yhat_upper - yhat_lower")
    assert (w99 > w80).all()


def test_interval_coverage_on_held_out_poisson_day():
    rng = np.random.default_rng(20260302)
    hits = []
    for i in range(12):
        y = rng.poisson(np.tile(PATTERN * (3 + i), 22)).astype(float)
        model = SeasonalNaive().fit(hourly(y[:-24], uid=f"s{i}"))
        fc = model.predict(24, level=0.9)
        hits.append((fc["yhat_lower"] <= y[-24:]) & (y[-24:] <= fc["yhat_upper"]))
    coverage = float(np.mean(np.concatenate(hits)))
    assert 0.8 <= coverage <= 0.97, coverage


def test_lower_bound_clipped_at_zero_only_for_non_negative_series():
    rng = np.random.default_rng(3)
    counts = hourly(rng.poisson(np.tile(PATTERN / 5, 6)))
    assert (SeasonalNaive().fit(counts).predict(24)["yhat_lower"] >= 0).all()
    signed = hourly(rng.normal(0, 5, 24 * 6))
    assert (SeasonalNaive().fit(signed).predict(24)["yhat_lower"] < 0).any()


def test_gaps_take_the_previous_season_value():
    y = np.concatenate([PATTERN + 10 * d for d in range(4)])
    frame = hourly(y).drop(index=[3 * 24 + 5, 3 * 24 + 6])  # hours 5 and 6 of the last day
    fc = SeasonalNaive().fit(frame).predict(24)
    expected = PATTERN + 30
    expected[[5, 6]] = PATTERN[[5, 6]] + 20
    np.testing.assert_array_equal(fc["yhat"], expected)
    # residuals come from observed pairs only: every one of them is exactly +10
    np.testing.assert_allclose(fc["yhat_upper"] - fc["yhat"], 10.0)
    np.testing.assert_allclose(fc["yhat_lower"], fc["yhat"])


def test_gap_at_the_end_still_forecasts_from_the_grid_after_last_point():
    frame = hourly(np.tile(PATTERN, 3)).iloc[:-1]  # last point 23:00 missing
    fc = SeasonalNaive().fit(frame).predict(2)
    assert fc["ds"].iloc[0] == pd.Timestamp("2026-03-04 23:00", tz="UTC")
    np.testing.assert_array_equal(fc["yhat"], [PATTERN[23], PATTERN[0]])


def test_missing_values_are_gaps():
    frame = hourly(np.tile(PATTERN, 3))
    frame.loc[30, "y"] = np.nan
    fc = SeasonalNaive().fit(frame).predict(24)
    np.testing.assert_array_equal(fc["yhat"], PATTERN)


@pytest.mark.parametrize(("hours", "need"), [(1, "one full season"), (10, "25"), (24, "25")])
def test_short_history_names_the_series_and_the_need(hours, need):
    frame = pd.concat([hourly(np.tile(PATTERN, 2), uid="ok"), hourly(PATTERN[:hours], uid="new")])
    with pytest.raises(InsufficientHistoryError, match=f"'new'.*{need}"):
        SeasonalNaive().fit(frame)


def test_no_observed_pair_one_season_apart_raises():
    frame = hourly(np.tile(PATTERN, 2)).iloc[list(range(12)) + list(range(36, 48))]
    with pytest.raises(InsufficientHistoryError, match="no pair"):
        SeasonalNaive().fit(frame)


def test_events_are_accepted_and_ignored():
    frame = hourly(np.tile(PATTERN, 3))
    events = pd.DataFrame({"event_id": ["e1"], "start": [pd.Timestamp("2026-03-05 19:00Z")],
                           "end": [pd.Timestamp("2026-03-05 21:00Z")], "sport": ["football"],
                           "competition": ["league"], "importance": [1.0]})
    with_events = SeasonalNaive().fit(frame, events=events).predict(24)
    pd.testing.assert_frame_equal(with_events, SeasonalNaive().fit(frame).predict(24))


def test_bad_frames_raise_frame_errors():
    frame = hourly(np.tile(PATTERN, 2))
    with pytest.raises(FrameError, match="'y'"):
        SeasonalNaive().fit(frame.drop(columns="y"))
    with pytest.raises(FrameError, match="timezone"):
        SeasonalNaive().fit(frame.assign(ds=frame["ds"].dt.tz_localize(None)))
    with pytest.raises(FrameError, match="duplicate"):
        SeasonalNaive().fit(pd.concat([frame, frame.tail(1)]))


@pytest.mark.parametrize("kwargs", [{"season_length": 0}, {"season_length": 2.5},
                                    {"period": "-1D"}, {"period": "0s"}])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        SeasonalNaive(**kwargs)


def test_period_must_be_whole_number_of_steps():
    ds = pd.date_range("2026-03-02", periods=400, freq="7min", tz="UTC")
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": 1.0})
    with pytest.raises(ValueError, match="whole number"):
        SeasonalNaive().fit(frame)


def test_model_saved_by_format_1_still_loads():
    saved = {
        "model": "seasonal_naive", "format": 1,
        "params": {"season_length": None, "period": "1 days 00:00:00"},
        "state": {"a": {"step_ns": 43_200_000_000_000, "season": 2,
                        "last_ds_ns": 1_772_409_600_000_000_000, "last_season": [4.0, 8.0],
                        "quantiles": np.linspace(-2.0, 2.0, 201).tolist(), "nonneg": True}},
    }
    fc = SeasonalNaive.from_dict(saved).predict(3, level=0.5)
    assert fc["ds"].tolist() == list(pd.to_datetime(
        ["2026-03-02 12:00", "2026-03-03 00:00", "2026-03-03 12:00"], utc=True))
    np.testing.assert_allclose(fc["yhat"], [4.0, 8.0, 4.0])
    np.testing.assert_allclose(fc["yhat_upper"], [5.0, 9.0, 4.0 + np.sqrt(2)])
    np.testing.assert_allclose(fc["yhat_lower"], [3.0, 7.0, 4.0 - np.sqrt(2)])


def test_from_dict_rejects_other_payloads():
    with pytest.raises(ModelError, match="seasonal_naive"):
        SeasonalNaive.from_dict({"model": "prophet", "format": 1})


def test_pure_helpers():
    np.testing.assert_array_equal(
        fill_seasonal_gaps(np.array([np.nan, 2.0, 3.0, 4.0, np.nan, np.nan]), 2), [3, 2, 3, 4, 3, 4]
    )
    np.testing.assert_array_equal(seasonal_residuals(np.array([1.0, 5, 2, np.nan, 4]), 2), [1, 2])
    np.testing.assert_array_equal(naive_path(np.array([1.0, 2.0]), 3), [1, 2, 1])
    lo, hi = interval_offsets(np.linspace(1.0, 3.0, 201), 0.9, 2, 1)  # all residuals positive
    np.testing.assert_allclose(lo, [0.0, 0.0])
    np.testing.assert_allclose(hi, [2.9, 2.9 * np.sqrt(2)])
