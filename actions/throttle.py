"""Throttling advice when even ``max_replicas`` cannot carry the forecast demand (pure functions).

A service's traffic is split into **classes** (e.g. bet placement, cash-out, odds polling, bet
history, promotions), each with a priority and its share of the service's load. When the
forecast peak exceeds what ``max_replicas`` serve at the target utilisation, capacity is
handed out in priority order:

* ``critical`` classes (bet placement, payments) are protected: they get capacity first and are
  never shed; what still does not fit is **queued** (a gateway answers 429 with Retry-After or
  parks the request: a bet in an overload is queued or rejected cleanly, never lost silently);
* lower classes get what is left, highest priority first; a class that does not fit is
  rate-limited to its remainder (possibly 0) and the excess is **shed** (rejected with 429).

Each class gets a limit in req/s the gateway can apply, with the expected excess and how long
the forecast says it lasts.

Example:
    >>> classes = [TrafficClass("bets", "critical", 0.5), TrafficClass("odds", "low", 0.5)]
    >>> plan = throttle_plan(demand_peak=3000.0, capacity=2000.0, classes=classes,
    ...                      overload_minutes=12.0)
    >>> [(c.name, c.limit_rps, c.action) for c in plan.classes]
    [('bets', 1500.0, 'allow'), ('odds', 500.0, 'shed')]
    >>> plan.excess_rps, plan.overload_minutes
    (1000.0, 12.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "PRIORITIES",
    "ClassLimit",
    "ThrottlePlan",
    "TrafficClass",
    "overload_window",
    "throttle_plan",
]

Priority = Literal["critical", "high", "normal", "low"]
PRIORITIES: tuple[str, ...] = ("critical", "high", "normal", "low")


@dataclass(frozen=True)
class TrafficClass:
    """One class of a service's requests.

    Attributes:
        name: what the gateway matches on (a route, an endpoint group).
        priority: ``critical`` (never shed), ``high``, ``normal`` or ``low``.
        share: the class's share of the service's load, in (0, 1].
    """

    name: str
    priority: Priority
    share: float

    def __post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, got {self.priority!r}")
        if not (math.isfinite(self.share) and 0 < self.share <= 1):
            raise ValueError(f"share of {self.name!r} must be in (0, 1], got {self.share!r}")


@dataclass(frozen=True)
class ClassLimit:
    """What one class may send during the overload.

    Attributes:
        name, priority: the class.
        demand_rps: its forecast demand at the peak.
        limit_rps: the rate the gateway should let through.
        action: ``allow`` (fits), ``queue`` (critical, does not fit: queue, never drop) or
            ``shed`` (rejected above ``limit_rps``).
        excess_rps: demand above the limit.
    """

    name: str
    priority: str
    demand_rps: float
    limit_rps: float
    action: Literal["allow", "queue", "shed"]
    excess_rps: float


@dataclass(frozen=True)
class ThrottlePlan:
    """Per-class limits for one service's overload.

    Attributes:
        demand_peak: forecast peak demand (req/s).
        capacity: what ``max_replicas`` carry at the target utilisation (req/s).
        excess_rps: ``demand_peak - capacity`` (> 0).
        overload_minutes: how long the forecast stays above capacity.
        classes: one :class:`ClassLimit` per class, in priority order.
    """

    demand_peak: float
    capacity: float
    excess_rps: float
    overload_minutes: float
    classes: tuple[ClassLimit, ...]

    def summary(self) -> str:
        """One sentence for the recommendation's reason."""
        cut = [c for c in self.classes if c.action != "allow"]
        parts = [
            f"{c.name} {'queue above' if c.action == 'queue' else 'limit to'} {c.limit_rps:,.0f} req/s"
            for c in cut
        ]
        return (
            f"demand {self.demand_peak:,.0f} req/s exceeds max capacity {self.capacity:,.0f} req/s "
            f"by {self.excess_rps:,.0f} req/s for about {self.overload_minutes:.0f} min: "
            + ("; ".join(parts) if parts else "no class needs limiting")
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "demand_peak": self.demand_peak,
            "capacity": self.capacity,
            "excess_rps": self.excess_rps,
            "overload_minutes": self.overload_minutes,
            "classes": [c.__dict__ for c in self.classes],
        }


def _check_classes(classes: Sequence[TrafficClass]) -> None:
    if not classes:
        raise ValueError("at least one traffic class is needed")
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise ValueError(f"traffic class names must be unique, got {names}")
    total = sum(c.share for c in classes)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"traffic class shares must add up to 1, got {total:.6g}")


def throttle_plan(
    demand_peak: float,
    capacity: float,
    classes: Sequence[TrafficClass],
    overload_minutes: float,
) -> ThrottlePlan | None:
    """Per-class limits when ``demand_peak`` exceeds ``capacity``; ``None`` when it fits.

    Raises:
        ValueError: non-finite or negative numbers, classes whose shares do not add up to 1,
            duplicate class names.
    """
    for name, value in (
        ("demand_peak", demand_peak),
        ("capacity", capacity),
        ("overload_minutes", overload_minutes),
    ):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    _check_classes(classes)
    if demand_peak <= capacity:
        return None
    ordered = sorted(classes, key=lambda c: PRIORITIES.index(c.priority))
    left = capacity
    limits = []
    for c in ordered:
        demand = demand_peak * c.share
        granted = min(demand, left)
        left -= granted
        if granted >= demand - 1e-9:
            action: Literal["allow", "queue", "shed"] = "allow"
        else:
            action = "queue" if c.priority == "critical" else "shed"
        limits.append(ClassLimit(c.name, c.priority, demand, granted, action, demand - granted))
    return ThrottlePlan(
        demand_peak=float(demand_peak),
        capacity=float(capacity),
        excess_rps=float(demand_peak - capacity),
        overload_minutes=float(overload_minutes),
        classes=tuple(limits),
    )


def overload_window(
    ds: pd.Series | pd.DatetimeIndex, demand: np.ndarray, capacity: float, step: pd.Timedelta
) -> tuple[pd.Timestamp | None, float]:
    """When a forecast first exceeds ``capacity`` and for how many minutes in total.

    Example:
        >>> ds = pd.date_range("2026-11-28 19:40", periods=4, freq="5min", tz="UTC")
        >>> overload_window(ds, np.array([1.0, 3.0, 3.0, 1.0]), 2.0, pd.Timedelta("5min"))
        (Timestamp('2026-11-28 19:45:00+0000', tz='UTC'), 10.0)
    """
    values = np.asarray(demand, dtype=float)
    over = np.isfinite(values) & (values > capacity)
    if not over.any():
        return None, 0.0
    times = pd.DatetimeIndex(ds)
    return times[int(np.argmax(over))], float(over.sum() * step.total_seconds() / 60)
