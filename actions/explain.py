r"""One plain sentence that says why a replica plan is what it is.

Example:
    >>> import pandas as pd
    >>> from actions.capacity import CapacityBounds, plan_replicas
    >>> bounds = CapacityBounds(100.0, max_replicas=40)
    >>> text = describe_plan(plan_replicas([2310.0], bounds), service="bet-placement",
    ...     metric="req/s", peak_at=pd.Timestamp("2026-11-28 19:50", tz="UTC"),
    ...     lead_time=pd.Timedelta("5min"), bounds=bounds, model="seasonal_naive")
    >>> print(text.replace(", ", ",\n"))
    bet-placement: forecast p95 2,310 req/s by 19:50 UTC (seasonal_naive),
    100 req/s per replica at 70% → 33 replicas,
    ready within 5 min lead time
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from actions.capacity import CapacityBounds, ReplicaPlan

__all__ = ["describe_plan"]


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:,.3g}"


def _duration(td: timedelta) -> str:
    seconds = int(round(pd.Timedelta(td).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    rest = seconds % 60
    parts = ([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes else [])
    return " ".join(parts + ([f"{rest} s"] if rest else []))


def _replicas(n: int) -> str:
    return f"{n} replica" + ("" if n == 1 else "s")


def describe_plan(
    plan: ReplicaPlan,
    *,
    service: str,
    metric: str,
    peak_at: datetime,
    lead_time: timedelta,
    bounds: CapacityBounds,
    model: str,
    level: float = 0.9,
) -> str:
    """Describe ``plan`` in one sentence for an SRE (recommendation ``reason``, alert text).

    Args:
        plan: the plan from :func:`~actions.capacity.plan_replicas`.
        service: the service name, first word of the sentence.
        metric: the unit the forecast is in, printed after numbers (e.g. ``"req/s"``).
        peak_at: when the forecast peak is expected (shown in UTC).
        lead_time: how long new replicas take to be ready.
        bounds: the capacity bounds the plan was made with.
        model: the forecaster that produced the forecast.
        level: the central interval level of the forecast; its upper bound is the
            ``(1 + level) / 2`` quantile, so 0.9 reads "p95".

    Example:
        >>> import pandas as pd
        >>> from actions.capacity import CapacityBounds, plan_replicas
        >>> b = CapacityBounds(100.0, max_replicas=40)
        >>> describe_plan(plan_replicas([3310.0], b), service="bet-placement", metric="req/s",
        ...     peak_at=pd.Timestamp("2026-11-28 19:50", tz="UTC"), lead_time=pd.Timedelta("5min"),
        ...     bounds=b, model="seasonal_naive").split("; ")[1]
        'demand exceeds max 40 replicas by 510 req/s: throttle advised'
    """
    at = pd.Timestamp(peak_at)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    quantile = f"p{(1 + level) / 2 * 100:g}"
    text = (
        f"{service}: forecast {quantile} {_num(plan.forecast_peak)} {metric} by "
        f"{at:%H:%M} UTC ({model}), {_num(bounds.capacity_per_replica)} {metric} per replica at "
        f"{bounds.target_utilization * 100:g}% → {_replicas(plan.recommended_replicas)}, ready "
        f"within {_duration(lead_time)} lead time"
    )
    clauses = []
    if plan.driven_by_current:
        clauses.append(
            f"current load needs {_replicas(plan.needed_for_current or 0)}, more than the forecast"
        )
    if plan.clamped == "max":
        clauses.append(
            f"demand exceeds max {_replicas(bounds.max_replicas)} by {_num(plan.unserved_rps)} "
            f"{metric}: throttle advised"
        )
    elif plan.clamped == "min":
        needed = max(plan.needed_for_forecast, plan.needed_for_current or 0)
        clauses.append(f"held at min {_replicas(bounds.min_replicas)} (load needs {needed})")
    return "; ".join([text, *clauses])
