"""Ratio detector (models/anomaly/ratios.py) and absent data (absent.py), on simulator data."""

from dataclasses import astuple

import numpy as np
import pandas as pd
import pytest

from models.anomaly.absent import absent_series
from models.anomaly.alarms import Debouncer
from models.anomaly.novelty import Novelty
from models.anomaly.ratios import (
    FAILURE_RATIO_THRESHOLD,
    RatioDetector,
    RatioSpec,
    default_ratio_specs,
)
from models.base import ANOMALY_COLUMNS, Detector
from simulator import Simulator, SimulatorConfig

T = pd.Timestamp("2026-01-01 12:03", tz="UTC")


def test_absent_series_exact():
    wm = {"a": T - pd.Timedelta("4min"), "b": T - pd.Timedelta("3min"), "c": T}
    out = absent_series(wm, T, pd.Timedelta("1min"), grace_steps=3)
    assert list(out.columns) == list(ANOMALY_COLUMNS)
    assert out[["unique_id", "kind", "score", "is_anomaly"]].values.tolist() == [
        ["a", "absent", 0.5, True]]
    full = absent_series(wm, T, {"a": "1min", "b": "1min", "c": "1min"}, include_present=True)
    assert full["is_anomaly"].tolist() == [True, False, False]
    assert (np.diff(full["score"].to_numpy()) < 0).all()
    with pytest.raises(ValueError, match="no step"):
        absent_series(wm, T, {"a": "1min"})
    with pytest.raises(ValueError, match="timezone"):
        absent_series(wm, pd.Timestamp("2026-01-01"), "1min")


def _ratio_input(n=600, jump_at=400, seed=0):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    dep = rng.poisson(120, n) / 60.0
    p = np.where(np.arange(n) >= jump_at, 0.6, 0.15)
    fail = rng.binomial((dep * 60).astype(int), p) / 60.0
    return pd.concat([pd.DataFrame({"unique_id": "p:deposits_per_second", "ds": ds, "y": dep}),
                      pd.DataFrame({"unique_id": "p:deposit_failures_per_second", "ds": ds,
                                    "y": fail})], ignore_index=True)


def test_ratio_detector_protocol_causality_and_round_trip():
    f = _ratio_input()
    det = RatioDetector()
    assert isinstance(det, Detector)
    batch = RatioDetector(threshold=6.0).fit(f[f.ds < f.ds.min() + pd.Timedelta("3h")])
    rest = f[f.ds >= f.ds.min() + pd.Timedelta("3h")]
    saved = RatioDetector.from_dict(batch.to_dict())
    out = batch.score(rest)
    assert list(out.columns) == list(ANOMALY_COLUMNS)
    assert out["unique_id"].unique().tolist() == ["p:deposit_failure_ratio"]
    assert ((out["score"] >= 0) & (out["score"] < 1)).all()
    flagged = out.loc[out["is_anomaly"], "ds"]
    jump = f.ds.min() + pd.Timedelta("400min")
    assert jump <= flagged.min() <= jump + pd.Timedelta("2min")  # 3-point smoothing lags a bit
    assert (out.loc[out["is_anomaly"], "kind"] == "ratio").all()
    # point by point from the saved state gives the same scores
    cut = rest.ds.min() + pd.Timedelta("217min")
    one = pd.concat([saved.score(rest[rest.ds < cut]), saved.score(rest[rest.ds >= cut])],
                    ignore_index=True)
    pd.testing.assert_frame_equal(one, out)


def test_ratio_detector_scale_invariant_and_quiet_on_constant_ratio():
    f = _ratio_input(jump_at=10**6)
    out = RatioDetector().fit(f).score(f.assign(ds=f.ds + pd.Timedelta("10h")))
    assert not out["is_anomaly"].any()
    spec = default_ratio_specs(["s:bets_per_second", "s:requests_per_second",
                                "odds-api:requests_per_second"])
    assert [s.name for s in spec] == ["s:bets_per_request", "s:bets_per_odds_request"]
    assert spec[0] == RatioSpec("s:bets_per_request", "s:bets_per_second", "s:requests_per_second")


@pytest.fixture(scope="module")
def sim_day():
    """Two simulated days of payments + bet-placement, one payment outage on day two."""
    cfg = SimulatorConfig(seed=7, step="1min", incidents_per_day=2.0)
    sim = Simulator(cfg)
    inc = sim.incidents("2026-10-05", "2026-10-26")
    outage = inc[inc["kind"] == "payment_outage"].iloc[0]
    start = outage["start"].normalize() - pd.Timedelta("1D")
    ids = [u for u in sim.series_ids() if u.startswith(("payments:", "bet-placement:"))]
    return sim, outage, start, sim.series(start, start + pd.Timedelta("2D"), ids)


def test_payment_outage_is_caught_by_the_ratio_detector(sim_day):
    sim, outage, start, frame = sim_day
    day2 = start + pd.Timedelta("1D")
    det = RatioDetector().fit(frame[frame.ds < day2])
    alarms = Debouncer(n=2, m=3).update(det.score(frame[frame.ds >= day2]))
    hit = alarms[(alarms.unique_id == "payments:deposit_failure_ratio")
                 & (alarms.ds >= outage["start"]) & (alarms.ds <= outage["end"])]
    assert len(hit) >= 1
    assert hit["ds"].min() - outage["start"] <= pd.Timedelta("5min")


def test_kickoff_surge_is_not_alarmed_when_events_are_given():
    sim = Simulator(SimulatorConfig(seed=7, step="1min", incidents_per_day=0))
    start = pd.Timestamp("2026-10-05", tz="UTC")
    uid = "bet-placement:bets_per_second"
    frame = sim.series(start, start + pd.Timedelta("7D"), [uid])
    events = sim.fixtures(start, start + pd.Timedelta("7D"))
    day2 = start + pd.Timedelta("1D")
    scored = Novelty().fit(frame[frame.ds < day2]).score(frame[frame.ds >= day2])
    kw = {"drop_lags": ("1D", "2D")}
    without = Debouncer(**kw).update(scored)
    with_events = Debouncer(events=events, **kw).update(scored)
    assert (without["kind"] == "spike").any()  # the surge is a new extreme ...
    assert with_events.empty  # ... that the calendar expected


def test_failure_ratio_jump_at_low_counts_uses_the_counts_seen():
    # ~50 deposits a minute, 15 % failing, then 80 % failing: the log ratio's noise follows
    # 1/failures + 1/deposits of the counts actually seen, so the jump alarms at once even
    # though a reference-count scale (15 % of 150 failures) would put it near 7 sigma only
    rng = np.random.default_rng(3)
    n = 600
    ds = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    dep = rng.poisson(50, n).astype(float)
    p = np.where(np.arange(n) >= 500, 0.8, 0.15)
    fail = rng.binomial(dep.astype(int), p).astype(float)
    f = pd.concat([pd.DataFrame({"unique_id": "p:deposits_per_second", "ds": ds, "y": dep / 60}),
                   pd.DataFrame({"unique_id": "p:deposit_failures_per_second", "ds": ds,
                                 "y": fail / 60})])
    out = RatioDetector().fit(f[f.ds < ds[400]]).score(f[f.ds >= ds[400]])
    flagged = out.loc[out["is_anomaly"], "ds"]
    assert ds[500] <= flagged.min() <= ds[502]
    assert not out.loc[out["ds"] < ds[500], "is_anomaly"].any()


def test_failure_ratios_have_their_own_lower_level():
    specs = {s.name: s for s in default_ratio_specs(Simulator(SimulatorConfig()).series_ids())}
    assert specs["payments:deposit_failure_ratio"].threshold == FAILURE_RATIO_THRESHOLD
    assert specs["account:login_failure_ratio"].threshold == FAILURE_RATIO_THRESHOLD
    assert specs["bet-placement:bets_per_request"].threshold is None  # follows load: 12 sigma
    assert FAILURE_RATIO_THRESHOLD < RatioDetector().threshold


def test_a_morning_deposit_outage_at_thirty_deposits_a_minute_is_flagged():
    # simulator seed 43: a provider outage at 06:25 on a Tuesday, 15 % -> ~70 % of ~30 deposits
    # a minute, after a night of a few; at the 12 sigma of the load-following ratios it peaked
    # near 10.8 sigma and was never flagged
    sim = Simulator(SimulatorConfig(seed=43, step="1min", incidents_per_day=2.0))
    ids = ["payments:deposits_per_second", "payments:deposit_failures_per_second"]
    day = pd.Timestamp("2026-10-13", tz="UTC")
    frame = sim.series(day - pd.Timedelta(days=2), day + pd.Timedelta(hours=8), unique_ids=ids)
    outage = sim.incidents(day, day + pd.Timedelta(hours=8))
    start = outage.loc[outage["kind"] == "payment_outage", "start"].iloc[0]
    assert start == day + pd.Timedelta("6h25min")
    warm, live = frame[frame["ds"] < day], frame[frame["ds"] >= day]
    out = RatioDetector().fit(warm).score(live)
    flagged = out.loc[out["is_anomaly"], "ds"]
    assert start <= flagged.min() <= start + pd.Timedelta("3min")
    loose = [RatioSpec(*astuple(s)[:4]) for s in default_ratio_specs(ids)]  # no own level
    assert not RatioDetector(specs=loose).fit(warm).score(live)["is_anomaly"].any()


def test_a_spec_level_survives_a_round_trip_and_old_specs_load():
    f = _ratio_input()
    det = RatioDetector().fit(f)
    saved = det.to_dict()
    assert saved["specs"][0][4] == FAILURE_RATIO_THRESHOLD
    assert RatioDetector.from_dict(saved).specs == det.specs
    saved["specs"] = [s[:4] for s in saved["specs"]]  # written before specs had a level
    assert RatioDetector.from_dict(saved).specs[0].threshold is None
