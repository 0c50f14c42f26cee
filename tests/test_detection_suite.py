"""The tick's detection suite (surgecast/detection.py) on its own: the latency ChangePoint it
builds, and the multivariate IsolationDetector when switched on."""

import pandas as pd

from simulator import Simulator, SimulatorConfig
from surgecast.detection import DetectionSuite, latency_changepoint, make_debouncers

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
