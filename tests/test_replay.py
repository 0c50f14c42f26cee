"""Replay: the lead-peak forecast, the risk-priced policy, the guardrails, the replay model and
``surgecast replay`` (contract, causality, bad input, report)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from actions.capacity import CapacityBounds
from actions.policy import ScaleGuard, risk_priced_replicas
from actions.replay import oracle_replicas, reactive_replicas, replay, yesterday_replicas
from models.errors import FrameError
from models.forecasting.lead_peak import lead_peak_forecast
from surgecast.replay import ReplayPolicy, overload_weight, predictive_schedule
from surgecast.replay_cli import register

runner = CliRunner()
POLICY = ReplayPolicy(capacity_per_replica=100.0, startup_delay_s=300)


def daily_load(
    days: int = 4, step: str = "5min", seed: int = 3
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    ds = pd.date_range(
        "2026-01-05", periods=days * 86_400 // pd.Timedelta(step).seconds, freq=step, tz="UTC"
    )
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * np.arange(ds.size) / (86_400 // pd.Timedelta(step).seconds)
    y = 700 + 500 * np.sin(phase) + rng.normal(0, 30, ds.size)
    return ds, np.clip(y, 0, None)


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)

    @a.callback()
    def _root() -> None:
        """test app"""

    return a


def write_trace(
    path: Path, ds: pd.DatetimeIndex, y: np.ndarray, cols=("timestamp", "value")
) -> Path:
    pd.DataFrame({cols[0]: ds.strftime("%Y-%m-%d %H:%M:%S"), cols[1]: y}).to_csv(path, index=False)
    return path


def replay_cli(app, trace: Path, out: str, *extra: str):
    """``surgecast replay TRACE --capacity-per-replica 100 --startup-delay 5m -o OUT [extra]``."""
    argv = ["replay", str(trace), "--capacity-per-replica", "100", "--startup-delay", "5m"]
    return runner.invoke(app, [*argv, "-o", str(out), *extra])


# -- the forecast -------------------------------------------------------------------------------
def test_lead_peak_is_causal_under_truncation_and_future_change():
    ds, y = daily_load()
    full = lead_peak_forecast(ds, y, 300)
    for cut in (300, 700, 1100):
        part = lead_peak_forecast(ds[:cut], y[:cut], 300)
        np.testing.assert_array_equal(part.point, full.point[:cut])
        np.testing.assert_array_equal(part.quantiles, full.quantiles[:, :cut])
        surge = y.copy()
        surge[cut:] = surge[cut:] * 10 + 1
        np.testing.assert_array_equal(
            lead_peak_forecast(ds, surge, 300).point[:cut], full.point[:cut]
        )


def test_lead_peak_tracks_a_daily_pattern_and_its_quantiles_are_calibrated():
    ds, y = daily_load(days=8)
    fc = lead_peak_forecast(ds, y, 300)
    realised = pd.Series(y[::-1]).rolling(fc.rows_ahead + 1, min_periods=1).max().to_numpy()[::-1]
    late = slice(3 * 288, None)
    err = np.abs(fc.point[late] - realised[late]) / realised[late]
    assert np.median(err) < 0.1
    p90 = fc.quantiles[list(fc.levels).index(0.9), late]
    assert 0.8 <= np.mean(realised[late] <= p90) <= 0.97


def test_lead_peak_missing_rows_keep_days_aligned():
    ds, y = daily_load(days=4)
    keep = np.ones(ds.size, bool)
    keep[500:520] = False
    fc_gap = lead_peak_forecast(ds[keep], y[keep], 300)
    assert fc_gap.point.size == keep.sum()
    assert np.isfinite(fc_gap.point[-100:]).all()


def test_lead_peak_rejects_bad_input():
    ds, y = daily_load(days=1)
    with pytest.raises(FrameError, match="regular"):
        lead_peak_forecast(ds.insert(5, ds[4] + pd.Timedelta("1min")), np.append(y, 1.0), 300)
    with pytest.raises(FrameError, match=">= 0"):
        lead_peak_forecast(ds, -y, 300)
    with pytest.raises(FrameError, match="increasing"):
        lead_peak_forecast(ds[::-1], y, 300)
    with pytest.raises(ValueError, match="lead_seconds"):
        lead_peak_forecast(ds, y, -1)


# -- the policy ---------------------------------------------------------------------------------
def test_risk_pricing_buys_margin_where_it_is_cheap():
    levels = np.array([0.5, 0.9, 0.99])
    # the same relative spread at a small and a large load: the small one gets the high quantile
    q = np.array([[100.0, 10_000.0], [130.0, 13_000.0], [160.0, 16_000.0]])
    reps, level, load = risk_priced_replicas(q, levels, np.array([10.0, 10.0]), 100.0, 0.15)
    assert level[0] == 0.99 and reps[0] == 2
    assert level[1] < 0.99
    assert load[1] == q[list(levels).index(level[1]), 1]
    nan_reps, nan_level, _ = risk_priced_replicas(
        np.full((3, 1), np.nan), levels, np.array([1.0]), 100.0, 0.15
    )
    assert np.isnan(nan_reps[0]) and np.isnan(nan_level[0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 80)), min_size=1, max_size=40),
    st.integers(0, 5),
    st.integers(5, 60),
)
def test_guard_bounds_and_stabilisation(candidates, lo, hi):
    bounds = CapacityBounds(100.0, min_replicas=lo, max_replicas=max(lo, hi))
    guard = ScaleGuard(bounds, stabilization_s=300)
    out = []
    for i, c in enumerate(candidates):
        d = guard.decide(60.0 * i, c, observed_load=None, data_fresh=True)
        assert bounds.min_replicas <= d.replicas <= bounds.max_replicas
        out.append(d.replicas)
    # a scale-up at i is never undone within the 5-minute window (decisions are 60 s apart)
    for i in range(1, len(out)):
        if out[i] > out[i - 1]:
            assert min(out[i + 1 : i + 6], default=out[i]) >= out[i]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=2, max_size=30), st.integers(0, 29))
def test_guard_never_scales_down_on_stale_data(candidates, stale_at):
    guard = ScaleGuard(CapacityBounds(100.0, max_replicas=60), stabilization_s=0)
    prev = None
    for i, c in enumerate(candidates):
        fresh = i < stale_at
        d = guard.decide(60.0 * i, c, observed_load=None, data_fresh=fresh)
        if not fresh and prev is not None:
            assert d.replicas >= prev
            if c < prev:
                assert d.rule == "hold_missing_data"
        prev = d.replicas


def test_guard_observed_load_floor_step_limits_and_missing_candidate():
    g = ScaleGuard(
        CapacityBounds(100.0, target_utilization=0.5, max_replicas=50),
        stabilization_s=0,
        max_step_up=3,
        max_step_down=2,
    )
    assert g.decide(0, 4, observed_load=None, data_fresh=True).replicas == 4
    d = g.decide(60, 4, observed_load=900.0, data_fresh=True)  # needs 18 at 50 %
    assert (d.replicas, d.rule) == (7, "max_step_up")
    d = g.decide(120, 1, observed_load=None, data_fresh=True)
    assert (d.replicas, d.rule) == (5, "max_step_down")
    d = g.decide(180, None, observed_load=None, data_fresh=True)
    assert (d.replicas, d.rule) == (5, "hold_missing_data")


@settings(max_examples=30, deadline=None)
@given(st.floats(0.1, 5.0))
def test_policy_is_monotone_in_load_scale(factor):
    """More load never gets fewer replicas (scaling the whole trace up)."""
    ds, y = daily_load(days=3)
    base = predictive_schedule(ds, y, POLICY)["replicas"].to_numpy()
    more = predictive_schedule(ds, y * (1 + factor), POLICY)["replicas"].to_numpy()
    assert (more >= base).mean() > 0.99  # ceil() rounding can differ by one at a boundary


# -- the replay model ---------------------------------------------------------------------------
def test_replay_model_matches_its_definition():
    ds = pd.date_range("2026-01-01", periods=4, freq="5min", tz="UTC")
    load = np.array([100.0, 300.0, 300.0, 100.0])
    # ask for 3 at t1: ready at t2 (delay 5 min) → t1 overloaded by 200 req/s for 5 minutes
    r = replay(ds, load, np.array([1, 3, 3, 1]), capacity=100.0, delay_s=300)
    assert r.overload_minutes == 5.0
    assert r.unserved_pct == pytest.approx(100 * 200 / 800)
    assert r.replica_hours == pytest.approx((1 + 3 + 3 + 1) * 5 / 60)
    # the oracle is never overloaded; reactive lags a step
    assert (
        replay(ds, load, oracle_replicas(ds, load, 100.0, 0.7, 300), 100.0, 300).overload_minutes
        == 0
    )
    assert reactive_replicas(ds, load, 100.0, 0.7)[1] == 2  # sees t0's load at t1
    assert (
        yesterday_replicas(ds, load, 100.0, 0.7, 300) >= reactive_replicas(ds, load, 100.0, 0.7)
    ).all()


def test_predictive_beats_reactive_on_a_daily_surge():
    """A kickoff-like surge at 19:45 every day (×3 within two minutes, for an hour): reactive
    scaling is late every day, the daily profile sees it coming."""
    ds, y = daily_load(days=6, step="1min")
    minute = ds.hour * 60 + ds.minute
    y = y * np.where((minute >= 19 * 60 + 45) & (minute < 20 * 60 + 45), 3.0, 1.0)
    recs = predictive_schedule(ds, y, POLICY)["replicas"].to_numpy()
    late = slice(3 * 1440, None)
    ours = replay(ds[late], y[late], recs[late], 100.0, 300)
    react = replay(ds[late], y[late], reactive_replicas(ds, y, 100.0, 0.7)[late], 100.0, 300)
    assert react.overload_minutes >= 3 * 5
    assert ours.overload_minutes <= 0.3 * react.overload_minutes
    assert ours.replica_hours <= 1.2 * react.replica_hours


# -- fixtures -----------------------------------------------------------------------------------
def fixture_load(
    days: int = 12, step: str = "5min", seed: int = 5
) -> tuple[pd.DatetimeIndex, np.ndarray, pd.DataFrame]:
    """A daily load plus two fixtures a day at kickoff slots that change from day to day (so
    yesterday's profile cannot foresee them): a betting ramp ×(1 + 3·importance) at kickoff,
    a drop to an in-play plateau, and the calendar that announces them."""
    minutes = pd.Timedelta(step).seconds // 60
    ds = pd.date_range("2026-03-02", periods=days * 1440 // minutes, freq=step, tz="UTC")
    rng = np.random.default_rng(seed)
    tod = (ds.hour * 60 + ds.minute).to_numpy() / 1440
    base = 500 + 300 * np.sin(2 * np.pi * (tod - 0.35))
    rows = []
    for d in range(days):
        for hhmm in rng.choice(["12:30", "15:00", "17:45", "19:45", "20:00"], 2, replace=False):
            start = ds[0] + pd.Timedelta(days=d) + pd.Timedelta(f"{hhmm}:00")
            rows.append(
                (start, start + pd.Timedelta(minutes=110), "football",
                 str(rng.choice(["Cup", "League"])), float(rng.uniform(0.3, 1.0)))
            )  # fmt: skip
    calendar = pd.DataFrame(rows, columns=["start", "end", "sport", "competition", "importance"])
    t = ds.as_unit("ns").asi8
    uplift = np.zeros(ds.size)
    for start, end, _, _, importance in rows:
        rel = (t - start.value) / 60e9
        ramp = np.exp(np.clip(rel, -60, 0) / 12) * ((rel >= -60) & (rel < 0))
        uplift += 3.0 * importance * (ramp + 0.3 * ((rel >= 0) & (t < end.value)))
    return ds, base * (1 + uplift) * np.exp(rng.normal(0, 0.02, ds.size)), calendar


def minutes_overloaded_near_kickoffs(ds, y, replicas, calendar, after_day=6) -> float:
    r = replay(ds, y, replicas, 100.0, 300)
    t = ds[0].as_unit("ns").value + np.arange(r.overloaded.size) * r.sim_step_s * 1_000_000_000
    near = np.zeros(t.size, bool)
    for kickoff in calendar["start"]:
        if kickoff >= ds[0] + pd.Timedelta(days=after_day):
            near |= np.abs(t - kickoff.value) <= 30 * 60_000_000_000
    return float(r.overloaded[near].sum() * r.sim_step_s / 60)


def test_fixture_surges_are_covered_with_the_calendar_and_not_without():
    ds, y, calendar = fixture_load()
    with_calendar = predictive_schedule(ds, y, POLICY, events=calendar)
    without = predictive_schedule(ds, y, POLICY)["replicas"].to_numpy()
    reactive = reactive_replicas(ds, y, 100.0, 0.7)
    react = minutes_overloaded_near_kickoffs(ds, y, reactive, calendar)
    ours = minutes_overloaded_near_kickoffs(ds, y, with_calendar["replicas"].to_numpy(), calendar)
    blind = minutes_overloaded_near_kickoffs(ds, y, without, calendar)
    assert react >= 20
    assert ours <= 0.1 * react  # the calendar announces every ramp
    assert blind >= react  # without it, the profile expects yesterday's kickoffs, not today's
    late = slice(6 * 288, None)
    cost = replay(ds[late], y[late], with_calendar["replicas"].to_numpy()[late], 100.0, 300)
    assert (
        cost.replica_hours
        <= 1.1 * replay(ds[late], y[late], reactive[late], 100.0, 300).replica_hours
    )
    # the audit trail says when a decision was made for a fixture
    assert with_calendar["reason"].str.contains("fixtures: pre-match ramp").any()


def test_lead_peak_with_a_calendar_is_causal():
    """The calendar is known in advance: cutting the load (not the calendar) or changing its
    future never changes an earlier forecast or recommendation."""
    ds, y, calendar = fixture_load(days=9)
    full = lead_peak_forecast(ds, y, 300, events=calendar)
    recs = predictive_schedule(ds, y, POLICY, events=calendar)["replicas"].to_numpy()
    for cut in (1500, 2300):
        part = lead_peak_forecast(ds[:cut], y[:cut], 300, events=calendar)
        np.testing.assert_array_equal(part.point, full.point[:cut])
        np.testing.assert_array_equal(part.quantiles, full.quantiles[:, :cut])
        np.testing.assert_array_equal(part.pool, full.pool[:cut])
        surge = y.copy()
        surge[cut:] = surge[cut:] * 10 + 1
        changed = lead_peak_forecast(ds, surge, 300, events=calendar)
        np.testing.assert_array_equal(changed.quantiles[:, :cut], full.quantiles[:, :cut])
        cut_recs = predictive_schedule(ds[:cut], y[:cut], POLICY, events=calendar)
        np.testing.assert_array_equal(cut_recs["replicas"].to_numpy(), recs[:cut])


def test_fixture_only_levels_and_pools():
    ds, y, calendar = fixture_load(days=9)
    fc = lead_peak_forecast(ds, y, 300, events=calendar)
    top = list(fc.levels).index(0.999)
    assert np.isnan(fc.quantiles[top, fc.pool == 0]).all()  # p99.9 only in fixture windows
    late = np.arange(ds.size) >= 5 * 288
    assert np.isfinite(fc.quantiles[top, late & (fc.pool == 1)]).mean() > 0.9
    assert (fc.in_event == (fc.pool > 0)).all() and set(np.unique(fc.pool)) <= {0, 1, 2, 3}
    assert fc.event_multiplier[late & (fc.pool == 1)].max() > 2  # the ramp at kickoff
    # without a calendar (or with one that misses the trace) the fixture-only levels never exist
    plain = lead_peak_forecast(ds, y, 300)
    assert np.isnan(plain.quantiles[top]).all() and not plain.in_event.any()
    elsewhere = calendar.assign(start=calendar["start"] - pd.Timedelta(days=400),
                                end=calendar["end"] - pd.Timedelta(days=400))  # fmt: skip
    np.testing.assert_array_equal(
        lead_peak_forecast(ds, y, 300, events=elsewhere).point, plain.point
    )


def test_overload_weight_grows_with_the_demand_at_stake_inside_fixture_windows():
    w = overload_weight(
        np.array([False, True, True, True]),
        np.array([5000.0, 500.0, 3000.0, np.nan]),
        np.array([1000.0, 1000.0, 1000.0, 1000.0]),
        5.0,
    )
    np.testing.assert_allclose(w, [1.0, 5.0, 15.0, 5.0])


# -- the CLI ------------------------------------------------------------------------------------
def test_cli_contract_one_row_per_trace_row_with_reasons(app, tmp_path):
    ds, y = daily_load(days=3)
    trace = write_trace(tmp_path / "t.csv", ds, y)
    out = tmp_path / "recs.csv"
    res = replay_cli(app, trace, str(out), "--report")
    assert res.exit_code == 0, res.output
    recs = pd.read_csv(out)
    assert list(recs.columns[:2]) == ["ds", "replicas"]
    assert len(recs) == ds.size
    assert (recs["ds"] == ds.strftime("%Y-%m-%d %H:%M:%S")).all()
    assert recs["reason"].str.len().min() > 10
    assert (recs["replicas"] >= 1).all() and (recs["replicas"] <= 1000).all()
    for name in ("predictive (surgecast)", "reactive (HPA)", "yesterday", "oracle"):
        assert name in res.output


def test_cli_output_before_a_cut_does_not_change(app, tmp_path):
    ds, y = daily_load(days=3)
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    for name, n in ((full, ds.size), (part, 500)):
        trace = write_trace(tmp_path / f"t_{n}.csv", ds[:n], y[:n], cols=("ds", "y"))
        res = replay_cli(app, trace, str(name))
        assert res.exit_code == 0, res.output
    a, b = pd.read_csv(full), pd.read_csv(part)
    pd.testing.assert_series_equal(a["replicas"].iloc[:500], b["replicas"])


def test_cli_missing_values_never_scale_down_and_keep_their_rows(app, tmp_path):
    ds, y = daily_load(days=2)
    y = y.astype(object)
    y[400:430] = ""
    trace = tmp_path / "t.csv"
    pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%d %H:%M:%S"), "value": y}).to_csv(
        trace, index=False
    )
    out = tmp_path / "r.csv"
    res = replay_cli(app, trace, str(out))
    assert res.exit_code == 0, res.output
    recs = pd.read_csv(out)
    assert len(recs) == ds.size
    held = recs["replicas"].iloc[400:432].to_numpy()
    assert (np.diff(held) >= 0).all()
    assert "hold_missing_data" in set(recs["rule"].iloc[401:431])


@pytest.mark.parametrize(
    "body, message",
    [
        ("when,load\n2026-01-01 00:00,1\n2026-01-01 00:05,2\n", "expected columns"),
        ("timestamp,value\n2026-01-01 00:00,1\n", "at least 2 rows"),
        ("timestamp,value\n2026-01-01 00:00,1\n2026-01-01 00:00,2\n", "more than once"),
        ("timestamp,value\n2026-01-01 00:00,1\n2026-01-01 00:05,-2\n", "negative demand"),
        ("timestamp,value\n2026-01-01 00:00,1\n2026-01-01 00:05,lots\n", "not a number"),
        ("timestamp,value\nyesterday,1\n2026-01-01 00:05,2\n", "unparseable timestamps"),
        (
            "timestamp,value\n2026-01-01 00:00,1\n2026-01-01 00:05,2\n2026-01-01 00:07,2\n",
            "regular",
        ),
    ],
)
def test_cli_bad_input_is_one_clear_line(app, tmp_path, body, message):
    trace = tmp_path / "bad.csv"
    trace.write_text(body)
    res = replay_cli(app, trace, str(tmp_path / "r.csv"))
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--capacity-per-replica", "0"], "capacity_per_replica"),
        (["--startup-delay", "soon"], "duration"),
        (["--min-replicas", "9", "--max-replicas", "3"], "must not exceed"),
        (["--target-utilization", "1.5"], "target_utilization"),
    ],
)
def test_cli_bad_options(app, tmp_path, args, message):
    ds, y = daily_load(days=1)
    trace = write_trace(tmp_path / "t.csv", ds, y)
    base = {"--capacity-per-replica": "100", "--startup-delay": "5m"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    argv = ["replay", str(trace), "-o", str(tmp_path / "r.csv")]
    for k, v in base.items():
        argv += [k, v]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2
    assert message in res.output


def test_cli_sorts_out_of_order_rows(app, tmp_path):
    ds, y = daily_load(days=1)
    frame = pd.DataFrame({"timestamp": ds.strftime("%Y-%m-%d %H:%M:%S"), "value": y})
    trace = tmp_path / "t.csv"
    frame.iloc[::-1].to_csv(trace, index=False)
    out = tmp_path / "r.csv"
    res = replay_cli(app, trace, str(out))
    assert res.exit_code == 0, res.output
    assert "sorted" in res.output
    recs = pd.read_csv(out)
    assert recs["ds"].is_monotonic_increasing and len(recs) == ds.size


def test_cli_audit_log_holds_every_decision_with_its_reason(app, tmp_path):
    from surgecast.store import Store

    ds, y = daily_load(days=2)
    trace = write_trace(tmp_path / "t.csv", ds, y)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    res = runner.invoke(
        app,
        ["replay", str(trace), "--capacity-per-replica", "100", "--startup-delay", "5m",
         "-o", str(tmp_path / "r.csv"), "--audit", url, "--service", "checkout"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    recs = pd.read_csv(tmp_path / "r.csv")
    store = Store(url)
    try:
        entries = store.audit(service="checkout", kind="replay", limit=10_000)
    finally:
        store.close()
    assert len(entries) == len(recs) == ds.size
    assert [e["reason"] for e in entries] == recs["reason"].tolist()
    assert entries[0]["at"] == ds[0] and entries[-1]["at"] == ds[-1]
    assert entries[-1]["decision"].startswith(f"{recs['replicas'].iloc[-1]} replicas")
