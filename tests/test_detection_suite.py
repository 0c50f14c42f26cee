"""The tick's detection suite (surgecast/detection.py) on its own: the latency ChangePoint it
builds, and the multivariate IsolationDetector when switched on."""

import pandas as pd

from simulator import Simulator, SimulatorConfig
from surgecast.detection import (
    DetectionSuite,
    error_changepoint,
    latency_changepoint,
    make_debouncers,
    per_series,
)

T0 = pd.Timestamp("2026-11-16", tz="UTC")  # a Monday


def test_latency_changepoint_uses_own_and_platform_load():
    ids = Simulator(SimulatorConfig(seed=3)).series_ids()
    cp = latency_changepoint(ids)
    assert cp is not None and cp.count_scale and not cp.two_sided and cp.h == 5.5
    assert latency_changepoint(["a:requests_per_second"]) is None
    frame = Simulator(SimulatorConfig(seed=3, step="1min", incidents_per_day=0)).series(
        T0, T0 + pd.Timedelta("1h"))
    cp.fit(frame)
    assert cp.load is not None
    assert cp.load["payments:latency_p95_seconds"] == (
        "payments:requests_per_second", "odds-api:requests_per_second")
    assert cp.load["odds-api:latency_p95_seconds"] == ("odds-api:requests_per_second",)
    assert set(make_debouncers()) >= {"novelty", "ratio", "changepoint", "isolation", "absent"}


def test_error_changepoint_watches_error_ratios_given_load():
    ids = Simulator(SimulatorConfig(seed=3)).series_ids()
    cp = error_changepoint(ids)
    assert cp is not None and cp.ratio_of_load and cp.count_scale and not cp.two_sided
    assert cp.targets == sorted(u for u in ids if u.endswith(":error_ratio"))
    assert cp.load is not None
    assert cp.load["payments:error_ratio"] == (
        "payments:requests_per_second", "odds-api:requests_per_second")
    # an error ratio without its service's requests cannot be judged given load
    assert error_changepoint(["a:error_ratio", "b:requests_per_second"]) is None


def test_suite_alarms_on_errors_rising_at_ordinary_load():
    sim = Simulator(SimulatorConfig(seed=3, step="1min", incidents_per_day=0))
    history = sim.series(T0, T0 + pd.Timedelta(days=3))
    start = T0 + pd.Timedelta(days=3, hours=10)  # a Thursday morning, no kickoff
    now = start + pd.Timedelta(minutes=40)
    fresh = sim.series(T0 + pd.Timedelta(days=3), now)
    onset = start + pd.Timedelta(minutes=10)
    err = (fresh["unique_id"] == "account:error_ratio") & (fresh["ds"] >= onset)
    minutes = (fresh.loc[err, "ds"] - onset).dt.total_seconds() / 60
    fresh.loc[err, "y"] += 0.03 * (minutes / 60).clip(upper=1)  # +3 % of requests in an hour
    last_seen = {u: g["ds"].max() for u, g in fresh.groupby("unique_id")}
    steps = dict.fromkeys(last_seen, pd.Timedelta("1min"))
    suite = DetectionSuite("novelty", 4.0, 3)
    assert suite.fit_platform(history) == [] and suite.error_changepoint is not None
    result = suite.score_all({}, fresh, now, last_seen, steps)
    mine = result.alarms[result.alarms["unique_id"] == "account:error_ratio"]
    assert len(mine) == 1 and mine["detector"].tolist() == ["changepoint"]
    assert onset < mine["ds"].iloc[0] <= onset + pd.Timedelta(minutes=15)
    untouched = result.alarms[result.alarms["unique_id"].str.endswith("error_ratio")
                              & (result.alarms["unique_id"] != "account:error_ratio")]
    assert untouched.empty


def test_multivariate_is_off_by_default_and_alarms_when_on():
    sim = Simulator(SimulatorConfig(seed=3, step="1min", incidents_per_day=0))
    history = sim.series(T0, T0 + pd.Timedelta(days=2))
    now = T0 + pd.Timedelta(days=2, minutes=30)
    fresh = sim.series(T0 + pd.Timedelta(days=2), now)
    outage = fresh["ds"] >= T0 + pd.Timedelta(days=2, minutes=10)
    deps = fresh[fresh["unique_id"] == "payments:deposits_per_second"].set_index("ds")["y"]
    fails = outage & (fresh["unique_id"] == "payments:deposit_failures_per_second")
    fresh.loc[fails, "y"] = 0.8 * fresh.loc[fails, "ds"].map(deps).to_numpy()  # 15 % -> 80 %
    last_seen = {u: g["ds"].max() for u, g in fresh.groupby("unique_id")}
    steps = dict.fromkeys(last_seen, pd.Timedelta("1min"))

    off = DetectionSuite("novelty", 4.0, 3)
    assert off.fit_platform(history) == [] and off.isolation is None
    on = DetectionSuite("novelty", 4.0, 3, multivariate=True)
    assert on.fit_platform(history) == [] and on.isolation is not None
    result = on.score_all({}, fresh, now, last_seen, steps)
    assert result.errors == []
    iso = result.alarms[result.alarms["detector"] == "isolation"]
    assert iso["unique_id"].tolist() == ["payments:isolation"]
    assert iso["kind"].tolist() == ["ratio"]
    assert T0 + pd.Timedelta(days=2, minutes=10) <= iso["ds"].iloc[0] <= now
    ratio = result.alarms[result.alarms["detector"] == "ratio"]
    assert "payments:deposit_failure_ratio" in set(ratio["unique_id"])


def test_volumes_get_their_own_detector_ratios_and_p95s_the_multi_series_ones():
    assert per_series("bet-placement:bets_per_second")
    assert per_series("payments:deposit_failures_per_second")
    assert not per_series("payments:error_ratio")
    assert not per_series("odds-api:latency_p95_seconds")
    suite = DetectionSuite("novelty", threshold=0.5, absent_grace=3)
    ds = pd.date_range("2026-10-05", periods=50, freq="min", tz="UTC")
    for uid in ("a:requests_per_second", "a:latency_p95_seconds", "a:error_ratio"):
        fitted = suite.fit_series(uid, pd.DataFrame({"unique_id": uid, "ds": ds, "y": 1.0}))
        assert fitted == suite.watches(uid) == suite.has(uid) == uid.endswith("_per_second")
