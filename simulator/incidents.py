"""Ground-truth incidents: generated per UTC day from the seed, then applied to expected values.

Kinds (shapes from ``shared/BETTING_TRAFFIC.md``):

- ``payment_outage``: a deposit provider fails; failed/attempted deposits jumps from the normal
  ~15 % to 60-90 % [PAY], and retries push attempts up a little.
- ``bot_attack``: bots hammer one market; bets x N with no matching odds-api traffic [BOTS].
- ``ddos``: requests x N on odds-api or bet-placement; latency climbs, errors rise, the service
  recovers and the cycle repeats [DDOS]; bets/requests conversion collapses.
- ``latency_degradation``: p95 latency drifts up over an hour or more, then recovers; availability
  falls with it (GN 2015: journey time x2 while availability fell from 98 % to 86 %) [TT15].
- ``metric_silence``: one series reports nothing for the window (rows are absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np

from simulator.calendar import day_label
from simulator.config import INCIDENT_KINDS, METRICS_BY_KIND, ServiceSpec, SimulatorConfig
from simulator.shapes import trapezoid

__all__ = ["Incident", "apply_incidents", "day_incidents"]

# kind -> (min, max) duration in minutes
_DURATION = {
    "payment_outage": (20, 120),
    "bot_attack": (15, 90),
    "ddos": (30, 180),
    "latency_degradation": (60, 240),
    "metric_silence": (10, 60),
}


@dataclass(frozen=True)
class Incident:
    """One labelled incident (times in minutes since 00:00 UTC of ``day``)."""

    incident_id: str
    kind: str
    service: str
    metrics: tuple[str, ...]
    day: int
    start: float
    duration: float
    magnitude: float
    description: str

    @property
    def unique_ids(self) -> tuple[str, ...]:
        """Affected series ids."""
        return tuple(f"{self.service}:{m}" for m in self.metrics)


T = TypeVar("T")


def _degradation_errors(magnitude: float) -> float:
    """Extra error probability at the peak of a latency degradation of ``magnitude`` (x p95).

    [TT15]: journey time about x2 (11 -> 21 s at 16:00) while availability over the hour before
    (15:00-16:00) was 86 % against 98 % for the month: 12 points of failed journeys *on average
    over the hour* in which latency doubled. A linear ramp (the shape here) averages half its
    peak, so the peak is 24 points for the doubling: 0.24 per x1 of extra latency (26 with the
    exact x1.9, rounded down). An earlier version read the 12 points as the peak, which gave the
    hour 6 points, half the source's.
    """
    return 0.24 * (magnitude - 1.0)


def _pick(u: float, items: Sequence[T]) -> T | None:
    return items[min(int(u * len(items)), len(items) - 1)] if items else None


@lru_cache(maxsize=256)
def day_incidents(config: SimulatorConfig, day: int) -> tuple[Incident, ...]:
    """Incidents starting on UTC ``day`` (days since 1970-01-01), in start order."""
    if config.incidents_per_day <= 0:
        return ()
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, day, 3]))
    n = int(rng.poisson(config.incidents_per_day))
    weights = np.asarray(config.incident_weights, dtype=float)
    weights = weights / weights.sum()
    by_kind: dict[str, list[ServiceSpec]] = {}
    for service in config.services:
        by_kind.setdefault(service.kind, []).append(service)
    out: list[Incident] = []
    for _ in range(n):
        # Always draw the same numbers per incident so one missing service kind does not shift
        # every later incident of the day.
        kind = INCIDENT_KINDS[int(rng.choice(len(INCIDENT_KINDS), p=weights))]
        start = float(rng.integers(6 * 60, 23 * 60))
        lo, hi = _DURATION[kind]
        duration = float(rng.integers(lo, hi + 1))
        u_service, u_metric, u_mag = rng.random(3)
        spec: ServiceSpec | None
        if kind == "payment_outage":
            spec = _pick(u_service, by_kind.get("payments", []))
            metrics: tuple[str, ...] = ("deposits_per_second", "deposit_failures_per_second")
            magnitude = float(np.round(0.6 + 0.3 * u_mag, 3))
            text = f"deposit provider outage: failure ratio ~{magnitude:.0%}"
        elif kind == "bot_attack":
            spec = _pick(u_service, by_kind.get("bet-placement", []))
            metrics = ("requests_per_second", "bets_per_second", "stake_per_second")
            magnitude = float(np.round(3.0 + 7.0 * u_mag, 2))
            text = f"bot attack on one market: bets x{magnitude:.1f}, odds-api traffic unchanged"
        elif kind == "ddos":
            targets = by_kind.get("odds-api", []) + by_kind.get("bet-placement", [])
            spec = _pick(u_service, targets)
            metrics = ("requests_per_second", "error_ratio", "latency_p95_seconds")
            if spec is not None and spec.kind == "bet-placement":
                metrics = metrics[:1] + ("bets_per_second", "stake_per_second") + metrics[1:]
            magnitude = float(np.round(3.0 + 5.0 * u_mag, 2))
            text = f"DDoS: requests x{magnitude:.1f}, latency and errors up in waves"
        elif kind == "latency_degradation":
            spec = _pick(u_service, list(config.services))
            metrics = ("latency_p95_seconds", "error_ratio")
            magnitude = float(np.round(2.0 + 2.0 * u_mag, 2))
            text = (f"latency drifts up to x{magnitude:.1f} p95 and errors up to "
                    f"+{_degradation_errors(magnitude):.0%} of requests, then recovers")
        else:
            spec = _pick(u_service, list(config.services))
            metrics = ()
            if spec is not None:
                metrics = (str(_pick(u_metric, METRICS_BY_KIND[spec.kind])),)
            magnitude = 0.0
            text = "series stops reporting (no samples)"
        if spec is None:
            continue
        out.append(
            Incident(
                incident_id=f"inc-{day_label(day)}-{len(out):02d}",
                kind=kind,
                service=spec.name,
                metrics=metrics,
                day=day,
                start=start,
                duration=duration,
                magnitude=float(magnitude),
                description=text,
            )
        )
    return tuple(sorted(out, key=lambda i: (i.start, i.incident_id)))


def apply_incidents(
    exp: dict[str, np.ndarray], incidents: list[tuple[Incident, float]], minutes: np.ndarray
) -> dict[str, np.ndarray]:
    """Modify one service's expected values in place for its incidents; return silence masks.

    Args:
        exp: expected values of one service: count rates by metric name plus the probabilities
            ``p_error``, ``p_deposit_failure``, ``p_login_failure``, the expected latency
            ``latency`` and ``bot_bets`` (extra bets without odds traffic).
        incidents: (incident, start in minutes relative to the rendered day) pairs.
        minutes: the rendered day's grid in minutes since its 00:00 UTC.

    Returns:
        metric name -> boolean mask of grid points to drop (metric silence).
    """
    silent: dict[str, np.ndarray] = {}
    for inc, start in incidents:
        end = start + inc.duration
        if end <= minutes[0] or start > minutes[-1]:
            continue
        window = trapezoid(minutes, start, end, 0.0)
        if inc.kind == "payment_outage":
            p = exp["p_deposit_failure"]
            exp["p_deposit_failure"] = p + (inc.magnitude - p) * window
            # customers retry failed deposits
            exp["deposits_per_second"] = exp["deposits_per_second"] * (1 + 0.3 * window)
        elif inc.kind == "bot_attack":
            extra = (inc.magnitude - 1.0) * exp["bets_per_second"] * window
            exp["bot_bets"] = exp["bot_bets"] + extra
        elif inc.kind == "ddos":
            # waves: ~15 min of attack, 5 min of recovery, repeating [DDOS]
            phase = np.mod(minutes - start, 20.0)
            wave = window * np.where(phase < 15.0, 1.0, 0.25)
            exp["requests_per_second"] = exp["requests_per_second"] * (
                1 + (inc.magnitude - 1.0) * wave
            )
            exp["latency"] = exp["latency"] * (1 + 0.8 * (inc.magnitude - 1.0) * wave)
            exp["p_error"] = np.minimum(exp["p_error"] + 0.25 * wave, 0.95)
            if "bets_per_second" in exp:
                # real customers cannot get through: conversion collapses
                exp["bets_per_second"] = exp["bets_per_second"] * (1 - 0.6 * wave)
        elif inc.kind == "latency_degradation":
            ramp = np.clip((minutes - start) / inc.duration, 0.0, 1.0) * window
            exp["latency"] = exp["latency"] * (1 + (inc.magnitude - 1.0) * ramp)
            # the journeys that time out: availability falls as latency climbs [TT15]
            exp["p_error"] = np.minimum(exp["p_error"] + _degradation_errors(inc.magnitude) * ramp,
                                        0.5)
        elif inc.kind == "metric_silence":
            for metric in inc.metrics:
                mask = window > 0
                silent[metric] = silent[metric] | mask if metric in silent else mask
    return silent
