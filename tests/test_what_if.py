"""The what-if planner: the service's planner over each lead window, readiness after the
startup delay, overload risk from the forecast interval, and the look-ahead continuation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from actions.capacity import CapacityBounds, plan_replicas
from actions.what_if import WhatIfSettings, extend_with_history, summarise, what_if_plan

T0 = pd.Timestamp("2026-11-28 19:00", tz="UTC")


def forecast(yhat: list[float], upper: list[float] | None = None, step: str = "5min") -> pd.DataFrame:
    ds = pd.date_range(T0, periods=len(yhat), freq=step)
    up = upper if upper is not None else [v * 1.2 for v in yhat]
    return pd.DataFrame({"ds": ds, "yhat": yhat, "yhat_upper": up})


def test_each_decision_is_the_service_planner_over_its_lead_window():
    fc = forecast([100, 150, 900, 300, 100, 100], [120, 180, 1000, 350, 120, 120])
    cfg = WhatIfSettings(capacity_per_replica=50, startup_delay_s=600, margin_s=0, max_replicas=40)
    plan = what_if_plan(fc, cfg)
    bounds = CapacityBounds(50, 0.7, 1, 40)
    upper = fc["yhat_upper"].to_numpy()
    expected = [plan_replicas(upper[i:i + 3], bounds).recommended_replicas for i in range(6)]
    assert plan["replicas"].tolist() == expected
    # the surge at 19:10 is bought at 19:00 (two steps of lead), not when it arrives
    assert plan["replicas"].iloc[0] == plan_replicas([1000], bounds).recommended_replicas


def test_replicas_are_ready_only_after_the_startup_delay():
    fc = forecast([100] * 4 + [1000] * 4)
    slow = what_if_plan(fc, WhatIfSettings(capacity_per_replica=50, startup_delay_s=600, ready_now=3))
    # decided at 19:00, ready at 19:10: the first two steps run what is deployed now
    assert slow["ready_replicas"].iloc[:2].tolist() == [3, 3]
    assert slow["ready_replicas"].iloc[2] == slow["replicas"].iloc[0]
    instant = what_if_plan(fc, WhatIfSettings(capacity_per_replica=50, startup_delay_s=0, ready_now=3))
    assert (instant["ready_replicas"] == instant["replicas"]).all()


def test_a_longer_startup_delay_is_never_less_risky_when_the_surge_is_sudden():
    fc = forecast([100] * 6 + [1200] * 6, [130] * 6 + [1400] * 6)
    risks = []
    for delay in (0, 300, 900, 1800):
        cfg = WhatIfSettings(capacity_per_replica=60, startup_delay_s=delay, ready_now=3)
        risks.append(summarise(what_if_plan(fc, cfg), cfg).expected_overload_minutes)
    assert risks == sorted(risks) and risks[-1] > risks[0]


def test_overload_risk_falls_as_capacity_grows_and_matches_the_normal_tail():
    fc = forecast([1000.0] * 3, [1164.5] * 3)  # level 0.9: sigma = 164.5 / 1.645 = 100
    cfg = WhatIfSettings(capacity_per_replica=1100, target_utilization=1.0, startup_delay_s=0,
                         min_replicas=1, max_replicas=1)  # fmt: skip
    plan = what_if_plan(fc, cfg)
    # P(demand > 1100) with demand ~ N(1000, 100) is 1 - Phi(1) = 0.1587
    assert plan["overload_risk"].iloc[0] == pytest.approx(0.1587, abs=2e-3)
    bigger = what_if_plan(fc, dataclasses.replace(cfg, capacity_per_replica=1300))
    assert (bigger["overload_risk"] < plan["overload_risk"]).all()


def test_a_point_forecast_is_overloaded_or_not():
    fc = forecast([100.0, 200.0], [100.0, 200.0])
    cfg = WhatIfSettings(capacity_per_replica=150, target_utilization=1.0, startup_delay_s=0,
                         max_replicas=1)  # fmt: skip
    assert what_if_plan(fc, cfg)["overload_risk"].tolist() == [0.0, 1.0]


def test_missing_forecast_values_hold_the_previous_decision_and_leave_the_risk_unknown():
    fc = forecast([500.0, math.nan, math.nan], [600.0, math.nan, math.nan])
    cfg = WhatIfSettings(capacity_per_replica=50, startup_delay_s=0, ready_now=2)
    plan = what_if_plan(fc, cfg)
    assert plan["replicas"].tolist() == [plan["replicas"].iloc[0]] * 3  # never a drop
    assert np.isnan(plan["overload_risk"].iloc[1])
    summary = summarise(plan, cfg)
    assert math.isfinite(summary.expected_overload_minutes)


def test_summary_counts_replica_hours_and_minutes_at_the_ceiling():
    fc = forecast([5000.0] * 12)  # far beyond 10 replicas
    cfg = WhatIfSettings(capacity_per_replica=100, startup_delay_s=0, max_replicas=10)
    summary = summarise(what_if_plan(fc, cfg), cfg)
    assert summary.peak_replicas == 10
    assert summary.replica_hours == pytest.approx(10 * 12 * 5 / 60)
    assert summary.minutes_at_max_replicas == 60
    assert summary.max_overload_risk == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"capacity_per_replica": 0}, "capacity_per_replica"),
        ({"target_utilization": 1.5}, "target_utilization"),
        ({"startup_delay_s": -1}, "startup_delay_s"),
        ({"level": 1.0}, "level"),
        ({"ready_now": -2}, "ready_now"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(change, message):
    with pytest.raises(ValueError, match=message):
        WhatIfSettings(**{"capacity_per_replica": 10.0, **change})


def test_bad_forecasts_are_refused():
    cfg = WhatIfSettings(capacity_per_replica=10)
    with pytest.raises(ValueError, match="missing"):
        what_if_plan(pd.DataFrame({"ds": [T0], "yhat": [1.0]}), cfg)
    with pytest.raises(ValueError, match="empty"):
        what_if_plan(forecast([1.0]).iloc[:0], cfg)
    with pytest.raises(ValueError, match="increasing"):
        what_if_plan(forecast([1.0, 2.0]).iloc[::-1], cfg)


def test_the_continuation_uses_the_load_a_day_earlier_widened_like_the_model():
    fc = forecast([100.0, 100.0], [150.0, 150.0])
    past_ds = pd.date_range(T0 - pd.Timedelta(days=1), periods=40, freq="5min")
    history = pd.DataFrame({"ds": past_ds, "y": np.arange(40, dtype=float) + 10})
    out = extend_with_history(fc, history, T0 + pd.Timedelta(hours=1))
    assert out["source"].tolist()[:2] == ["model", "model"]
    tail = out[out["source"] == "a day earlier"]
    assert tail["ds"].iloc[0] == T0 + pd.Timedelta(minutes=10)
    assert tail["ds"].iloc[-1] == T0 + pd.Timedelta(hours=1)
    # 19:10 today continues with 19:10 yesterday (the third history point, 12.0), x1.5
    assert tail["yhat"].iloc[0] == 12.0 and tail["yhat_upper"].iloc[0] == pytest.approx(18.0)
    # no history a day back: unknown, so the planner holds there
    gap = extend_with_history(fc, history.iloc[:3], T0 + pd.Timedelta(hours=1))
    assert gap["yhat"].iloc[-1] != gap["yhat"].iloc[-1]  # NaN
    plan = what_if_plan(gap, WhatIfSettings(capacity_per_replica=10, startup_delay_s=0))
    known = gap["yhat"].notna().to_numpy()
    last_known = plan["replicas"][known].iloc[-1]
    assert (plan["replicas"][~known] == last_known).all()


def test_settings_from_a_recommendations_inputs_keep_zeros_and_default_the_rest():
    inputs = {"capacity_per_replica": 250.0, "target_utilization": 0.6, "lead_time_s": 420,
              "min_replicas": 0, "max_replicas": 12}
    cfg = WhatIfSettings.from_inputs(inputs, ready_now=3)
    assert (cfg.capacity_per_replica, cfg.target_utilization) == (250.0, 0.6)
    assert (cfg.min_replicas, cfg.max_replicas, cfg.ready_now) == (0, 12, 3)  # 0 is a value
    assert (cfg.startup_delay_s, cfg.margin_s, cfg.level) == (420, 0, 0.9)  # older inputs
    assert WhatIfSettings.from_inputs({**inputs, "startup_delay_s": 300}).startup_delay_s == 300
