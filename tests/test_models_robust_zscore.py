"""RobustZScore: exact numbers, injected anomalies, causality, warm-up, not learning anomalies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import InsufficientHistoryError, ModelError, NotFittedError, RobustZScore
from models.anomaly.seasonal_stats import anomaly_score, phase_offsets, rolling_mean

SIGMA = 1.4826
# the scale from 3 reference values with MAD 1: small-sample MAD correction and median noise
SCALE3 = SIGMA * 3 / 2.2 * np.sqrt(1 + np.pi / 6)
STEP = pd.Timedelta("10min")  # 144 points a day; neighbourhood 0 steps, scale window ±6 steps


def hourly(values, uid: str = "svc:rps", start: str = "2026-03-02") -> pd.DataFrame:
    ds = pd.date_range(start, periods=len(values), freq="h", tz="UTC").as_unit("ns")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(values, dtype=float)})


def traffic(days: int = 9, seed: int = 11, uid: str = "bets:bps") -> pd.DataFrame:
    """Ten-minute Poisson traffic with a large evening peak (×6 at 20:00) every day."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-03-02", periods=days * 144, freq=STEP, tz="UTC").as_unit("ns")
    hour = (ds.hour + ds.minute / 60).to_numpy()
    mean = 100 + 500 * np.exp(-(((hour - 20) / 1.5) ** 2))
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": rng.poisson(mean).astype(float)})


def at(frame: pd.DataFrame, when: str) -> int:
    return int(np.flatnonzero(frame["ds"] == pd.Timestamp(when, tz="UTC"))[0])


def test_exact_median_mad_band_and_kind():
    # each hour was 100, 101, 102 on the three previous days: median 101, MAD 1
    history = hourly(np.repeat([100.0, 101.0, 102.0], 24))
    det = RobustZScore(n_seasons=3, rel_floor=0.0, min_scale=0.5).fit(history)
    assert det.to_dict()["history"]["svc:rps"]["values"] == history["y"].tolist()  # none flagged
    z = np.array([0.0, 3.999, 4.001, -5.0])
    out = det.score(hourly(101 + z * SCALE3, start="2026-03-05"))
    np.testing.assert_allclose(out["expected"], 101.0)
    np.testing.assert_allclose(out["lower"], 101 - 4 * SCALE3)
    np.testing.assert_allclose(out["upper"], 101 + 4 * SCALE3)
    assert out["is_anomaly"].tolist() == [False, False, True, True]
    assert out["kind"].tolist() == [None, None, "spike", "drop"]
    np.testing.assert_allclose(out["score"], anomaly_score(z, 4.0))


def test_relative_floor_on_a_flat_series():
    det = RobustZScore(n_seasons=3).fit(hourly(np.full(72, 100.0)))
    out = det.score(hourly([107.0, 109.0, 91.0], start="2026-03-05"), learn=False)
    # MAD is 0, so the scale is rel_floor * median = 2: z = 3.5, 4.5, -4.5
    np.testing.assert_allclose(out["score"], anomaly_score(np.array([3.5, 4.5, -4.5]), 4.0))
    assert out["kind"].tolist() == [None, "spike", "drop"]


def test_min_scale_floor_for_sparse_counts():
    history, new = hourly(np.zeros(72)), hourly([1.0, 5.0], start="2026-03-05")
    assert RobustZScore().fit(history).score(new)["is_anomaly"].tolist() == [True, True]
    counted = RobustZScore(min_scale=1.0).fit(history).score(new)
    assert counted["is_anomaly"].tolist() == [False, True]


def test_flags_injected_spike_and_drop_but_not_daily_peaks():
    frame = traffic()
    spike, drop = at(frame, "2026-03-09 03:00"), at(frame, "2026-03-10 20:10")
    frame.loc[spike, "y"] *= 4
    frame.loc[drop, "y"] *= 0.3
    out = RobustZScore().fit(frame).score(frame, learn=False)
    flagged = out[out["is_anomaly"]]
    assert flagged.index.tolist() == [spike, drop]
    assert flagged["kind"].tolist() == ["spike", "drop"]
    assert (flagged["score"] > 0.9).all()
    evening = out["ds"].dt.hour.isin([19, 20, 21]) & (out["score"] > 0)
    evening[drop] = False
    assert evening.sum() > 100
    assert not out.loc[evening, "is_anomaly"].any()
    assert out.loc[evening, "y"].max() > 5 * out["y"].median()  # the peaks are really there


def test_a_peak_at_an_unusual_time_is_flagged():
    frame = traffic()
    morning = (frame["ds"] >= "2026-03-10T08:00Z") & (frame["ds"] < "2026-03-10T09:00Z")
    frame.loc[morning, "y"] = 600.0  # an evening-sized peak, in the morning
    out = RobustZScore().fit(frame).score(frame, learn=False)
    assert out.loc[morning, "is_anomaly"].all()
    assert set(out.loc[morning, "kind"]) == {"spike"}


def test_scoring_is_causal():
    frame = traffic()
    base = RobustZScore().fit(frame).score(frame, learn=False)
    t = at(frame, "2026-03-08 12:00")
    changed = frame.copy()
    changed.loc[t:, "y"] = changed.loc[t:, "y"] * 3 + 50
    out = RobustZScore().fit(changed).score(changed, learn=False)
    pd.testing.assert_frame_equal(out.iloc[:t], base.iloc[:t])
    assert out.loc[t, "score"] != base.loc[t, "score"]


# 10-minute data has no phase neighbours, so 3 values need 3 seasons whatever the minimum
@pytest.mark.parametrize(("min_history_seasons", "cold_days"), [(1, 3), (4, 4)])
def test_warm_up_scores_zero(min_history_seasons, cold_days):
    frame = traffic(days=5)
    frame.loc[10, "y"] = 1e6  # would be a huge anomaly with history
    det = RobustZScore(min_history_seasons=min_history_seasons)
    out = det.fit(frame).score(frame, learn=False)
    cold = 144 * cold_days
    assert (out["score"].iloc[:cold] == 0).all()
    assert not out["is_anomaly"].iloc[:cold].any()
    assert out[["expected", "lower", "upper"]].iloc[:cold].isna().all().all()
    assert out[["expected", "lower", "upper"]].iloc[cold:].notna().all().all()


def test_flagged_points_are_not_learned_they_count_as_missing():
    frame = traffic()
    outage = (frame["ds"] >= "2026-03-07T19:00Z") & (frame["ds"] < "2026-03-07T21:00Z")
    attacked = frame.assign(y=np.where(outage, frame["y"] * 8, frame["y"]))
    det = RobustZScore()
    scored = det.fit(attacked).score(attacked, learn=False)
    assert scored.loc[outage, "is_anomaly"].all()
    missing = frame[~outage]
    reference = RobustZScore().fit(missing).score(missing, learn=False)
    after = scored["ds"] >= "2026-03-07T21:00Z"
    pd.testing.assert_frame_equal(
        scored[after].reset_index(drop=True),
        reference[reference["ds"] >= "2026-03-07T21:00Z"].reset_index(drop=True),
    )


def test_online_scoring_stores_only_normal_points():
    frame = traffic(days=3)
    det = RobustZScore().fit(frame)
    ds = frame["ds"].iloc[-1] + STEP * np.arange(1, 4)
    y = [frame["y"].iloc[-144], 9000.0, frame["y"].iloc[-142]]  # same phase yesterday
    new = pd.DataFrame({"unique_id": "bets:bps", "ds": ds, "y": y})
    out = det.score(new)
    assert out["is_anomaly"].tolist() == [False, True, False]
    stored = det.to_dict()["history"]["bets:bps"]
    assert stored["values"][-3:] == [new["y"].iloc[0], None, new["y"].iloc[2]]
    assert stored["last_ds_ns"] == new["ds"].iloc[-1].value


def test_batch_equals_online_point_by_point():
    frame = traffic()
    frame.loc[at(frame, "2026-03-08 20:00"), "y"] *= 5  # masked in both paths
    # seen (through the pooled scale) by the points at the end of the same day: it must be
    # masked before them, in batch as online
    frame.loc[at(frame, "2026-03-09 00:20"), "y"] *= 5
    frame.loc[at(frame, "2026-03-10 02:00"), "y"] *= 5
    batch = RobustZScore().fit(frame).score(frame, learn=False)
    cut = at(frame, "2026-03-09 12:00")
    det = RobustZScore().fit(frame.iloc[:cut])
    pieces = [det.score(frame.iloc[i : i + 1]) for i in range(cut, cut + 20)]
    pieces.append(det.score(frame.iloc[cut + 20 :]))
    online = pd.concat(pieces, ignore_index=True)
    pd.testing.assert_frame_equal(online, batch.iloc[cut:].reset_index(drop=True))
    assert online["is_anomaly"].sum() == 1


def test_rescoring_the_fitted_window_is_idempotent():
    frame = traffic(days=4)
    det = RobustZScore().fit(frame)
    saved = det.to_dict()
    first = det.score(frame)
    assert det.to_dict() == saved
    pd.testing.assert_frame_equal(det.score(frame), first)


def test_learn_false_keeps_the_state():
    frame = traffic(days=4)
    det = RobustZScore().fit(frame.iloc[:-10])
    saved = det.to_dict()
    det.score(frame.iloc[-10:], learn=False)
    assert det.to_dict() == saved
    det.score(frame.iloc[-10:])
    assert det.to_dict() != saved


def test_history_is_bounded_and_season_inferred():
    ds = pd.date_range("2026-03-02", periods=9 * 1440, freq="min", tz="UTC")
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": 100.0 + (np.arange(ds.size) % 1440)})
    stored = RobustZScore(n_seasons=3).fit(frame).to_dict()["history"]["a"]
    assert stored["season"] == 1440
    # n_seasons seasons, plus the ±2-step phase window and the ±60-step scale window
    assert len(stored["values"]) == 3 * 1440 + 2 + 60


def test_series_with_different_steps():
    frame = pd.concat([traffic(days=3, uid="ten"), hourly(np.tile(np.arange(24.0), 3), uid="hour")])
    det = RobustZScore().fit(frame)
    history = det.to_dict()["history"]
    assert (history["ten"]["season"], history["hour"]["season"]) == (144, 24)


def test_missing_values_are_gaps_without_rows():
    frame = traffic(days=3)
    frame.loc[[5, 200], "y"] = np.nan
    out = RobustZScore().fit(frame).score(frame, learn=False)
    assert len(out) == len(frame) - 2
    assert not out["y"].isna().any()


def test_unknown_series_with_one_point_cannot_be_scored():
    det = RobustZScore().fit(traffic(days=2))
    one = hourly([1.0], uid="brand-new")
    with pytest.raises(InsufficientHistoryError, match="brand-new"):
        det.score(one)


def test_not_fitted_and_bad_parameters():
    with pytest.raises(NotFittedError, match="RobustZScore is not fitted"):
        RobustZScore().score(traffic(days=1))
    for kwargs in ({"n_seasons": 0}, {"min_history_seasons": 8}, {"threshold": -1.0},
                   {"min_scale": 0.0}, {"season_length": 1}, {"neighbourhood": "-1min"}):
        with pytest.raises(ValueError):
            RobustZScore(**kwargs)
    with pytest.raises(ValueError, match="season"):
        RobustZScore(season_length=4, neighbourhood="30min").fit(traffic(days=1))


def test_detector_saved_by_format_1_still_loads():
    saved = {
        "detector": "robust_zscore", "format": 1,
        "params": {"season_length": None, "n_seasons": 3, "threshold": 4.0,
                   "min_history_seasons": 1, "neighbourhood": "0 days 00:02:00",
                   "period": "1 days 00:00:00", "rel_floor": 0.02, "min_scale": 1e-9,
                   "scale_window": "0 days 00:15:00"},
        "history": {"a": {"step_ns": 43_200_000_000_000, "season": 2,
                          "last_ds_ns": 1_772_409_600_000_000_000,
                          "values": [10.0, 20.0, 11.0, None, 12.0, 22.0]}},
    }
    det = RobustZScore.from_dict(saved)
    new = pd.DataFrame({"unique_id": "a", "ds": pd.to_datetime(["2026-03-02 12:00"], utc=True),
                        "y": [11.0]})
    out = det.score(new)
    assert out[["expected", "score"]].iloc[0].tolist() == [11.0, 0.0]
    with pytest.raises(ModelError, match="robust_zscore"):
        RobustZScore.from_dict({"detector": "other", "format": 1})


def test_pure_helpers():
    assert phase_offsets(24, 2, 0).tolist() == [24, 48]
    np.testing.assert_array_equal(rolling_mean(np.array([np.nan, np.nan, 4.0]), 0),
                                  [np.nan, np.nan, 4.0])
    np.testing.assert_array_equal(rolling_mean(np.array([np.nan, 2.0, 4.0]), 5), [3.0, 3.0, 3.0])
    z = np.linspace(-12, 12, 97)
    s = anomaly_score(z, 4.0)
    assert s.min() == 0.0 and s.max() < 1.0
    assert (np.diff(anomaly_score(np.abs(z[48:]), 4.0)) > 0).all()
    assert anomaly_score(np.array([4.0]), 4.0)[0] == 0.5
