"""Novelty detector: constant series, scale invariance, spikes and level shifts, online == batch."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import Novelty
from models.anomaly.novelty import _seasonal_reference, novelty_scores


def frame(y, uid: str = "svc:rps", step: str = "5min") -> pd.DataFrame:
    ds = pd.date_range("2026-03-02", periods=len(y), freq=step, tz="UTC").as_unit("ns")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(y, dtype=float)})


def noisy_daily(n: int = 2000, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 + 30 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 3, n)


def run(y, **kw) -> pd.DataFrame:
    f = frame(y)
    return Novelty(**kw).fit(f.iloc[:0]).score(f)


@pytest.mark.parametrize("value", [0.0, 7.0, -3.5, 1e9])
def test_constant_series_has_no_anomalies(value):
    out = run(np.full(1500, value))
    assert not out["is_anomaly"].any()
    assert (out["score"] == 0).all()


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([1e-3, 0.5, 3.7, 1e4]), st.integers(0, 10_000))
def test_scaling_the_series_leaves_scores_unchanged(factor, seed):
    y = noisy_daily(900, seed)
    y[700] += 60
    a = run(y)["score"].to_numpy()
    b = run(y * factor)["score"].to_numpy()
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_spike_and_drop_are_caught_once():
    y = noisy_daily()
    y[1500] += 80
    y[1800] -= 80
    out = run(y)
    flagged = [i for i in out.index[out["is_anomaly"]] if i >= 1000]  # ranges settled by then
    assert 1500 in flagged and 1800 in flagged
    assert out.loc[1500, "kind"] == "spike" and out.loc[1800, "kind"] == "drop"
    assert len(flagged) <= 3


def test_level_shift_is_caught_early_and_reported_once():
    y = noisy_daily()
    y[1400:] += 45  # within the daily range: not new extremes for a while
    out = run(y)
    hits = np.flatnonzero(out["is_anomaly"].to_numpy()[1000:]) + 1000
    assert hits.size >= 1 and 1400 <= hits[0] <= 1420
    assert hits.size <= 2


def test_broken_daily_pattern_is_caught_by_the_seasonal_view():
    t = np.arange(288 * 8)
    y = np.where((t % 288) < 144, 10.0, 20.0) + 0.1 * np.sin(t)
    y[288 * 6 + 144 : 288 * 6 + 160] = 10.0  # the daily jump does not happen: values are ordinary
    out = run(y)
    # the first days teach the ranges (new extremes there are probation); judge from day 4 on
    hits = np.flatnonzero(out["is_anomaly"].to_numpy()[288 * 4 :]) + 288 * 4
    assert hits.size >= 1 and 288 * 6 + 144 <= hits[0] <= 288 * 6 + 150
    assert hits.size == 1  # the median of 3 seasons: the odd day does not echo a day later


def test_warmup_scores_zero_and_band_is_ordered():
    out = run(noisy_daily(400), warmup=50)  # default: one season
    assert (out["score"].iloc[:50] == 0).all() and out["expected"].iloc[:50].isna().all()
    band = out.dropna(subset=["expected"])
    assert (band["lower"] <= band["expected"]).all() and (band["expected"] <= band["upper"]).all()


def test_online_equals_batch():
    y = noisy_daily(1200)
    y[900] += 70
    f = frame(y)
    batch = Novelty().fit(f.iloc[:0]).score(f)
    det = Novelty().fit(f.iloc[:600])
    parts = [det.score(f.iloc[i : i + 1]) for i in range(600, 1200)]
    online = pd.concat(parts, ignore_index=True)
    np.testing.assert_allclose(online["score"], batch["score"].iloc[600:], atol=1e-9)
    assert online["is_anomaly"].tolist() == batch["is_anomaly"].iloc[600:].tolist()


def test_online_equals_batch_to_the_bit_once_the_tail_is_cut():
    # small ranges so the stored tail (not the whole series) is what online scoring sees,
    # with gaps (NaN) and a spike, level shift and drop to score
    kw = {"window": 150, "smooth": 6, "suppress": 20, "season_length": 96}
    y = noisy_daily(1500)[::3].repeat(3)[:1500] + np.random.default_rng(1).normal(0, 0.1, 1500)
    y[700], y[1100:1160], y[1300] = 400.0, y[1100:1160] + 45, -50.0
    y[np.random.default_rng(2).random(1500) < 0.02] = np.nan
    f = frame(y)
    batch = Novelty(**kw).fit(f.iloc[:0]).score(f)
    det = Novelty(**kw).fit(f.iloc[:500])
    online = pd.concat([det.score(f.iloc[i : i + 7]) for i in range(500, 1500, 7)], ignore_index=True)
    tail = batch[batch["ds"] >= f["ds"].iloc[500]].reset_index(drop=True)
    pd.testing.assert_frame_equal(online, tail, check_exact=True)
    assert online["is_anomaly"].sum() >= 3


@pytest.mark.parametrize("seed", range(4))
def test_scores_from_a_point_on_are_the_whole_run_s(seed):
    rng = np.random.default_rng(seed)
    y = noisy_daily(1400, seed) * rng.choice([1e-3, 1.0, 1e6])
    y[rng.random(y.size) < 0.05] = np.nan
    kw = {"window": int(rng.integers(30, 300)), "smooth": int(rng.integers(1, 15)),
          "suppress": int(rng.integers(1, 120))}
    full = novelty_scores(y, 144, **kw)
    for first in (0, 1, 250, 777, 1399):
        part = novelty_scores(y, 144, **kw, first=first)
        for key, values in full.items():
            np.testing.assert_array_equal(part[key], values[first:], err_msg=f"{key} from {first}")
    for first in (0, 100, 145, 1000):
        np.testing.assert_array_equal(
            _seasonal_reference(y, 144, 3, first=first), _seasonal_reference(y, 144, 3)[first:]
        )


def test_state_is_bounded():
    det = Novelty(window=100, smooth=5, suppress=10).fit(frame(noisy_daily(5000)))
    stored = det.to_dict()["state"]["svc:rps"]["values"]
    assert len(stored) <= 100 + 5 + 10 + 2 + 3 * 288


def test_pure_function_is_causal():
    y = noisy_daily(1000)
    full = novelty_scores(y, 288)["score"]
    for cut in (300, 640, 999):
        np.testing.assert_array_equal(novelty_scores(y[:cut], 288)["score"], full[:cut])


@pytest.mark.parametrize("bad", [{"window": 1}, {"smooth": 0}, {"half": 0.0}, {"threshold": 1.0}])
def test_bad_parameters(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Novelty(**bad)


@pytest.mark.parametrize("seed", range(5))
def test_seasonal_reference_is_the_nanmedian_of_the_lags(seed):
    rng = np.random.default_rng(seed)
    n, season, seasons = 500, 37, 1 + seed
    y = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 6)
    y[rng.random(n) < 0.2] = np.nan
    lags = np.full((seasons, n), np.nan)
    for j in range(1, seasons + 1):
        lags[j - 1, j * season:] = y[:-j * season]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: the first season
        want = np.nanmedian(lags, axis=0)
    np.testing.assert_array_equal(_seasonal_reference(y, season, seasons), want)


@pytest.mark.parametrize("seed", range(3))
def test_rolling_extremes_are_pandas_to_the_bit(seed):
    from models.anomaly.novelty import _rolling

    rng = np.random.default_rng(seed)
    for _ in range(100):
        n, window = int(rng.integers(0, 300)), int(rng.integers(1, 60))
        min_periods = int(rng.integers(1, window + 1))
        x = rng.normal(size=n) * 10.0 ** rng.integers(-3, 5)
        x[rng.random(n) < rng.random() * 0.6] = np.nan  # gaps, sometimes most of the series
        for how in ("max", "min"):
            want = getattr(pd.Series(x, dtype=float).rolling(window, min_periods=min_periods), how)()
            got = _rolling(x, window, how, min_periods)
            np.testing.assert_array_equal(got, want.to_numpy(), err_msg=f"{how} {window} {n}")
