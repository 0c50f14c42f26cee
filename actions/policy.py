"""The lead-time replica policy: price the risk of overload against the cost of a replica.

Given, for every decision, quantiles of the peak load over the lead window
(:mod:`models.forecasting.lead_peak`), the policy picks the quantile ``q`` that minimises

    (1 - q)  +  replica_cost × replicas(q) / typical_replicas

i.e. it buys one more typical-replica's worth of capacity only when that removes at least
``replica_cost`` of overload probability. Where margin is cheap (quiet hours, small relative
noise) it covers a high quantile; at the peak, where one more quantile step costs many
replicas, it settles lower. With a single global quantile the same budget buys fewer overload
minutes (``benchmarks/bench_replay.py`` measures both).

Then the guardrails every recommendation passes (:class:`ScaleGuard`), in this order:

1. never below what the load observed now needs at the target utilisation;
2. missing or stale data never scales down (the previous count is held);
3. ``[min_replicas, max_replicas]``;
4. at most ``max_step_up`` / ``max_step_down`` replicas per decision (0 = unlimited);
5. scale-down stabilisation: the largest candidate of the last ``stabilization`` window
   (Kubernetes HPA's default is 5 minutes), so a brief dip never releases capacity a surge
   will need again;
6. scale-down cooldown (optional): at least ``scale_down_cooldown_s`` between two
   scale-downs, so a slow decline releases capacity in steps an operator can follow.
   Scale-ups are never delayed: a late scale-up is an overload.

Pure functions and one small state machine: numpy only, no ``models`` or ``surgecast``.

Example:
    >>> import numpy as np
    >>> q = np.array([[700.0], [900.0], [1400.0]])        # p50, p90, p99 of the peak
    >>> reps, level, _ = risk_priced_replicas(q, np.array([0.5, 0.9, 0.99]),
    ...     typical_replicas=np.array([10.0]), capacity_per_replica=100.0, replica_cost=0.3)
    >>> int(reps[0]), float(level[0])
    (9, 0.9)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from actions.capacity import CapacityBounds, replicas_for_load

__all__ = ["GuardDecision", "ScaleGuard", "risk_priced_replicas"]

_ROUND_TOL = 1e-9


def risk_priced_replicas(
    quantiles: np.ndarray,
    levels: np.ndarray,
    typical_replicas: np.ndarray,
    capacity_per_replica: float,
    replica_cost: float,
    overload_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per decision, the replica count of the quantile with the best risk/cost balance.

    Args:
        quantiles: ``(len(levels), n)`` peak-load quantiles (NaN = not calibrated yet).
        levels: the quantile levels, increasing, in (0, 1).
        typical_replicas: ``(n,)`` the usual replica count (normalises the cost, so the
            trade-off is the same for a service of 3 or 300 replicas); values < 1 count as 1.
        capacity_per_replica: load one replica serves at 100 % utilisation.
        replica_cost: overload probability one typical-replica-count of capacity must buy.
        overload_weight: ``(n,)`` how much an overload at each decision matters (default 1);
            e.g. higher during a kickoff, when a rejected bet costs most.

    Returns:
        ``(replicas, level, load)``: float arrays (the count, the chosen quantile level and its
        load), NaN where a decision has no calibrated quantile.

    Raises:
        ValueError: shapes disagree, or a parameter is out of range.
    """
    q = np.asarray(quantiles, dtype=float)
    lv = np.asarray(levels, dtype=float)
    scale = np.asarray(typical_replicas, dtype=float)
    if q.ndim != 2 or q.shape[0] != lv.size or scale.shape != (q.shape[1],):
        raise ValueError(
            f"quantiles must be (levels, n) = ({lv.size}, {scale.size}), got {q.shape}"
        )
    if not (math.isfinite(capacity_per_replica) and capacity_per_replica > 0):
        raise ValueError(f"capacity_per_replica must be positive, got {capacity_per_replica!r}")
    if not (math.isfinite(replica_cost) and replica_cost > 0):
        raise ValueError(f"replica_cost must be positive, got {replica_cost!r}")
    with np.errstate(invalid="ignore"):
        reps = np.ceil(np.maximum(q, 0.0) / capacity_per_replica - _ROUND_TOL)
        reps = np.where(q > 0, np.maximum(reps, 1.0), reps)
        scale = np.where(np.isfinite(scale), np.maximum(scale, 1.0), 1.0)
        weight = (
            np.ones(q.shape[1]) if overload_weight is None else np.asarray(overload_weight, float)
        )
        objective = weight[None, :] * (1.0 - lv)[:, None] + replica_cost * reps / scale[None, :]
    objective = np.where(np.isfinite(objective), objective, np.inf)
    best = np.argmin(objective, axis=0)
    cols = np.arange(q.shape[1])
    calibrated = np.isfinite(objective[best, cols])
    chosen = np.where(calibrated, reps[best, cols], np.nan)
    return (
        chosen,
        np.where(calibrated, lv[best], np.nan),
        np.where(calibrated, q[best, cols], np.nan),
    )


@dataclass(frozen=True)
class GuardDecision:
    """One guarded recommendation and why it is what it is.

    Attributes:
        replicas: the count to run.
        candidate: what the forecast asked for, before the guardrails (``None`` if nothing).
        rule: the guardrail that decided, or ``"forecast"`` when none changed the candidate:
            ``observed_load``, ``hold_missing_data``, ``min_replicas``, ``max_replicas``,
            ``max_step_up``, ``max_step_down``, ``stabilization``, ``cooldown``.
    """

    replicas: int
    candidate: int | None
    rule: str


@dataclass
class ScaleGuard:
    """Guardrails between a candidate replica count and the recommendation (stateful).

    Feed decisions in time order with :meth:`decide`; the guard remembers the recent candidates
    (for stabilisation) and the last recommendation (for step limits and holds).

    Example:
        >>> g = ScaleGuard(CapacityBounds(100.0, max_replicas=50), stabilization_s=300)
        >>> [g.decide(t, c, observed_load=None, data_fresh=True).replicas
        ...  for t, c in [(0, 10), (60, 4), (400, 4)]]
        [10, 10, 4]
    """

    bounds: CapacityBounds
    stabilization_s: float = 300.0
    max_step_up: int = 0
    max_step_down: int = 0
    floor_utilization: float | None = None
    scale_down_cooldown_s: float = 0.0
    _window: deque[tuple[float, int]] = field(default_factory=deque, init=False, repr=False)
    _last: int | None = field(default=None, init=False, repr=False)
    _last_down_at: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.stabilization_s) and self.stabilization_s >= 0):
            raise ValueError(f"stabilization_s must be >= 0, got {self.stabilization_s!r}")
        for name in ("max_step_up", "max_step_down"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be >= 0 (0 = unlimited), got {getattr(self, name)!r}"
                )

    @property
    def last(self) -> int | None:
        """The last recommendation, ``None`` before the first."""
        return self._last

    def seed(self, at_s: float, replicas: int) -> None:
        """Remember a recommendation made before this guard existed (e.g. read back from the
        store after a restart), so stabilisation and step limits carry over."""
        self._stabilise(at_s, int(replicas))
        self._last = int(replicas)

    def decide(
        self,
        at_s: float,
        candidate: float | None,
        observed_load: float | None,
        data_fresh: bool,
    ) -> GuardDecision:
        """The recommendation at time ``at_s`` (seconds, increasing) for ``candidate``.

        Args:
            at_s: decision time in seconds.
            candidate: replicas the forecast asks for; ``None`` or NaN when it has nothing.
            observed_load: the load observed now, when known.
            data_fresh: the newest data is recent enough to act on; when ``False`` the guard
                never scales down.
        """
        b = self.bounds
        rule = "forecast"
        asked = int(candidate) if candidate is not None and math.isfinite(candidate) else None
        want = asked
        if observed_load is not None and math.isfinite(observed_load):
            u = self.floor_utilization or b.target_utilization
            needed = replicas_for_load(observed_load, b.capacity_per_replica, u)
            if want is None or needed > want:
                want, rule = needed, "observed_load"
        if want is None:
            want = self._last if self._last is not None else b.min_replicas
            rule = "hold_missing_data"
        if not data_fresh and self._last is not None and want < self._last:
            want, rule = self._last, "hold_missing_data"
        if want < b.min_replicas:
            want, rule = b.min_replicas, "min_replicas"
        if want > b.max_replicas:
            want, rule = b.max_replicas, "max_replicas"
        if self._last is not None:
            if self.max_step_up and want > self._last + self.max_step_up:
                want, rule = self._last + self.max_step_up, "max_step_up"
            if self.max_step_down and want < self._last - self.max_step_down:
                want, rule = self._last - self.max_step_down, "max_step_down"
        final = self._stabilise(at_s, want)
        if final > want:
            rule = "stabilization"
        if (
            self._last is not None
            and final < self._last
            and self._last_down_at is not None
            and at_s - self._last_down_at < self.scale_down_cooldown_s
        ):
            final, rule = self._last, "cooldown"
        if self._last is not None and final < self._last:
            self._last_down_at = at_s
        self._last = final
        return GuardDecision(replicas=final, candidate=asked, rule=rule)

    def _stabilise(self, at_s: float, want: int) -> int:
        """The largest count wanted within the window (a monotone deque: O(1) amortised)."""
        if self.stabilization_s <= 0:
            return want
        window = self._window
        while window and window[-1][1] <= want:
            window.pop()
        window.append((at_s, want))
        while window[0][0] < at_s - self.stabilization_s:
            window.popleft()
        return window[0][1]
