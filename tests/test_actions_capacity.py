"""Replica arithmetic: exact cases and hypothesis properties; the plain-language reason."""

from __future__ import annotations

import ast
import doctest
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import actions
from actions import CapacityBounds, describe_plan, plan_replicas, replicas_for_load
from actions import capacity as capacity_module
from actions import explain as explain_module

FIVE_MIN = pd.Timedelta("5min")
PEAK_AT = pd.Timestamp("2026-11-28 19:50", tz="UTC")

capacities = st.floats(0.5, 5_000, allow_nan=False)
utilizations = st.floats(0.05, 1.0, allow_nan=False)
loads = st.floats(0.0, 1e6, allow_nan=False)


@st.composite
def bounds_strategy(draw):
    lo = draw(st.integers(0, 50))
    hi = draw(st.integers(lo, 200))
    return CapacityBounds(draw(capacities), draw(utilizations), lo, hi)


forecasts = st.lists(st.one_of(loads, st.just(float("nan"))), min_size=1, max_size=30).filter(
    lambda xs: any(not math.isnan(x) for x in xs)
)


# ---------------------------------------------------------------- exact cases


@pytest.mark.parametrize(("load", "expected"), [
    (700.0, 10), (700.001, 11), (699.99, 10), (70.0, 1), (0.001, 1), (0.0, 0), (-5.0, 0),
    (2310.0, 33), (2800.0, 40),
])
def test_replicas_for_load_exact(load, expected):
    assert replicas_for_load(load, 100.0, 0.7) == expected


@pytest.mark.parametrize(("cap", "u", "k"), [(100.0, 0.7, 10), (0.1, 0.3, 7), (33.3, 0.9, 3),
                                             (250.0, 0.65, 123), (1e-3, 0.01, 1_000_000)])
def test_whole_number_of_replicas_is_not_rounded_up(cap, u, k):
    assert replicas_for_load(k * cap * u, cap, u) == k
    assert replicas_for_load(k * (cap * u), cap, u) == k


@pytest.mark.parametrize("load", [float("nan"), float("inf"), -float("inf")])
def test_replicas_for_load_rejects_non_finite(load):
    with pytest.raises(ValueError, match="load"):
        replicas_for_load(load, 100.0, 0.7)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"capacity_per_replica": 0.0}, "capacity_per_replica"),
    ({"capacity_per_replica": float("nan")}, "capacity_per_replica"),
    ({"capacity_per_replica": 100.0, "target_utilization": 0.0}, "target_utilization"),
    ({"capacity_per_replica": 100.0, "target_utilization": 1.2}, "target_utilization"),
    ({"capacity_per_replica": 100.0, "min_replicas": -1}, "min_replicas"),
    ({"capacity_per_replica": 100.0, "max_replicas": 2.5}, "max_replicas"),
    ({"capacity_per_replica": 100.0, "min_replicas": 5, "max_replicas": 4}, "min_replicas"),
])
def test_bounds_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        CapacityBounds(**kwargs)


def test_bounds_accept_edges():
    b = CapacityBounds(100.0, target_utilization=1.0, min_replicas=0, max_replicas=0)
    assert (b.replica_load, b.max_load) == (100.0, 0.0)


def test_plan_within_bounds():
    plan = plan_replicas([1200.0, 2310.0, float("nan")], CapacityBounds(100.0, max_replicas=40))
    assert plan == actions.ReplicaPlan(33, 2310.0, 33, None, None, False, 0.0)


def test_plan_clamped_at_max_reports_unserved_load():
    plan = plan_replicas(np.array([3310.0]), CapacityBounds(100.0, max_replicas=40))
    assert (plan.recommended_replicas, plan.clamped, plan.demand_exceeds_max) == (40, "max", True)
    assert plan.unserved_rps == pytest.approx(510.0)


def test_plan_clamped_at_min():
    plan = plan_replicas(pd.Series([5.0, 10.0]), CapacityBounds(100.0, min_replicas=3))
    assert (plan.recommended_replicas, plan.needed_for_forecast, plan.clamped) == (3, 1, "min")
    assert plan_replicas([-5.0], CapacityBounds(100.0, min_replicas=0)).recommended_replicas == 0


def test_plan_never_below_current_load():
    plan = plan_replicas([700.0], CapacityBounds(100.0), current_load=1400.0)
    assert (plan.recommended_replicas, plan.needed_for_forecast, plan.needed_for_current) == (
        20, 10, 20)
    assert plan.driven_by_current


def test_current_load_beyond_max_counts_as_unserved():
    plan = plan_replicas([700.0], CapacityBounds(100.0, max_replicas=10), current_load=1000.0)
    assert (plan.recommended_replicas, plan.clamped) == (10, "max")
    assert plan.unserved_rps == pytest.approx(300.0)


def test_exactly_max_capacity_is_not_exceeding():
    plan = plan_replicas([2800.0], CapacityBounds(100.0, max_replicas=40))
    assert (plan.recommended_replicas, plan.clamped, plan.unserved_rps) == (40, None, 0.0)


@pytest.mark.parametrize("forecast", [[], [float("nan")], [float("nan"), float("inf")]])
def test_plan_without_forecast_raises(forecast):
    with pytest.raises(ValueError, match="no forecast"):
        plan_replicas(forecast, CapacityBounds(100.0))


def test_plan_rejects_nan_current_load():
    with pytest.raises(ValueError, match="load"):
        plan_replicas([1.0], CapacityBounds(100.0), current_load=float("nan"))


# ---------------------------------------------------------------- properties


@given(loads, capacities, utilizations)
def test_replicas_cover_the_load_and_are_minimal(load, cap, u):
    n = replicas_for_load(load, cap, u)
    assert n * cap * u >= load * (1 - 1e-9)
    assert n == 0 or (n - 1) * cap * u < load


@given(st.integers(0, 10**6), capacities, utilizations)
def test_whole_multiples_give_exactly_that_many(k, cap, u):
    assert replicas_for_load(k * cap * u, cap, u) == k


@given(forecasts, bounds_strategy(), st.one_of(st.none(), loads))
def test_plan_stays_within_bounds(forecast, bounds, current):
    plan = plan_replicas(forecast, bounds, current)
    assert bounds.min_replicas <= plan.recommended_replicas <= bounds.max_replicas
    assert plan.unserved_rps >= 0
    assert plan.demand_exceeds_max == (plan.clamped == "max") == (plan.unserved_rps > 0 or (
        plan.clamped == "max"))
    if plan.clamped is None:
        assert plan.recommended_replicas == max(plan.needed_for_forecast,
                                                plan.needed_for_current or 0)


@given(forecasts, bounds_strategy(), st.floats(1.0, 100.0), st.one_of(st.none(), loads))
def test_plan_is_monotone_in_the_forecast(forecast, bounds, factor, current):
    low = plan_replicas(forecast, bounds, current)
    high = plan_replicas([x * factor for x in forecast], bounds, current)
    assert high.recommended_replicas >= low.recommended_replicas


@given(forecasts, bounds_strategy(), loads)
def test_plan_never_below_what_current_load_needs_unless_at_max(forecast, bounds, current):
    plan = plan_replicas(forecast, bounds, current)
    assert plan.needed_for_current is not None
    assert plan.recommended_replicas >= plan.needed_for_current or plan.clamped == "max"


@given(forecasts, bounds_strategy())
def test_plan_serves_the_peak_unless_at_max(forecast, bounds):
    plan = plan_replicas(forecast, bounds)
    served = plan.recommended_replicas * bounds.replica_load
    assert served >= plan.forecast_peak * (1 - 1e-9) or plan.clamped == "max"
    if plan.clamped == "max":
        assert plan.unserved_rps == pytest.approx(plan.forecast_peak - bounds.max_load)


# ---------------------------------------------------------------- describe_plan


def describe(plan, bounds, lead=FIVE_MIN, **kw):
    return describe_plan(plan, service="bet-placement", metric="req/s", peak_at=PEAK_AT,
                         lead_time=lead, bounds=bounds, model="seasonal_naive", **kw)


def test_describe_plan_sentence():
    bounds = CapacityBounds(100.0, max_replicas=40)
    assert describe(plan_replicas([2310.0], bounds), bounds) == (
        "bet-placement: forecast p95 2,310 req/s by 19:50 UTC (seasonal_naive), 100 req/s per "
        "replica at 70% → 33 replicas, ready within 5 min lead time"
    )


def test_describe_plan_at_max_advises_throttling():
    bounds = CapacityBounds(100.0, max_replicas=40)
    text = describe(plan_replicas([3310.0], bounds), bounds)
    assert text.endswith("→ 40 replicas, ready within 5 min lead time; demand exceeds max 40 "
                         "replicas by 510 req/s: throttle advised")


def test_describe_plan_at_min_and_current_load():
    bounds = CapacityBounds(100.0, min_replicas=2)
    assert describe(plan_replicas([10.0], bounds), bounds).endswith(
        "; held at min 2 replicas (load needs 1)")
    text = describe(plan_replicas([700.0], bounds, current_load=1400.0), bounds, level=0.8)
    assert "forecast p90 700 req/s" in text
    assert text.endswith("→ 20 replicas, ready within 5 min lead time; current load needs 20 "
                         "replicas, more than the forecast")


@pytest.mark.parametrize(("lead", "text"), [("90s", "1 min 30 s"), ("2h", "2 h"), ("45s", "45 s"),
                                            ("1h5min", "1 h 5 min")])
def test_describe_plan_lead_time_format(lead, text):
    bounds = CapacityBounds(100.0)
    assert f"ready within {text} lead time" in describe(
        plan_replicas([1.0], bounds), bounds, lead=pd.Timedelta(lead))


def test_describe_plan_converts_peak_time_to_utc():
    bounds = CapacityBounds(100.0)
    text = describe_plan(plan_replicas([1.0], bounds), service="s", metric="req/s",
                         peak_at=pd.Timestamp("2026-11-28 20:50", tz="Europe/Paris"),
                         lead_time=FIVE_MIN, bounds=bounds, model="m")
    assert "by 19:50 UTC" in text


@given(forecasts, bounds_strategy(), st.one_of(st.none(), loads),
       st.text(st.characters(categories=("L", "N", "Pd")), min_size=1, max_size=20),
       st.integers(1, 7200))
def test_describe_plan_mentions_service_replicas_and_lead_time(forecast, bounds, current, service,
                                                               lead_s):
    plan = plan_replicas(forecast, bounds, current)
    text = describe_plan(plan, service=service, metric="req/s", peak_at=PEAK_AT,
                         lead_time=pd.Timedelta(seconds=lead_s), bounds=bounds, model="m")
    assert text.startswith(f"{service}: ")
    assert f"→ {plan.recommended_replicas} replica" in text
    assert "lead time" in text and "\n" not in text
    assert ("throttle advised" in text) == (plan.clamped == "max")


# ---------------------------------------------------------------- package surface


def test_exported_members():
    assert sorted(actions.__all__) == ["CapacityBounds", "ReplicaPlan", "anomaly_alert",
                                       "dedup_key", "describe_plan", "plan_replicas",
                                       "replicas_for_load"]


@pytest.mark.parametrize("module", [actions, capacity_module, explain_module],
                         ids=lambda m: m.__name__)
def test_docstring_examples_run_and_package_is_a_leaf(module):
    assert doctest.testmod(module).failed == 0
    tree = ast.parse(Path(module.__file__).read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert not roots & {"surgecast", "simulator", "collectors", "models", "dashboard"}
