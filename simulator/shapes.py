"""Pure, vectorised shape functions of time used to build the expected rates.

Times are floats (hours or minutes as named). Every function is deterministic and allocation-
light so a whole day of many services renders in milliseconds. Keys in brackets refer to
``shared/BETTING_TRAFFIC.md`` §2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "daily_profile",
    "inplay_profile",
    "post_wave",
    "prematch_ramp",
    "seasonal_factor",
    "spike_train",
    "trapezoid",
    "weekly_factor",
]

FloatArray = np.ndarray

# Hour-of-day (UTC) anchors of betting activity, 1.0 = 15:00 on a quiet weekday. Low at night,
# building through the day, evening peak around 20:00-21:00 (evening games draw more than
# midday ones [WPWC]).
_DAILY_HOURS = np.array([0, 2, 4, 6, 8, 10, 12, 14, 15, 17, 19, 20.5, 22, 23.5])
_DAILY_LEVEL = np.array(
    [0.55, 0.25, 0.14, 0.18, 0.38, 0.60, 0.80, 0.95, 1.0, 1.15, 1.45, 1.6, 1.25, 0.75]
)


def daily_profile(hour_of_day: FloatArray) -> FloatArray:
    """Relative betting activity by UTC hour of day (periodic, 1.0 at 15:00)."""
    return np.interp(hour_of_day, _DAILY_HOURS, _DAILY_LEVEL, period=24.0)


def weekly_factor(hours_since_monday: FloatArray, weights: FloatArray) -> FloatArray:
    """Day-of-week multiplier, blended over the 04:00 UTC night trough.

    A "betting day" runs 04:00-04:00: switching the weekday level at midnight would put a step
    into Friday/Saturday night traffic, so the level moves linearly between 01:00 and 07:00.

    Args:
        hours_since_monday: hours since Monday 00:00 UTC (any real, taken modulo 168).
        weights: 7 multipliers, Monday..Sunday.
    """
    w = np.asarray(weights, dtype=float)
    k = np.arange(7, dtype=float)
    xp = np.concatenate([24 * k + 7.0, 24 * k + 25.0])
    fp = np.concatenate([w, w])
    order = np.argsort(xp)
    return np.interp(hours_since_monday, xp[order], fp[order], period=168.0)


def seasonal_factor(
    days_since_epoch: FloatArray, trend_per_year: float, amplitude: float, peak_doy: float = 320.0
) -> FloatArray:
    """Slow drivers: exponential growth times an annual cosine peaking at ``peak_doy``.

    Args:
        days_since_epoch: days since the trend epoch (fractional).
        trend_per_year: yearly growth rate (0.08 = +8 % a year).
        amplitude: annual cycle amplitude (relative).
        peak_doy: day of the year (counted from the epoch) of the seasonal peak; November by
            default since Q4 carries the most handle [EKG].
    """
    years = days_since_epoch / 365.25
    growth = np.exp(np.log1p(trend_per_year) * years)
    season = 1.0 + amplitude * np.cos(2 * np.pi * (days_since_epoch - peak_doy) / 365.25)
    return growth * season


def prematch_ramp(
    minutes_to_kickoff: FloatArray, tau: float, window: float, peak_offset: float
) -> FloatArray:
    """Pre-match bets shape, 1.0 at the peak ``peak_offset`` minutes before kickoff.

    Exponential build-up with time constant ``tau`` over the last ``window`` minutes [GBG],
    flat at the peak until kickoff [WPUCL], zero once the match starts (in-play takes over).

    Args:
        minutes_to_kickoff: kickoff time minus t, in minutes (positive before kickoff).
    """
    m = np.asarray(minutes_to_kickoff, dtype=float)
    rising = np.exp(-(m - peak_offset) / tau)
    out = np.where(m > peak_offset, rising, 1.0)
    return np.where((m > 0) & (m <= window), out, 0.0)


def inplay_profile(
    minutes_since_kickoff: FloatArray, sport: str, duration: float, level: float
) -> FloatArray:
    """In-play bets shape relative to the pre-match peak (zero outside the match).

    The in-play base is ``level / 2``; with a goal spike (x2-4, see :func:`spike_train`) the
    in-play peak before half-time reaches about ``level`` x the pre-match peak [WPUCL].
    Football: rises to the base by half-time, dips in the break, a second-half plateau.
    Basketball: two halves with a long break. Tennis and others: flat.

    Args:
        minutes_since_kickoff: t minus kickoff, minutes.
        sport: "football", "basketball", "tennis", ...
        duration: kickoff to final whistle, minutes.
        level: in-play peak relative to the pre-match peak.
    """
    m = np.asarray(minutes_since_kickoff, dtype=float)
    inside = (m >= 0) & (m < duration)
    # the base is half the peak: a goal spike (x2-4) on it reaches ``level`` and above
    base = 0.5 * level
    if sport == "football":
        ht_start, ht_end = 47.0, 62.0
        first = base * (0.6 + 0.4 * np.clip(m / 45.0, 0, 1))
        second = base * (0.8 + 0.2 * np.clip((m - ht_end) / (duration - ht_end), 0, 1))
        shape = np.where(m < ht_start, first, np.where(m < ht_end, 0.3 * base, second))
    elif sport == "basketball":
        half = duration / 2
        shape = np.where(np.abs(m - half) < 8.0, 0.4 * base, base)
    else:
        shape = np.full_like(m, 0.8 * base)
    return np.where(inside, shape, 0.0)


def spike_train(
    minutes: FloatArray,
    times: FloatArray | Sequence[float],
    multipliers: FloatArray | Sequence[float],
    taus: FloatArray | Sequence[float],
) -> FloatArray:
    """Sum of decaying spikes: ``(mult - 1) * exp(-(t - t_k) / tau_k)`` for ``t >= t_k``.

    Used for goals: after the bet stop the in-play rate jumps x2-4 and decays over 3-5 min
    [GC][DELAY]. Multiply the result by the in-play shape to get the extra rate.
    """
    m = np.asarray(minutes, dtype=float)[:, None]
    t = np.asarray(times, dtype=float)[None, :]
    if t.size == 0:
        return np.zeros(m.shape[0])
    dt = m - t
    safe = np.maximum(dt, 0.0)
    out = (np.asarray(multipliers)[None, :] - 1.0) * np.exp(-safe / np.asarray(taus)[None, :])
    return np.where(dt >= 0, out, 0.0).sum(axis=1)


def post_wave(minutes_since_end: FloatArray, tau: float = 5.0) -> FloatArray:
    """Post-match wave (settlement, logins, withdrawals) decaying within ~5 min [PPHP][KWC]."""
    m = np.asarray(minutes_since_end, dtype=float)
    return np.where(m >= 0, np.exp(-np.maximum(m, 0.0) / tau), 0.0)


def trapezoid(minutes: FloatArray, start: float, end: float, edge: float) -> FloatArray:
    """1 inside ``[start, end)``, linear ramps of ``edge`` minutes inside both ends, 0 outside.

    ``edge <= 0`` gives a sharp window (1 at ``start`` already).
    """
    m = np.asarray(minutes, dtype=float)
    inside = (m >= start) & (m < end)
    if edge <= 0:
        return inside.astype(float)
    up = np.clip((m - start) / edge, 0.0, 1.0)
    down = np.clip((end - m) / edge, 0.0, 1.0)
    return np.where(inside, np.minimum(up, down), 0.0)
