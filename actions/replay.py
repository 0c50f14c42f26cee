"""Replay a replica schedule against a load trace, and the reference policies it is judged by.

The replay model (issue 5; the same as ``../shared/bench/capacity_replay.py``):

* the trace's load is constant over each row's interval; each *ready* replica serves
  ``capacity`` req/s and load above ready capacity is unserved (overload);
* a scale-up becomes ready ``delay`` after it is requested; a scale-down takes effect at once,
  cancelling still-starting replicas first (newest first);
* the run starts warm: the first recommendation is ready at ``t0``;
* cost = provisioned replica-hours (ready plus still starting);
* the simulation steps at ``gcd(trace step, delay)``; recommendations hold until the next one.

Reference policies (one recommendation per trace row):

* :func:`reactive_replicas` — Kubernetes HPA semantics: ``ceil(load of the last completed
  interval / (C × u))``, 10 % tolerance, scale-up at once, 5-minute scale-down stabilisation;
* :func:`oracle_replicas` — perfect foresight: the max over ``[t, t + delay]`` of
  ``ceil(load / (C × u))``, never overloaded;
* :func:`yesterday_replicas` — ``max(reactive, ceil(yesterday's load over [t, t + delay] /
  (C × u)))``: the trivial predictive heuristic.

Pure numpy/pandas; the CLI (``surgecast replay``) composes it with the forecaster.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "ReplayResult",
    "oracle_replicas",
    "reactive_replicas",
    "replay",
    "required_replicas",
    "stabilise_down",
    "yesterday_replicas",
]

_ROUND_TOL = 1e-9


@dataclass(frozen=True)
class ReplayResult:
    """How one replica schedule served a trace.

    Attributes:
        unserved_pct: share of the offered load not served, in percent.
        overload_minutes: minutes with load above ready capacity.
        replica_hours: provisioned (ready + starting) replica-hours.
        peak_replicas: the most replicas provisioned at once.
        hours: the trace's length in hours.
        overloaded: per simulation step (``sim_step_s`` apart from the trace's start), whether
            the load exceeded ready capacity.
        sim_step_s: the simulation step, ``gcd(trace step, delay)``.
    """

    unserved_pct: float
    overload_minutes: float
    replica_hours: float
    peak_replicas: int
    hours: float
    overloaded: np.ndarray = field(
        repr=False, compare=False, default_factory=lambda: np.zeros(0, bool)
    )
    sim_step_s: int = 0

    def as_dict(self) -> dict[str, float]:
        return {
            k: float(v) for k, v in asdict(self).items() if k not in ("overloaded", "sim_step_s")
        }


def required_replicas(
    load: np.ndarray, capacity: float, utilization: float, min_replicas: int = 1
) -> np.ndarray:
    """``max(min_replicas, ceil(load / (capacity × utilization)))`` per value."""
    raw = np.ceil(np.asarray(load, dtype=float) / (capacity * utilization) - _ROUND_TOL)
    return np.maximum(min_replicas, raw).astype(int)


def _seconds(times: pd.DatetimeIndex) -> np.ndarray:
    return (times.as_unit("ns").asi8 // 1_000_000_000).astype(np.int64)


def _step_seconds(times: pd.DatetimeIndex) -> int:
    """The trace's step: the median gap between rows (1 s for a single row)."""
    secs = _seconds(pd.DatetimeIndex(times))
    return int(np.median(np.diff(secs))) if secs.size > 1 else 1


def replay(
    times: pd.DatetimeIndex,
    load: np.ndarray,
    replicas: np.ndarray,
    capacity: float,
    delay_s: int,
) -> ReplayResult:
    """Simulate ``replicas`` (one per row of the trace) serving ``load``.

    Raises:
        ValueError: lengths differ, fewer than 2 rows, or a non-positive capacity.
    """
    load = np.asarray(load, dtype=float)
    desired_rows = np.asarray(replicas, dtype=float)
    if load.size != desired_rows.size or load.size != len(times):
        raise ValueError("times, load and replicas must have the same length")
    if load.size < 2:
        raise ValueError("a replay needs at least 2 rows")
    if not capacity > 0:
        raise ValueError(f"capacity must be positive, got {capacity!r}")
    step = _step_seconds(times)
    sim = math.gcd(step, int(delay_s)) if delay_s > 0 else step
    k = step // sim
    lam = np.repeat(np.nan_to_num(load, nan=0.0), k)
    want = np.repeat(np.ceil(np.clip(desired_rows, 0, None)).astype(int), k)
    delay_steps = int(delay_s) // sim
    ready = int(want[0])
    pending: deque[list[int]] = deque()  # [ready_at_step, count], increasing ready_at_step
    starting = 0
    unserved = offered = 0.0
    over_steps = provisioned = 0
    overloaded = np.zeros(lam.size, dtype=bool)
    peak = ready
    for i in range(lam.size):
        while pending and pending[0][0] <= i:
            n = pending.popleft()[1]
            ready += n
            starting -= n
        d = int(want[i])
        total = ready + starting
        if d > total:
            if delay_steps == 0:
                ready += d - total
            else:
                pending.append([i + delay_steps, d - total])
                starting += d - total
        elif d < total:
            cut = total - d
            while cut and pending:
                take = min(cut, pending[-1][1])
                pending[-1][1] -= take
                starting -= take
                cut -= take
                if pending[-1][1] == 0:
                    pending.pop()
            ready -= cut
        capacity_now = ready * capacity
        offered += lam[i]
        if lam[i] > capacity_now + 1e-9:
            unserved += lam[i] - capacity_now
            over_steps += 1
            overloaded[i] = True
        provisioned += ready + starting
        peak = max(peak, ready + starting)
    return ReplayResult(
        unserved_pct=100.0 * unserved / offered if offered else 0.0,
        overload_minutes=over_steps * sim / 60.0,
        replica_hours=provisioned * sim / 3600.0,
        peak_replicas=int(peak),
        hours=lam.size * sim / 3600.0,
        overloaded=overloaded,
        sim_step_s=sim,
    )


def stabilise_down(times: pd.DatetimeIndex, desired: np.ndarray, window_s: float) -> np.ndarray:
    """HPA scale-down stabilisation: the max of ``desired`` over ``[t - window, t]``."""
    secs = _seconds(pd.DatetimeIndex(times))
    raw = np.asarray(desired)
    out = np.empty_like(raw)
    window: deque[int] = deque()
    lo = 0
    for i in range(raw.size):
        while window and raw[window[-1]] <= raw[i]:
            window.pop()
        window.append(i)
        while secs[lo] < secs[i] - window_s:
            lo += 1
        while window[0] < lo:
            window.popleft()
        out[i] = raw[window[0]]
    return out


def reactive_replicas(
    times: pd.DatetimeIndex,
    load: np.ndarray,
    capacity: float,
    utilization: float,
    *,
    min_replicas: int = 1,
    tolerance: float = 0.1,
    stabilization_s: float = 300.0,
    floor: np.ndarray | None = None,
) -> np.ndarray:
    """Kubernetes HPA on the load of the last completed interval (see the module docstring)."""
    lam = np.nan_to_num(np.asarray(load, dtype=float), nan=0.0)
    observed = np.concatenate([lam[:1], lam[:-1]])
    raw = required_replicas(observed, capacity, utilization, min_replicas)
    current = raw.copy()
    for i in range(1, raw.size):
        prev = current[i - 1]
        ratio = observed[i] / (prev * capacity * utilization) if prev > 0 else np.inf
        current[i] = prev if abs(ratio - 1.0) <= tolerance else raw[i]
    if floor is not None:
        current = np.maximum(current, floor)
    return stabilise_down(times, current, stabilization_s)


def _forward_max(values: np.ndarray, rows: int) -> np.ndarray:
    return pd.Series(values[::-1]).rolling(rows + 1, min_periods=1).max().to_numpy()[::-1]


def oracle_replicas(
    times: pd.DatetimeIndex,
    load: np.ndarray,
    capacity: float,
    utilization: float,
    delay_s: int,
    *,
    min_replicas: int = 1,
) -> np.ndarray:
    """Perfect foresight at the trace's resolution: max required over rows ``[i, i + ceil(D /
    step)]`` (never overloaded when ``utilization <= 1``)."""
    step = _step_seconds(times)
    need = required_replicas(np.nan_to_num(load, nan=0.0), capacity, utilization, min_replicas)
    return _forward_max(need, math.ceil(delay_s / step)).astype(int)


def yesterday_replicas(
    times: pd.DatetimeIndex,
    load: np.ndarray,
    capacity: float,
    utilization: float,
    delay_s: int,
    *,
    min_replicas: int = 1,
) -> np.ndarray:
    """``max(reactive, ceil(yesterday's load over [t, t + delay] / (C × u)))``."""
    lam = np.nan_to_num(np.asarray(load, dtype=float), nan=0.0)
    step = _step_seconds(times)
    per = 86_400 // step
    ahead = math.ceil(delay_s / step)
    extra = np.zeros(lam.size, dtype=int)
    if lam.size > per and ahead < per:
        ahead_max = _forward_max(lam, ahead)
        extra[per:] = required_replicas(
            ahead_max[: lam.size - per], capacity, utilization, min_replicas
        )
    return reactive_replicas(
        times, lam, capacity, utilization, min_replicas=min_replicas, floor=extra
    )
