"""What-if planning: the replica plan and overload risk of a forecast under other capacity settings.

The dashboard's what-if page asks "what if a replica served 80 req/s, or started in 4 minutes?".
It answers with the planner the service runs (:func:`actions.capacity.plan_replicas` over each
decision's lead window). Then it replays when those replicas would be ready and how likely the
forecast demand is to exceed them.

The model, stated so a reader can check the numbers:

* a decision at ``t`` sizes for the peak of the forecast upper bound over
  ``[t, t + startup_delay + margin]``;
* replicas decided at ``t`` are ready at ``t + startup_delay``. Before the first decision's
  replicas are ready, ``ready_now`` replicas run (what is deployed now);
* demand at ``s`` is normal, centred on ``yhat``, with the spread its upper bound implies:
  ``sigma = (upper - yhat) / z`` where ``z`` is the ``(1 + level) / 2`` normal quantile (the
  upper side, which is the side that overloads);
* overload risk at ``s`` = ``P(demand > ready replicas x capacity_per_replica)``, i.e. beyond
  100 % of what the ready replicas carry, not beyond the target utilisation.

Pure numpy/pandas.

Example:
    >>> import pandas as pd
    >>> ds = pd.date_range("2026-01-01", periods=4, freq="5min", tz="UTC")
    >>> fc = pd.DataFrame({"ds": ds, "yhat": [100.0, 300, 300, 100], "yhat_upper": [120.0, 360, 360, 120]})
    >>> plan = what_if_plan(fc, WhatIfSettings(capacity_per_replica=50, startup_delay_s=300))
    >>> plan["replicas"].tolist()
    [11, 11, 11, 4]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from actions.capacity import CapacityBounds, plan_replicas

__all__ = ["WhatIfSettings", "WhatIfSummary", "extend_with_history", "summarise", "what_if_plan"]


def step_of(ds: pd.Series, default: pd.Timedelta) -> pd.Timedelta:
    """The sampling step of ``ds``: the median of its positive gaps (missing points and
    duplicates do not change it), or ``default`` with fewer than two distinct times.

    Example:
        >>> step_of(pd.Series(pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:05",
        ...     "2026-01-01 00:20", "2026-01-01 00:25"], utc=True)), pd.Timedelta("1min"))
        Timedelta('0 days 00:05:00')
    """
    t = np.unique(pd.to_datetime(ds, utc=True).to_numpy(dtype="datetime64[ns]"))
    gaps = np.diff(t)
    return pd.Timedelta(np.median(gaps)) if gaps.size else default


@dataclass(frozen=True)
class WhatIfSettings:
    """The capacity settings a what-if plans with (those of ``ServiceSettings``).

    Raises:
        ValueError: a field is out of range; the message names it.
    """

    capacity_per_replica: float
    target_utilization: float = 0.7
    startup_delay_s: int = 300
    margin_s: int = 0
    min_replicas: int = 1
    max_replicas: int = 100
    level: float = 0.9
    ready_now: int | None = None

    def __post_init__(self) -> None:
        if self.startup_delay_s < 0 or self.margin_s < 0:
            raise ValueError(
                f"startup_delay_s and margin_s must be >= 0, got {self.startup_delay_s}, "
                f"{self.margin_s}"
            )
        if not 0 < self.level < 1:
            raise ValueError(f"level must be in (0, 1), got {self.level!r}")
        if self.ready_now is not None and self.ready_now < 0:
            raise ValueError(f"ready_now must be >= 0, got {self.ready_now}")
        _ = self.bounds  # validates capacity, utilisation and the replica limits

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any], ready_now: int | None = None) -> WhatIfSettings:
        """The settings a recommendation was planned with (its ``inputs``); what they do not say
        takes the service defaults.

        Raises:
            ValueError: a value is out of range.
        """
        def get(key: str, default: Any) -> Any:
            value = inputs.get(key)
            return default if value is None else value

        return cls(
            capacity_per_replica=float(get("capacity_per_replica", 1.0)),
            target_utilization=float(get("target_utilization", 0.7)),
            startup_delay_s=int(get("startup_delay_s", get("lead_time_s", 0))),
            margin_s=int(get("margin_s", 0)),
            min_replicas=int(get("min_replicas", 1)),
            max_replicas=int(get("max_replicas", 100)),
            level=float(get("level", 0.9)),
            ready_now=ready_now,
        )

    @property
    def bounds(self) -> CapacityBounds:
        return CapacityBounds(
            capacity_per_replica=self.capacity_per_replica,
            target_utilization=self.target_utilization,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
        )


@dataclass(frozen=True)
class WhatIfSummary:
    """The figures an SRE compares between settings."""

    peak_replicas: int
    replica_hours: float
    expected_overload_minutes: float
    max_overload_risk: float
    minutes_at_max_replicas: float


def what_if_plan(forecast: pd.DataFrame, settings: WhatIfSettings) -> pd.DataFrame:
    """One row per forecast step: the plan decided then, what is ready, and the overload risk.

    Args:
        forecast: ``ds`` (increasing, evenly spaced), ``yhat`` and ``yhat_upper``; NaN values
            are ignored by the planner and give an unknown (NaN) risk.
        settings: capacity, utilisation, startup delay, margin, limits and interval level.

    Returns:
        ``ds, yhat, yhat_upper, replicas`` (decided at ``ds``), ``ready_replicas`` (running at
        ``ds``), ``ready_capacity`` (their load at 100 %), ``overload_risk`` in [0, 1].

    Raises:
        ValueError: missing columns, fewer than one row, or ``ds`` not increasing.
    """
    missing = {"ds", "yhat", "yhat_upper"} - set(forecast.columns)
    if missing:
        raise ValueError(f"forecast needs columns ds, yhat, yhat_upper; missing {sorted(missing)}")
    if forecast.empty:
        raise ValueError("forecast is empty: nothing to plan")
    ds = pd.to_datetime(forecast["ds"], utc=True).reset_index(drop=True)
    if not ds.is_monotonic_increasing or ds.duplicated().any():
        raise ValueError("forecast ds must be strictly increasing")
    yhat = forecast["yhat"].to_numpy(dtype=float)
    upper = forecast["yhat_upper"].to_numpy(dtype=float)
    bounds = settings.bounds
    lead = pd.Timedelta(seconds=settings.startup_delay_s + settings.margin_s)
    decided = np.empty(len(ds), dtype=int)
    t = ds.to_numpy(dtype="datetime64[ns]")  # naive UTC: numpy compares these, not tz objects
    lead_ns = np.timedelta64(int(lead.total_seconds() * 1e9), "ns")
    for i in range(len(ds)):
        end = int(np.searchsorted(t, t[i] + lead_ns, side="right"))
        window = upper[i:max(end, i + 1)]
        if np.isfinite(window).any():
            decided[i] = plan_replicas(window, bounds).recommended_replicas
        else:  # no forecast to plan from: hold the previous decision, never drop
            decided[i] = decided[i - 1] if i else (settings.ready_now or bounds.min_replicas)
    ready_now = settings.ready_now if settings.ready_now is not None else int(decided[0])
    # replicas decided at t are ready at t + startup_delay: look the decision up by time
    startup_ns = np.timedelta64(int(settings.startup_delay_s * 1e9), "ns")
    idx = np.searchsorted(t + startup_ns, t, side="right") - 1
    ready = np.where(idx >= 0, decided[np.clip(idx, 0, None)], ready_now)
    capacity = ready * settings.capacity_per_replica
    z = NormalDist().inv_cdf((1 + settings.level) / 2)
    risk = np.array([_overload_risk(m, u, c, z) for m, u, c in zip(yhat, upper, capacity, strict=True)])
    return pd.DataFrame({
        "ds": ds, "yhat": yhat, "yhat_upper": upper, "replicas": decided,
        "ready_replicas": ready.astype(int), "ready_capacity": capacity, "overload_risk": risk,
    })  # fmt: skip


def _overload_risk(mean: float, upper: float, capacity: float, z: float) -> float:
    if not (math.isfinite(mean) and math.isfinite(upper)):
        return math.nan
    sigma = max(upper - mean, 0.0) / z
    if sigma <= 1e-12 * max(abs(mean), 1.0):  # a point forecast: overloaded or not
        return 1.0 if mean > capacity else 0.0
    return 1.0 - NormalDist(mean, sigma).cdf(capacity)


def summarise(plan: pd.DataFrame, settings: WhatIfSettings) -> WhatIfSummary:
    """Peak replicas, replica-hours, expected overloaded minutes and the worst risk of a plan.

    The step is the median spacing of ``ds`` (one minute for a single row).
    """
    ds = pd.to_datetime(plan["ds"], utc=True)
    step_min = step_of(ds, pd.Timedelta(minutes=1)).total_seconds() / 60
    risk = plan["overload_risk"].to_numpy(dtype=float)
    known = risk[np.isfinite(risk)]
    replicas = plan["replicas"].to_numpy(dtype=int)
    return WhatIfSummary(
        peak_replicas=int(replicas.max()),
        replica_hours=float(plan["ready_replicas"].sum() * step_min / 60),
        expected_overload_minutes=float(known.sum() * step_min),
        max_overload_risk=float(known.max()) if known.size else math.nan,
        minutes_at_max_replicas=float((replicas >= settings.max_replicas).sum() * step_min),
    )


def extend_with_history(
    forecast: pd.DataFrame,
    history: pd.DataFrame,
    until: pd.Timestamp,
    season: pd.Timedelta = pd.Timedelta(days=1),
) -> pd.DataFrame:
    """The forecast, continued past the model's horizon up to ``until`` with the load one
    ``season`` earlier (a seasonal-naive guess), so a what-if can look hours ahead.

    The continuation's upper bound is its value times the median ``yhat_upper / yhat`` of the
    model's rows (at least 1). A ``source`` column says which rows are ``"model"`` and which
    ``"a day earlier"``; a time without history one season back gets NaN (the planner holds
    its previous decision there, and the risk is unknown).

    Raises:
        ValueError: ``forecast`` is empty or lacks ``ds, yhat, yhat_upper``.
    """
    missing = {"ds", "yhat", "yhat_upper"} - set(forecast.columns)
    if missing or forecast.empty:
        raise ValueError(f"forecast needs rows with ds, yhat, yhat_upper; missing {sorted(missing)}")
    model = forecast[["ds", "yhat", "yhat_upper"]].assign(source="model").reset_index(drop=True)
    model["ds"] = pd.to_datetime(model["ds"], utc=True)
    step = step_of(model["ds"], pd.Timedelta(minutes=5))
    start = model["ds"].iloc[-1] + step
    if start > until or history.empty:
        return model
    ds = pd.date_range(start, until, freq=step).as_unit("ns")
    past = history[["ds", "y"]].copy()
    past["ds"] = (pd.to_datetime(past["ds"], utc=True) + season).astype("datetime64[ns, UTC]")
    past = past.sort_values("ds")
    guess = pd.merge_asof(pd.DataFrame({"ds": ds}), past, on="ds", direction="nearest",
                          tolerance=step / 2)  # fmt: skip
    y = model["yhat"].to_numpy(float)
    ratios = model["yhat_upper"].to_numpy(float)[y > 0] / y[y > 0]
    widen = max(float(np.nanmedian(ratios)), 1.0) if ratios.size else 1.0
    tail = pd.DataFrame({"ds": ds, "yhat": guess["y"].to_numpy(float),
                         "yhat_upper": guess["y"].to_numpy(float) * widen, "source": "a day earlier"})
    return pd.concat([model, tail], ignore_index=True)
