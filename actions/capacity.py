"""Replica arithmetic: how many replicas a forecast and the current load need (pure functions).

``replicas = ceil(load / (capacity_per_replica * target_utilization))``, clamped to
``[min_replicas, max_replicas]`` and never below what the current load needs (unless that is
beyond ``max_replicas``, in which case the excess is reported as ``unserved_rps``).

Example:
    >>> plan = plan_replicas([1200.0, 2310.0], CapacityBounds(100.0, max_replicas=40))
    >>> plan.recommended_replicas, plan.clamped
    (33, None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["CapacityBounds", "ReplicaPlan", "plan_replicas", "replicas_for_load"]

# Loads that are a whole number of replicas up to float noise (700 / (100 * 0.7) computes as
# 10.000000000000002 on some paths) must not round up to an extra replica.
_REL_TOL = 1e-9


def _check_capacity(capacity_per_replica: float, target_utilization: float) -> None:
    if not (math.isfinite(capacity_per_replica) and capacity_per_replica > 0):
        raise ValueError(
            f"capacity_per_replica must be a positive finite number, got {capacity_per_replica!r}"
        )
    if not (math.isfinite(target_utilization) and 0 < target_utilization <= 1):
        raise ValueError(f"target_utilization must be in (0, 1], got {target_utilization!r}")


@dataclass(frozen=True)
class CapacityBounds:
    """What one replica serves and the limits on the replica count.

    Args:
        capacity_per_replica: load one replica serves at 100 % utilisation (e.g. req/s).
        target_utilization: the utilisation to plan for, in (0, 1].
        min_replicas: never recommend fewer.
        max_replicas: never recommend more; demand beyond it is reported as unserved.

    Raises:
        ValueError: a field is out of range; the message names it.

    Example:
        >>> CapacityBounds(100.0).target_utilization
        0.7
    """

    capacity_per_replica: float
    target_utilization: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 100

    def __post_init__(self) -> None:
        _check_capacity(self.capacity_per_replica, self.target_utilization)
        for name in ("min_replicas", "max_replicas"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas "
                f"({self.max_replicas})"
            )

    @property
    def replica_load(self) -> float:
        """Load one replica is planned to carry: capacity × target utilisation."""
        return self.capacity_per_replica * self.target_utilization

    @property
    def max_load(self) -> float:
        """Load ``max_replicas`` replicas carry at the target utilisation."""
        return self.max_replicas * self.replica_load


@dataclass(frozen=True)
class ReplicaPlan:
    """The outcome of :func:`plan_replicas`.

    Attributes:
        recommended_replicas: replicas to run, within ``[min_replicas, max_replicas]``.
        forecast_peak: the largest finite value of the forecast upper bound.
        needed_for_forecast: replicas the forecast peak needs (before clamping).
        needed_for_current: replicas the current load needs, ``None`` when not given.
        clamped: ``"min"`` or ``"max"`` when the bounds changed the count, else ``None``.
        demand_exceeds_max: the demand needs more than ``max_replicas``.
        unserved_rps: demand above what ``max_replicas`` carry at the target utilisation (≥ 0).
    """

    recommended_replicas: int
    forecast_peak: float
    needed_for_forecast: int
    needed_for_current: int | None
    clamped: Literal["min", "max"] | None
    demand_exceeds_max: bool
    unserved_rps: float

    @property
    def driven_by_current(self) -> bool:
        """The current load needs more replicas than the forecast peak."""
        return self.needed_for_current is not None and (
            self.needed_for_current > self.needed_for_forecast
        )


def replicas_for_load(load: float, capacity_per_replica: float, target_utilization: float) -> int:
    """Replicas needed to carry ``load`` at ``target_utilization``: ``ceil(load / (cap × u))``.

    A load within 1e-9 (relative) of a whole number of replicas counts as exactly that number.

    Raises:
        ValueError: ``load`` is NaN or infinite, or the capacity arguments are out of range.

    Example:
        >>> replicas_for_load(700.0, 100.0, 0.7), replicas_for_load(701.0, 100.0, 0.7)
        (10, 11)
    """
    load = float(load)
    if not math.isfinite(load):
        raise ValueError(f"load must be a finite number, got {load!r}")
    _check_capacity(capacity_per_replica, target_utilization)
    if load <= 0:
        return 0
    ratio = load / (capacity_per_replica * target_utilization)
    nearest = round(ratio)
    needed = int(nearest) if math.isclose(ratio, nearest, rel_tol=_REL_TOL) else math.ceil(ratio)
    return max(needed, 1)  # any positive load needs a replica, even if the ratio underflows


def plan_replicas(
    forecast_upper: ArrayLike, bounds: CapacityBounds, current_load: float | None = None
) -> ReplicaPlan:
    """Replicas for the peak of a forecast's upper bound, never below what load needs now.

    Args:
        forecast_upper: upper-bound forecast over the planning window (lead time + horizon);
            NaN and infinite values are ignored.
        bounds: capacity per replica, target utilisation and replica limits.
        current_load: the load observed now, if known.

    Raises:
        ValueError: no finite forecast value ("no forecast"), or ``current_load`` is NaN.

    Example:
        >>> plan = plan_replicas([2000.0, 3310.0], CapacityBounds(100.0, max_replicas=40))
        >>> plan.recommended_replicas, plan.clamped, plan.unserved_rps
        (40, 'max', 510.0)
    """
    values = np.asarray(forecast_upper, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError(
            "no forecast: forecast_upper has no finite value; plan from the current load or wait "
            "for a forecast"
        )
    peak = float(finite.max())
    cap, u = bounds.capacity_per_replica, bounds.target_utilization
    for_forecast = replicas_for_load(peak, cap, u)
    for_current = None if current_load is None else replicas_for_load(current_load, cap, u)
    needed = max(for_forecast, for_current or 0)
    clamped: Literal["min", "max"] | None = None
    if needed > bounds.max_replicas:
        clamped = "max"
    elif needed < bounds.min_replicas:
        clamped = "min"
    recommended = min(max(needed, bounds.min_replicas), bounds.max_replicas)
    exceeds = clamped == "max"
    demand = peak if current_load is None else max(peak, float(current_load))
    unserved = max(demand - bounds.max_load, 0.0) if exceeds else 0.0
    return ReplicaPlan(
        recommended_replicas=int(recommended),
        forecast_peak=peak,
        needed_for_forecast=for_forecast,
        needed_for_current=for_current,
        clamped=clamped,
        demand_exceeds_max=exceeds,
        unserved_rps=unserved,
    )
