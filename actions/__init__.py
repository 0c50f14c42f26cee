"""surgecast actions: turn forecasts into replica plans and plain-language reasons.

A leaf package of pure functions: it knows numpy and pandas, never ``surgecast`` or ``models``.

Example:
    >>> plan_replicas([700.0], CapacityBounds(100.0)).recommended_replicas
    10
"""

from actions.alerts import anomaly_alert, dedup_key
from actions.capacity import CapacityBounds, ReplicaPlan, plan_replicas, replicas_for_load
from actions.explain import describe_plan

__all__ = [
    "CapacityBounds",
    "ReplicaPlan",
    "anomaly_alert",
    "dedup_key",
    "describe_plan",
    "plan_replicas",
    "replicas_for_load",
]
