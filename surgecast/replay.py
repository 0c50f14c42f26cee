"""The predictive replica policy over a whole load trace, strictly online.

Composition only: :func:`models.forecasting.lead_peak.lead_peak_forecast` forecasts, for every
row, quantiles of the peak load until a replica requested now would be ready plus one decision
interval; :func:`actions.policy.risk_priced_replicas` picks a quantile by pricing overload
risk against replica cost (an overload inside a fixture window weighs
``event_overload_weight`` × the demand at stake, see :func:`overload_weight`, and there the
fixture-only quantiles such as p99.9 are on offer: goal spikes cannot be timed, only covered);
:class:`actions.policy.ScaleGuard` applies the guardrails. At row
``i`` (time ``t_i``) the policy knows rows ``< i`` only: the row dated ``t_i`` is the interval
that starts now. ``tests/test_replay.py`` checks that cutting the trace never changes an
earlier recommendation.

Example:
    >>> import numpy as np, pandas as pd
    >>> ds = pd.date_range("2026-01-05", periods=3 * 288, freq="5min", tz="UTC")
    >>> load = 700 + 300 * np.sin(2 * np.pi * np.arange(ds.size) / 288)
    >>> recs = predictive_schedule(ds, load, ReplayPolicy(capacity_per_replica=100.0,
    ...                                                   startup_delay_s=300))
    >>> list(recs.columns[:3]), int(recs["replicas"].iloc[-1]) >= 5
    (['ds', 'replicas', 'forecast_peak'], True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from actions.capacity import CapacityBounds
from actions.policy import ScaleGuard, risk_priced_replicas
from models.forecasting.lead_peak import LeadPeakConfig, lead_peak_forecast

__all__ = ["ReplayPolicy", "overload_weight", "predictive_schedule"]

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class ReplayPolicy:
    """What the predictive policy plans with.

    Attributes:
        capacity_per_replica: load one ready replica serves (req/s).
        startup_delay_s: seconds from a scale-up request until the replica serves.
        target_utilization: planned utilisation of the observed load (the floor) and of the
            point forecast until the quantiles are calibrated.
        min_replicas, max_replicas: bounds.
        replica_cost: overload probability one typical-replica-count must buy (lower = more
            headroom, more replica-hours); see :mod:`actions.policy`.
        stabilization_s: scale-down stabilisation window.
        max_step_up, max_step_down: replicas per decision (0 = unlimited).
        event_overload_weight: how much more an overloaded minute inside a fixture window
            matters than one in a quiet hour, per unit of demand at stake: the weight of a
            fixture window is this times its forecast load relative to the typical load (at
            least 1), since a kickoff overload rejects that many more bets. The policy then buys
            a higher quantile there (up to the fixture-only levels, e.g. p99.9).
        floor_utilization: the observed load never gets fewer replicas than it needs at this
            utilisation (1.0: fewer would overload right now; ``None``: the target).
    """

    capacity_per_replica: float
    startup_delay_s: float
    target_utilization: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 1000
    replica_cost: float = 0.15
    stabilization_s: float = 300.0
    max_step_up: int = 0
    max_step_down: int = 0
    floor_utilization: float | None = 1.0
    event_overload_weight: float = 5.0

    def bounds(self) -> CapacityBounds:
        return CapacityBounds(
            self.capacity_per_replica, self.target_utilization, self.min_replicas, self.max_replicas
        )


# the calibration pools of :data:`models.forecasting.lead_peak.POOLS`, in words
_POOL_WORDS = {
    1: "fixtures: pre-match ramp",
    2: "fixtures: in play",
    3: "fixtures: after the match",
}


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:,.3g}"


def _reason(
    rule: str,
    level: float,
    peak: float,
    planned: float,
    replicas: int,
    candidate: int | None,
    lead_min: float,
    capacity: float,
    u: float,
    floor_u: float,
    pool: int,
) -> str:
    if rule == "forecast" or rule == "stabilization":
        near = f" ({_POOL_WORDS[pool]})" if pool in _POOL_WORDS else ""
        basis = (
            f"p{level * 100:.4g} of the peak over the next {lead_min:.3g} min{near}: "
            f"{_num(planned)} req/s"
            if math.isfinite(level)
            else f"forecast peak over the next {lead_min:.3g} min{near} {_num(peak)} req/s at "
            f"{u:.0%} utilisation (quantiles not calibrated yet)"
        )
        text = f"{basis} → {candidate} replicas of {_num(capacity)} req/s"
        if rule == "stabilization":
            text += f"; holding {replicas} (scale-down stabilisation)"
        return text
    return {
        "observed_load": f"load observed now needs {replicas} replicas at {floor_u:.0%} "
        "utilisation",
        "hold_missing_data": f"no fresh data: holding {replicas} replicas (never scale down blind)",
        "min_replicas": f"min_replicas {replicas}",
        "max_replicas": f"capped at max_replicas {replicas}; demand may exceed capacity",
        "max_step_up": f"scale-up limited to {replicas} by max_step_up",
        "max_step_down": f"scale-down limited to {replicas} by max_step_down",
    }[rule]


def overload_weight(
    in_event: np.ndarray, forecast: np.ndarray, typical_load: np.ndarray, event_weight: float
) -> np.ndarray:
    """How much an overload at each decision matters: 1 outside fixture windows; inside,
    ``event_weight`` times the demand at stake (forecast / typical load, at least 1).

    Example:
        >>> overload_weight(np.array([False, True, True]), np.array([900.0, 900.0, 3000.0]),
        ...                 np.array([1000.0] * 3), 3.0).tolist()
        [1.0, 3.0, 9.0]
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        stake = np.where(typical_load > 0, forecast / typical_load, 1.0)
    stake = np.where(np.isfinite(stake), np.maximum(stake, 1.0), 1.0)
    return np.where(in_event, event_weight * stake, 1.0)


def predictive_schedule(
    ds: pd.DatetimeIndex | pd.Series | np.ndarray,
    load: np.ndarray | pd.Series,
    policy: ReplayPolicy,
    events: pd.DataFrame | None = None,
    config: LeadPeakConfig | None = None,
) -> pd.DataFrame:
    """One recommendation per row: ``ds, replicas, forecast_peak, planned_load, quantile,
    rule, reason``.

    Args:
        ds: strictly increasing timestamps on a regular grid (rows may be missing).
        load: the demand per row (NaN = not observed: never scales down on it).
        policy: capacity, delay, bounds and guardrails.
        events: optional fixture calendar (see :mod:`models.forecasting.events`).
        config: forecaster knobs.
    """
    index = pd.DatetimeIndex(pd.to_datetime(ds, utc=True)).as_unit("ns")
    values = np.asarray(load, dtype=float)
    bounds = policy.bounds()
    fc = lead_peak_forecast(index, values, policy.startup_delay_s, events=events, config=config)
    cap, u = policy.capacity_per_replica, policy.target_utilization
    day_rows = max(DAY_SECONDS / fc.step_seconds, 1.0)
    typical = pd.Series(fc.point / cap).ewm(halflife=day_rows, ignore_na=True).mean().to_numpy()
    priced, level, planned = risk_priced_replicas(
        fc.quantiles,
        fc.levels,
        typical,
        cap,
        policy.replica_cost,
        overload_weight(fc.in_event, fc.point, typical * cap, policy.event_overload_weight),
    )
    with np.errstate(invalid="ignore"):
        uncalibrated = np.ceil(fc.point / (cap * u) - 1e-9)
    candidates = np.where(np.isfinite(priced), priced, uncalibrated)
    planned = np.where(np.isfinite(level), planned, fc.point)
    # the run starts warm, as the reference policies do: the first decision is sized for the
    # first row's load (there is no completed interval yet); every later one sees rows < i
    observed = np.concatenate([values[:1], values[:-1]])
    if np.isfinite(values[0]):
        candidates[0] = np.ceil(values[0] / (cap * u) - 1e-9)
    guard = ScaleGuard(
        bounds,
        policy.stabilization_s,
        policy.max_step_up,
        policy.max_step_down,
        policy.floor_utilization,
    )
    seconds = index.asi8 // 1_000_000_000
    lead_min = (fc.rows_ahead + 1) * fc.step_seconds / 60.0
    replicas = np.empty(values.size, dtype=int)
    rules, reasons = [], []
    for i in range(values.size):
        fresh = bool(np.isfinite(observed[i])) or i == 0
        cand = candidates[i] if np.isfinite(candidates[i]) else None
        decision = guard.decide(
            float(seconds[i]), cand, observed[i] if np.isfinite(observed[i]) else None, fresh
        )
        replicas[i] = decision.replicas
        rules.append(decision.rule)
        reasons.append(
            _reason(
                decision.rule,
                float(level[i]),
                float(fc.point[i]),
                float(planned[i]),
                decision.replicas,
                decision.candidate,
                lead_min,
                cap,
                u,
                policy.floor_utilization or u,
                int(fc.pool[i]),
            )
        )
    return pd.DataFrame(
        {
            "ds": index,
            "replicas": replicas,
            "forecast_peak": fc.point,
            "planned_load": planned,
            "quantile": level,
            "rule": rules,
            "reason": reasons,
        }
    )
