"""IsolationDetector (models/anomaly/isolation.py): the conformance checks of
tests/test_models_conformance.py, which run on single series, redone for a multivariate detector
over services, plus the two injected cases of issue 4."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.anomaly.isolation import (
    FeatureSpec,
    IsolationDetector,
    default_feature_specs,
    feature_rows,
)
from models.base import ANOMALY_COLUMNS, Detector
from models.errors import FrameError, ModelError, NotFittedError

DAY = 1440
# small forests and windows: the same code paths, a fraction of the time
SMALL = {"window": 2 * DAY, "refit": DAY, "n_estimators": 50, "min_ref": 360}


def _daily(n: int, night: float, peak: float) -> np.ndarray:
    """A daily cycle from ``night`` (04:00) to ``peak`` (20:00), one point a minute."""
    hour = (np.arange(n) % DAY) / 60.0
    shape = 0.5 - 0.5 * np.cos(2 * np.pi * (hour - 4.0) / 24.0)  # 0 at 04:00, 1 at 16:00
    return night + (peak - night) * shape


def platform(days: int = 4, seed: int = 0) -> pd.DataFrame:
    """Two services on a daily cycle with count noise: a bet service whose requests swing x60
    between night and day (bets track them), and a payment service with 0.5 % failures."""
    rng = np.random.default_rng(seed)
    n = days * DAY
    ds = pd.date_range("2026-03-02", periods=n, freq="min", tz="UTC")
    req = rng.poisson(_daily(n, 20.0, 1200.0) * 60) / 60.0
    bets = rng.binomial((req * 60).astype(int), 0.4) / 60.0
    dep = rng.poisson(_daily(n, 20.0, 200.0) * 60) / 60.0
    fail = rng.binomial((dep * 60).astype(int), 0.005) / 60.0
    cols = {"bp:requests_per_second": req, "bp:bets_per_second": bets,
            "pay:deposits_per_second": dep, "pay:deposit_failures_per_second": fail}
    return pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": y}) for u, y in cols.items()],
                     ignore_index=True)


def split(frame: pd.DataFrame, at: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame[frame["ds"] < at], frame[frame["ds"] >= at]


T3 = pd.Timestamp("2026-03-05", tz="UTC")  # the start of day 4: three days of training


def test_follows_protocol_and_columns():
    det = IsolationDetector(**SMALL)
    assert isinstance(det, Detector)
    with pytest.raises(NotFittedError, match=r"fit\(frame\) before score"):
        det.score(platform(1))
    train, live = split(platform(), T3)
    assert det.fit(train) is det
    out = det.score(live)
    assert tuple(out.columns) == ANOMALY_COLUMNS
    assert out.groupby("unique_id").size().to_dict() == {"bp:isolation": DAY, "pay:isolation": DAY}
    assert out["ds"].dtype == "datetime64[ns, UTC]"
    for col in ("y", "expected", "lower", "upper", "score"):
        assert out[col].dtype == np.float64, col
    assert out["is_anomaly"].dtype == bool
    assert pd.api.types.is_string_dtype(out["unique_id"])
    assert set(out["detector"]) == {"isolation"}
    assert not out[["y", "score", "is_anomaly", "expected"]].isna().any().any()
    assert out["score"].between(0.0, 1.0).all()
    assert out.loc[~out["is_anomaly"], "kind"].isna().all()
    assert (out["lower"] <= out["expected"]).all() and (out["expected"] <= out["upper"]).all()
    assert not out["is_anomaly"].any()  # clean data: nothing to flag


def test_default_features():
    ids = ["a:requests_per_second", "a:bets_per_second", "a:stake_per_second",
           "a:latency_p95_seconds", "a:error_ratio", "o:requests_per_second"]
    specs = {s.name: s for s in default_feature_specs(ids, odds_service="o")}
    assert sorted(specs) == ["a:bets_per_odds_request", "a:bets_per_request",
                             "a:errors_per_request", "a:latency", "a:requests", "a:stake_per_bet",
                             "o:requests"]
    assert (specs["a:bets_per_request"].hull, specs["a:bets_per_request"].slack) == ("down", 4.0)
    assert specs["a:errors_per_request"].numerator_is_ratio
    assert specs["a:latency"].hull == "none" and not specs["a:latency"].is_ratio
    with pytest.raises(ValueError, match="hull"):
        FeatureSpec("a:x", "a:y", hull="sideways")


def test_feature_rows_exact():
    # smoothed sums over 2 rows; a gap uses what is there; floors keep log(0) finite
    raw = np.array([[1.0, 10.0], [3.0, 10.0], [np.nan, 10.0], [0.0, 10.0]])
    ratio = FeatureSpec("s:r", "s:num", "s:den")
    level = FeatureSpec("s:l", "s:den")
    out = np.exp(feature_rows(raw, ["s:num", "s:den"], [ratio, level], 2, {"s:r#num": 0.01}))
    assert np.round(out[:, 0], 6).tolist() == [0.1, 0.2, 0.3, 0.002]  # max(0, 0.01 * 2) / 10
    assert np.round(out[:, 1], 6).tolist() == [10.0, 10.0, 10.0, 10.0]


def test_constant_input_gives_no_anomalies():
    f = platform()
    f["y"] = 5.0
    train, live = split(f, T3)
    out = IsolationDetector(**SMALL).fit(train).score(live)
    assert not out["is_anomaly"].any() and (out["score"] == 0.0).all()


@settings(max_examples=4, deadline=None)
@given(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_scaling_series_leaves_scores_unchanged(c_bets, c_rest):
    f = platform(3)
    cut = pd.Timestamp("2026-03-04 12:00", tz="UTC")
    f.loc[(f["ds"] >= cut) & (f["unique_id"] == "pay:deposit_failures_per_second"), "y"] *= 18
    g = f.copy()
    g["y"] *= np.where(g["unique_id"] == "bp:bets_per_second", c_bets, c_rest)
    at = pd.Timestamp("2026-03-04", tz="UTC")
    a = IsolationDetector(**SMALL).fit(split(f, at)[0]).score(split(f, at)[1])
    b = IsolationDetector(**SMALL).fit(split(g, at)[0]).score(split(g, at)[1])
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-9)
    assert a["is_anomaly"].tolist() == b["is_anomaly"].tolist()
    assert a["is_anomaly"].any()


def test_causal_truncation_keeps_scores():
    f = platform()
    train, live = split(f, T3)
    whole = IsolationDetector(**SMALL).fit(train).score(live)
    for cut in (1, 7, 500):
        kept = live[live["ds"] < T3 + pd.Timedelta(minutes=cut)]
        part = IsolationDetector(**SMALL).fit(train).score(kept)
        mine = whole[whole["ds"] < T3 + pd.Timedelta(minutes=cut)].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, mine)


@pytest.mark.parametrize("cut", [1, 300, DAY - 1])
def test_online_equals_batch_through_a_saved_state(cut):
    # the saved state crosses a refit (day 4 starts a new forest) and is rebuilt from JSON
    f = platform(5)
    at = pd.Timestamp("2026-03-04 12:00", tz="UTC")
    train, live = split(f, at)
    whole = IsolationDetector(**SMALL).fit(train).score(live)
    det = IsolationDetector(**SMALL).fit(train)
    mid = at + pd.Timedelta(minutes=cut)
    first = det.score(live[live["ds"] < mid])
    clone = IsolationDetector.from_dict(json.loads(json.dumps(det.to_dict())))
    assert clone.to_dict() == det.to_dict()
    rest = clone.score(live[live["ds"] >= mid])
    both = pd.concat([first, rest]).sort_values(["unique_id", "ds"], ignore_index=True)
    pd.testing.assert_frame_equal(both, whole)


def test_deterministic_and_round_trip_errors():
    train, live = split(platform(), T3)
    a = IsolationDetector(**SMALL).fit(train).score(live)
    b = IsolationDetector(**SMALL).fit(train).score(live)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ModelError, match="not a saved isolation"):
        IsolationDetector.from_dict({"detector": "ratio", "format": 1})
    with pytest.raises(FrameError, match="no feature"):
        IsolationDetector(**SMALL).fit(train[train["unique_id"] == "bp:bets_per_second"])
    with pytest.raises(ValueError, match="hull_half"):
        IsolationDetector(hull_half=0.0)


def _night(minutes: int) -> pd.Timestamp:
    return pd.Timestamp("2026-03-05 03:50", tz="UTC") + pd.Timedelta(minutes=minutes)


def test_requests_x50_with_flat_bets_is_caught():
    # at 04:00 requests x50 are still fewer than on an ordinary afternoon: no single series
    # looks odd
    f = platform()
    uid = f["unique_id"]
    attack = (f["ds"] >= _night(0)) & (f["ds"] < _night(20))
    f.loc[attack & (uid == "bp:requests_per_second"), "y"] *= 50
    req = f[uid == "bp:requests_per_second"]
    assert req.loc[req["ds"].isin(f.loc[attack, "ds"]), "y"].max() < req["y"].max()
    train, live = split(f, T3)
    out = IsolationDetector(**SMALL).fit(train).score(live)
    hits = out[out["is_anomaly"]]
    assert set(hits["unique_id"]) == {"bp:isolation"}
    assert _night(0) <= hits["ds"].min() <= _night(1)
    assert hits["ds"].max() <= _night(20 + 3)  # clears once the smoothing window is clean


def test_failure_ratio_half_a_percent_to_nine_is_caught():
    # failures x18 at 04:00 are fewer than on an ordinary afternoon: only the ratio is odd
    f = platform()
    uid = f["unique_id"]
    outage = (f["ds"] >= _night(0)) & (uid == "pay:deposit_failures_per_second")
    f.loc[outage, "y"] *= 18  # 0.5 % -> 9 %
    fails = f[uid == "pay:deposit_failures_per_second"]
    assert fails.loc[fails["ds"] >= _night(0), "y"].iloc[:60].mean() < fails["y"].quantile(0.99)
    train, live = split(f, T3)
    out = IsolationDetector(**SMALL).fit(train).score(live)
    hits = out[out["is_anomaly"]]
    assert set(hits["unique_id"]) == {"pay:isolation"}
    assert set(hits["kind"]) == {"ratio"}
    assert _night(0) <= hits["ds"].min() <= _night(2)
    # flagged rows stay out of training: the outage still alarms after the next day's refit
    f2 = platform(6)
    f2.loc[(f2["ds"] >= _night(0)) & (f2["unique_id"] == "pay:deposit_failures_per_second"),
           "y"] *= 18
    late = IsolationDetector(**SMALL).fit(split(f2, T3)[0]).score(split(f2, T3)[1])
    pay = late[late["unique_id"] == "pay:isolation"]
    assert pay.loc[pay["ds"] >= T3 + pd.Timedelta(days=2), "is_anomaly"].mean() > 0.9
