"""Configuration of the simulator: services, their metric catalogue and the traffic drivers.

Plain frozen dataclasses (no pydantic) so the simulator stays a dependency-light leaf package
and a config can be hashed and compared. Shape keys in brackets ([TRU], [GBG] ...) point to
``shared/BETTING_TRAFFIC.md`` §2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import pandas as pd

__all__ = [
    "DEFAULT_COMPETITION_UPLIFT",
    "DEFAULT_SERVICES",
    "METRICS_BY_KIND",
    "METRIC_UNITS",
    "INCIDENT_KINDS",
    "ServiceKind",
    "ServiceSpec",
    "SimulatorConfig",
]

ServiceKind = Literal["odds-api", "bet-placement", "account", "payments"]

# Ordered metric catalogue per service kind; unique_id = f"{service}:{metric}".
METRICS_BY_KIND: dict[str, tuple[str, ...]] = {
    "odds-api": ("requests_per_second", "error_ratio", "latency_p95_seconds"),
    "bet-placement": (
        "requests_per_second",
        "bets_per_second",
        "stake_per_second",
        "error_ratio",
        "latency_p95_seconds",
    ),
    "account": (
        "requests_per_second",
        "logins_per_second",
        "login_failures_per_second",
        "error_ratio",
        "latency_p95_seconds",
    ),
    "payments": (
        "requests_per_second",
        "deposits_per_second",
        "deposit_failures_per_second",
        "withdrawals_per_second",
        "error_ratio",
        "latency_p95_seconds",
    ),
}

# metric -> (unit, kind) where kind is "rate" | "ratio" | "latency"
METRIC_UNITS: dict[str, tuple[str, str]] = {
    "requests_per_second": ("requests/s", "rate"),
    "bets_per_second": ("bets/s", "rate"),
    "stake_per_second": ("currency/s", "rate"),
    "logins_per_second": ("logins/s", "rate"),
    "login_failures_per_second": ("logins/s", "rate"),
    "deposits_per_second": ("deposits/s", "rate"),
    "deposit_failures_per_second": ("deposits/s", "rate"),
    "withdrawals_per_second": ("withdrawals/s", "rate"),
    "error_ratio": ("ratio", "ratio"),
    "latency_p95_seconds": ("seconds", "latency"),
}

INCIDENT_KINDS = (
    "payment_outage",
    "bot_attack",
    "ddos",
    "latency_degradation",
    "metric_silence",
)


@dataclass(frozen=True)
class ServiceSpec:
    """One simulated service.

    Args:
        name: service label, e.g. ``"bet-placement"`` or ``"svc-001"``; must not contain ``:``.
        kind: which metric template it follows.
        scale: multiplier on every count/rate metric (ratios and latencies are unaffected).
    """

    name: str
    kind: ServiceKind
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in ':,"\n\\'):
            raise ValueError(
                f"ServiceSpec.name {self.name!r} is invalid; use a non-empty name without "
                "':', ',', '\"', '\\' or newlines (it becomes part of unique_id, of the "
                "comma-separated incident labels and of a Prometheus label)"
            )
        if self.kind not in METRICS_BY_KIND:
            raise ValueError(
                f"ServiceSpec.kind {self.kind!r} is unknown; use one of {sorted(METRICS_BY_KIND)}"
            )
        if not self.scale > 0:
            raise ValueError(f"ServiceSpec.scale must be > 0, got {self.scale}")


DEFAULT_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("odds-api", "odds-api"),
    ServiceSpec("bet-placement", "bet-placement"),
    ServiceSpec("account", "account"),
    ServiceSpec("payments", "payments"),
)

# Surge multiplier per competition on top of ``kickoff_uplift`` (football competitions
# dominate European handle; Champions League nights are the big midweek peaks [WPUCL]).
DEFAULT_COMPETITION_UPLIFT: tuple[tuple[str, float], ...] = (
    ("Champions League", 1.5),
    ("Premier League", 1.2),
    ("Europa League", 1.0),
    ("Conference League", 0.8),
    ("La Liga", 0.9),
    ("Serie A", 0.9),
    ("Bundesliga", 0.9),
    ("Ligue 1", 0.8),
    ("Championship", 0.8),
    ("ATP Tour", 0.7),
    ("WTA Tour", 0.6),
    ("NBA", 0.7),
    ("EuroLeague", 0.6),
)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the simulated values depend on (with the seed and the time, nothing else).

    Rates are given for a service of ``scale=1``; see :mod:`simulator` for the resulting scale.

    Args:
        seed: master seed; same seed and config give the same values.
        step: grid step as a pandas offset alias (``"1min"``, ``"15s"``, ``"5min"``); must divide
            a day.
        services: the services to simulate.
        base_bets_per_second: bets/s on a quiet weekday afternoon (15:00 UTC), no fixtures.
        trend_per_year: slow exponential growth of all traffic, relative to ``trend_epoch``.
        trend_epoch: ISO date where the trend factor is 1.
        season_amplitude: annual cycle amplitude (peak in November, US handle Q4 high [EKG]).
        weekly_bets: Monday..Sunday multipliers on bets and requests.
        weekend_deposit_factor: Sat/Sun multiplier on deposit counts ([TRU]: x1.4).
        kickoff_uplift: bets multiplier at the pre-match peak (T-2 min) of an event of
            importance 1 in a competition with multiplier 1.
        competition_uplift: per-competition multipliers on ``kickoff_uplift - 1``.
        ramp_tau_minutes: pre-match exponential ramp time constant ([GBG]: 10-20 min).
        ramp_window_minutes: the ramp starts this long before kickoff ([GBG]: 60-75 min).
        peak_offset_minutes: pre-match peak this long before kickoff ([WPUCL]: T-2 min).
        inplay_level: in-play peak before half-time relative to the pre-match peak ([WPUCL] 0.65);
            the in-play base is half of it, goal spikes lift it to about this level.
        goal_multiplier: in-play rate multiplier range after a goal ([GC]/[est]: x2-4).
        odds_reads_per_bet: odds-api reads per bet ([BF07]: ~30).
        deposit_failure_ratio: normal failed/attempted deposits ([PAY]: 10-25 % blended).
        login_failure_ratio: normal failed/attempted logins.
        promotions_per_day: mean promotions per day.
        incidents_per_day: mean incidents per day (0 disables them).
        incident_weights: relative frequency of each kind in ``INCIDENT_KINDS`` order.
        count_dispersion: negative-binomial shape k; the extra-Poisson CV is ``1/sqrt(k)``.
        cache_days: how many generated days to keep (bounded LRU).
    """

    seed: int = 7
    step: str = "1min"
    services: tuple[ServiceSpec, ...] = DEFAULT_SERVICES
    base_bets_per_second: float = 20.0
    trend_per_year: float = 0.08
    trend_epoch: str = "2026-01-01"
    season_amplitude: float = 0.1
    weekly_bets: tuple[float, ...] = (0.95, 0.92, 0.95, 0.97, 1.05, 1.3, 1.2)
    weekend_deposit_factor: float = 1.4
    kickoff_uplift: float = 4.0
    competition_uplift: tuple[tuple[str, float], ...] = DEFAULT_COMPETITION_UPLIFT
    ramp_tau_minutes: float = 15.0
    ramp_window_minutes: float = 75.0
    peak_offset_minutes: float = 2.0
    inplay_level: float = 0.65
    goal_multiplier: tuple[float, float] = (2.0, 4.0)
    odds_reads_per_bet: float = 30.0
    deposit_failure_ratio: float = 0.15
    login_failure_ratio: float = 0.04
    promotions_per_day: float = 0.15
    incidents_per_day: float = 0.33
    incident_weights: tuple[float, ...] = (0.25, 0.2, 0.15, 0.25, 0.15)
    count_dispersion: float = 2500.0
    cache_days: int = 16

    def __post_init__(self) -> None:
        try:
            step = pd.Timedelta(self.step)
        except ValueError as exc:
            raise ValueError(
                f"SimulatorConfig.step {self.step!r} is not a duration: {exc}"
            ) from exc
        seconds = step.total_seconds()
        if seconds < 1 or seconds != int(seconds) or 86400 % int(seconds):
            raise ValueError(
                f"SimulatorConfig.step {self.step!r} must be a whole number of seconds that "
                "divides one day, e.g. '15s', '1min', '5min', '1h'"
            )
        if self.seed < 0:
            raise ValueError(f"SimulatorConfig.seed must be >= 0, got {self.seed}")
        if not self.services:
            raise ValueError("SimulatorConfig.services is empty; give at least one ServiceSpec")
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError("SimulatorConfig.services has duplicate service names")
        if len(self.weekly_bets) != 7:
            raise ValueError("SimulatorConfig.weekly_bets needs 7 values (Monday..Sunday)")
        if len(self.incident_weights) != len(INCIDENT_KINDS):
            raise ValueError(
                f"SimulatorConfig.incident_weights needs {len(INCIDENT_KINDS)} values, "
                f"one per kind in {INCIDENT_KINDS}"
            )
        if self.incidents_per_day < 0 or self.promotions_per_day < 0:
            raise ValueError("incidents_per_day and promotions_per_day must be >= 0")
        if self.kickoff_uplift < 1:
            raise ValueError(f"kickoff_uplift is a multiplier >= 1, got {self.kickoff_uplift}")
        if self.cache_days < 1:
            raise ValueError("cache_days must be >= 1")

    @cached_property
    def step_seconds(self) -> int:
        """The grid step in whole seconds."""
        return int(pd.Timedelta(self.step).total_seconds())

    def competition_factor(self, competition: str) -> float:
        """Surge multiplier for ``competition`` (1.0 when not listed)."""
        return dict(self.competition_uplift).get(competition, 1.0)

    def event_uplift(self, competition: str, importance: float) -> float:
        """Peak bets multiplier of one event: ``1 + (kickoff_uplift - 1) * factor * importance``."""
        return 1.0 + (self.kickoff_uplift - 1.0) * self.competition_factor(competition) * importance
