"""Render one UTC day: drivers -> per-kind expected values -> incidents -> count noise.

Everything a day's values depend on is (config, day): the day's own RNGs are seeded from
``(seed, day, ...)`` and the events of the neighbouring days that reach into it (NBA ramps before
midnight, matches running past it, incidents spilling over) are regenerated from their own
seeds. Keys in brackets refer to ``shared/BETTING_TRAFFIC.md`` §2.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from simulator.calendar import Fixture, day_fixtures
from simulator.config import METRICS_BY_KIND, ServiceSpec, SimulatorConfig
from simulator.incidents import Incident, apply_incidents, day_incidents
from simulator.shapes import (
    daily_profile,
    inplay_profile,
    post_wave,
    prematch_ramp,
    seasonal_factor,
    spike_train,
    trapezoid,
    weekly_factor,
)

__all__ = ["Drivers", "day_drivers", "expected_for_kind", "render_day", "EPOCH_DAY"]

EPOCH_DAY = 0  # day numbers count from 1970-01-01 (a Thursday)
_MIN_PER_DAY = 1440.0

# Ratios between drivers, per second at scale 1 (see the module docstring of ``simulator``).
DEPOSITS_PER_BET = 0.08  # GN: ~118 deposits/s at ~1.1k bets/s peak [WPGN][OB]
WITHDRAWALS_PER_BET = 0.025
LOGINS_PER_BET = 0.2
MEAN_STAKE = 12.0  # currency units per bet
STAKE_CV = 3.0  # heavy-tailed stakes: a few large bets dominate the sum
BOT_STAKE = 2.0
ACCOUNT_TXNS_PER_BET = 4.0  # 3-6 account transactions per bet [OB]
BASE_ERROR = {"odds-api": 0.002, "bet-placement": 0.004, "account": 0.003, "payments": 0.008}
BASE_LATENCY = {"odds-api": 0.045, "bet-placement": 0.18, "account": 0.11, "payments": 0.65}
CAPACITY_BETS = 25.0  # load index 1 at 25 x the quiet-afternoon bet rate


@dataclass(frozen=True)
class Drivers:
    """Platform-wide expected driver rates of one day (scale 1, per second, no noise)."""

    activity: np.ndarray  # baseline bets/s without events (daily x weekly x slow)
    bets: np.ndarray  # baseline x promotions + event surges
    deposits: np.ndarray
    withdrawals: np.ndarray
    logins: np.ndarray
    post: np.ndarray  # post-match wave in bets/s units (settlement, bet-history views)


def grid_minutes(step_seconds: int) -> np.ndarray:
    """Grid of one day in minutes since 00:00 UTC."""
    n = 86400 // step_seconds
    return np.arange(n, dtype=float) * (step_seconds / 60.0)


def _epoch_offset(config: SimulatorConfig) -> float:
    return float(np.datetime64(config.trend_epoch, "D").astype(np.int64))


def activity(config: SimulatorConfig, abs_days: np.ndarray, deposits: bool = False) -> np.ndarray:
    """Baseline bets/s (or deposit-weighted baseline) at absolute times in days since 1970."""
    frac = np.mod(abs_days, 1.0)
    hours_since_monday = np.mod(abs_days + 3.0, 7.0) * 24.0  # 1970-01-01 was a Thursday
    if deposits:
        w = config.weekend_deposit_factor
        weekly = weekly_factor(hours_since_monday, np.array([1, 1, 1, 1, 1, w, w], dtype=float))
    else:
        weekly = weekly_factor(hours_since_monday, np.asarray(config.weekly_bets, dtype=float))
    slow = seasonal_factor(
        abs_days - _epoch_offset(config), config.trend_per_year, config.season_amplitude
    )
    return config.base_bets_per_second * daily_profile(frac * 24.0) * weekly * slow


def _neighbour_fixtures(config: SimulatorConfig, day: int) -> list[tuple[Fixture, float]]:
    """Fixtures of days d-1..d+1 with kickoff in minutes relative to ``day``'s midnight."""
    out: list[tuple[Fixture, float]] = []
    for d in (day - 1, day, day + 1):
        offset = (d - day) * _MIN_PER_DAY
        out.extend((fx, fx.kickoff + offset) for fx in day_fixtures(config, d))
    return out


def day_drivers(config: SimulatorConfig, day: int, *, events: bool = True) -> Drivers:
    """Expected platform drivers for one day (scale 1). ``events=False`` gives the baseline."""
    minutes = grid_minutes(config.step_seconds)
    abs_days = day + minutes / _MIN_PER_DAY
    act = activity(config, abs_days)
    dep_base = activity(config, abs_days, deposits=True)
    # withdrawals are flat across the week [TRU]
    wd_base = act / weekly_factor(
        np.mod(abs_days + 3.0, 7.0) * 24.0, np.asarray(config.weekly_bets, dtype=float)
    )
    promo = np.zeros_like(minutes)
    bets_x = np.zeros_like(minutes)
    dep_x = np.zeros_like(minutes)
    login_x = np.zeros_like(minutes)
    post = np.zeros_like(minutes)
    if events:
        tau, window, peak = (
            config.ramp_tau_minutes,
            config.ramp_window_minutes,
            config.peak_offset_minutes,
        )
        for fx, t0 in _neighbour_fixtures(config, day):
            end = t0 + fx.duration
            if end + 40.0 < minutes[0] or t0 - window > minutes[-1]:
                continue
            if fx.sport == "promotion":
                promo += (fx.uplift - 1.0) * trapezoid(minutes, t0, end, 20.0)
                continue
            lo = np.searchsorted(minutes, t0 - window)
            hi = np.searchsorted(minutes, end + 40.0)
            m = minutes[lo:hi]
            # amplitude from the baseline at the peak (a scalar): the event's own shape is not
            # bent by the daily profile, and the peak multiplier is exactly ``uplift``
            amp = (fx.uplift - 1.0) * float(
                activity(config, np.array([day + (t0 - peak) / _MIN_PER_DAY]))[0]
            )
            since = m - t0
            inplay = inplay_profile(since, fx.sport, fx.duration, config.inplay_level)
            spikes = spike_train(since, fx.spike_times, fx.spike_mults, fx.spike_taus)
            ramp = prematch_ramp(t0 - m, tau, window, peak)
            bets_x[lo:hi] += amp * (ramp + inplay * (1 + spikes))
            # deposits peak earlier, T-7 min [WPGN]; logins precede betting
            dep_x[lo:hi] += 0.5 * amp * prematch_ramp(t0 - m, tau, window, 7.0)
            login_x[lo:hi] += 0.5 * amp * prematch_ramp(t0 - m, 20.0, window, 10.0)
            post[lo:hi] += amp * post_wave(m - end, 5.0)
    bets = act * (1 + promo) + bets_x
    deposits = DEPOSITS_PER_BET * (dep_base * (1 + promo) + dep_x)
    withdrawals = WITHDRAWALS_PER_BET * wd_base + 0.01 * post
    logins = LOGINS_PER_BET * (act * (1 + 0.5 * promo) + 0.5 * login_x) + 0.1 * post
    return Drivers(act, bets, deposits, withdrawals, logins, post)


def expected_for_kind(kind: str, drv: Drivers, config: SimulatorConfig) -> dict[str, np.ndarray]:
    """Expected values for a service kind at scale 1: count rates plus internal parameters.

    Count rates are keyed by metric name; ``p_error``, ``p_deposit_failure``, ``p_login_failure``
    (probabilities), ``latency`` (seconds) and ``bot_bets`` are inputs to the noise stage.
    """
    load = drv.bets / (CAPACITY_BETS * config.base_bets_per_second)
    # queueing: latency and errors grow with utilisation, sharply near capacity
    lat = BASE_LATENCY[kind] * (1 + 0.35 * load**2)
    p_err = np.minimum(BASE_ERROR[kind] * (1 + 2.0 * load**4), 0.5)
    out: dict[str, np.ndarray] = {"p_error": p_err, "latency": lat}
    if kind == "odds-api":
        out["requests_per_second"] = config.odds_reads_per_bet * drv.bets  # [BF07] ~30:1
    elif kind == "bet-placement":
        out["requests_per_second"] = 2.0 * drv.bets + 0.5 * drv.activity + 0.3 * drv.post
        out["bets_per_second"] = drv.bets
        out["bot_bets"] = np.zeros_like(drv.bets)
    elif kind == "account":
        out["requests_per_second"] = ACCOUNT_TXNS_PER_BET * drv.bets + 3.0 * drv.logins
        out["logins_per_second"] = drv.logins
        out["p_login_failure"] = np.full_like(drv.bets, config.login_failure_ratio)
    elif kind == "payments":
        out["requests_per_second"] = 3.0 * (drv.deposits + drv.withdrawals) + 0.2 * drv.activity
        out["deposits_per_second"] = drv.deposits
        out["withdrawals_per_second"] = drv.withdrawals
        out["p_deposit_failure"] = np.full_like(drv.bets, config.deposit_failure_ratio)
    return out


def _latent(config: SimulatorConfig, day: int, minutes: np.ndarray) -> np.ndarray:
    """Shared slow demand wobble (~4 %), knots every 30 min, continuous across midnight."""
    sigma = 0.04

    def knots(d: int) -> np.ndarray:
        z = np.random.default_rng(np.random.SeedSequence([config.seed, d, 4])).standard_normal(48)
        return np.exp(sigma * z - sigma**2 / 2)

    values = np.append(knots(day), knots(day + 1)[0])
    return np.interp(minutes, np.arange(49) * 30.0, values)


def _counts(rng: np.random.Generator, rate: np.ndarray, step: float, k: float) -> np.ndarray:
    """Negative-binomial counts per step (gamma-Poisson mixture), returned as counts."""
    mean = np.maximum(rate, 0.0) * step
    lam = mean * rng.gamma(k, 1.0 / k, size=mean.shape)
    return rng.poisson(lam).astype(float)


def _render_service(
    spec: ServiceSpec,
    base: dict[str, np.ndarray],
    incidents: list[tuple[Incident, float]],
    config: SimulatorConfig,
    day: int,
    minutes: np.ndarray,
    latent: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Values of one service for one day; ``latent is None`` means noise-free expectations."""
    exp = {
        k: (v * spec.scale if k.endswith("_per_second") or k == "bot_bets" else v.copy())
        for k, v in base.items()
    }
    silent = apply_incidents(exp, incidents, minutes) if incidents else {}
    kind = spec.kind
    if kind == "bet-placement":
        exp["requests_per_second"] = exp["requests_per_second"] + 1.5 * exp["bot_bets"]
        exp["stake_per_second"] = MEAN_STAKE * exp["bets_per_second"] + BOT_STAKE * exp["bot_bets"]
        exp["bets_per_second"] = exp["bets_per_second"] + exp["bot_bets"]
    elif kind == "account":
        exp["login_failures_per_second"] = exp["logins_per_second"] * exp["p_login_failure"]
    elif kind == "payments":
        exp["deposit_failures_per_second"] = exp["deposits_per_second"] * exp["p_deposit_failure"]
    if latent is None:
        out = {m: exp[m] for m in METRICS_BY_KIND[kind] if m.endswith("_per_second")}
        out["error_ratio"] = exp["p_error"]
        out["latency_p95_seconds"] = exp["latency"]
    else:
        out = _noisy(spec, exp, config, day, latent)
    for metric, mask in silent.items():
        out[metric] = np.where(mask, np.nan, out[metric])
    return out


def _noisy(
    spec: ServiceSpec, exp: dict[str, np.ndarray], config: SimulatorConfig, day: int,
    latent: np.ndarray,
) -> dict[str, np.ndarray]:
    """Draw count noise: Poisson/NB on counts per step, binomial failures, noisy p95."""
    step = float(config.step_seconds)
    k = config.count_dispersion
    # per-service stream: adding a service never changes another service's values
    rng = np.random.default_rng(
        np.random.SeedSequence([config.seed, day, 5, zlib.crc32(spec.name.encode())])
    )
    req = _counts(rng, exp["requests_per_second"] * latent, step, k)
    out = {"requests_per_second": req / step}
    if spec.kind == "bet-placement":
        legit = _counts(rng, (exp["bets_per_second"] - exp["bot_bets"]) * latent, step, k)
        bots = rng.poisson(np.maximum(exp["bot_bets"], 0.0) * step).astype(float)
        bets = legit + bots
        # sum of n heavy-tailed stakes ~ gamma with mean n*mu and CV cv/sqrt(n)
        cv2 = STAKE_CV**2
        legit_stake = np.where(
            legit > 0, rng.gamma(np.maximum(legit, 1.0) / cv2, MEAN_STAKE * cv2), 0.0
        )
        out["bets_per_second"] = bets / step
        out["stake_per_second"] = (legit_stake + BOT_STAKE * bots) / step
    elif spec.kind == "account":
        logins = _counts(rng, exp["logins_per_second"] * latent, step, k)
        fails = rng.binomial(logins.astype(np.int64), np.clip(exp["p_login_failure"], 0, 1))
        out["logins_per_second"] = logins / step
        out["login_failures_per_second"] = fails / step
    elif spec.kind == "payments":
        deps = _counts(rng, exp["deposits_per_second"] * latent, step, k)
        fails = rng.binomial(deps.astype(np.int64), np.clip(exp["p_deposit_failure"], 0, 1))
        out["deposits_per_second"] = deps / step
        out["deposit_failures_per_second"] = fails / step
        out["withdrawals_per_second"] = _counts(rng, exp["withdrawals_per_second"], step, k) / step
    errors = rng.binomial(req.astype(np.int64), np.clip(exp["p_error"], 0, 1))
    out["error_ratio"] = np.divide(errors, req, out=np.zeros_like(req), where=req > 0)
    # p95 from n requests: estimation noise shrinks with volume, plus a little jitter
    sigma = 0.03 + 0.6 / np.sqrt(req + 1.0)
    out["latency_p95_seconds"] = exp["latency"] * np.exp(
        sigma * rng.standard_normal(req.shape) - sigma**2 / 2
    )
    return out


def render_day(
    config: SimulatorConfig, day: int, *, noise: bool = True, events: bool = True,
    incidents: bool = True,
) -> np.ndarray:
    """All series of one day as a matrix (series in ``series_ids`` order x grid points).

    Silent points (metric-silence incidents) are NaN.
    """
    minutes = grid_minutes(config.step_seconds)
    drv = day_drivers(config, day, events=events)
    per_kind = {
        kind: expected_for_kind(kind, drv, config) for kind in {s.kind for s in config.services}
    }
    latent = _latent(config, day, minutes) if noise else None
    by_service: dict[str, list[tuple[Incident, float]]] = {}
    if incidents:
        for d in (day - 1, day):
            for inc in day_incidents(config, d):
                by_service.setdefault(inc.service, []).append(
                    (inc, inc.start + (d - day) * _MIN_PER_DAY)
                )
    rows: list[tuple[str, np.ndarray]] = []
    for spec in config.services:
        values = _render_service(
            spec, per_kind[spec.kind], by_service.get(spec.name, []), config, day, minutes, latent
        )
        rows.extend((f"{spec.name}:{m}", values[m]) for m in METRICS_BY_KIND[spec.kind])
    rows.sort(key=lambda r: r[0])
    return np.vstack([r[1] for r in rows])
