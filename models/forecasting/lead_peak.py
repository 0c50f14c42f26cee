"""Causal forecast of the peak load over a lead window, with calibrated quantiles.

A capacity decision taken at row ``i`` of a load series (time ``t_i``) must cover the load until
the *next* decision's replicas are ready, i.e. rows ``i .. i + k`` with ``k = ceil(lead / step)``,
and it knows rows ``< i`` only (the row dated ``t_i`` is the interval that starts now and is not
complete yet). For every row this module forecasts that peak, strictly causally:

* **profile** ``S[j]``: the mean load at the same time of day over the last ``seasons`` days,
  smoothed over ``± smooth_minutes`` (centred, so it only ever reads data at least a day old);
* **level** ``L_i``: an exponentially weighted mean of ``y / shape`` over rows ``< i`` (half-life
  ``level_halflife_minutes``): today's traffic relative to the expected shape;
* **fixtures** (optional calendar): the relative uplift ``E[j]`` of the fixtures around row ``j``
  (below), so ``shape = S × (1 + E)``, and the profile is then built from the *cleaned* load
  ``y / (1 + E)`` so that last week's kickoffs do not leak into today's baseline;
* **peak** ``= L_i × max(shape[j] for j in i .. i + k)``.

**The fixture model.** Every event of the calendar adds, at each minute of its window (a
``fixture_pre_minutes`` betting ramp before kickoff, the match, ``fixture_post_minutes`` after
the final whistle), ``importance × a[competition] × g[sport][phase bin]`` to the relative
uplift: a shape per sport over phase bins (one-minute bins over the last
``fixture_fine_minutes`` before kickoff, where the ramp is steepest, ``fixture_bin_minutes``
bins elsewhere, and one open-ended bin for long matches), scaled by a per-competition amplitude.
Overlapping fixtures add up (a Saturday 15:00 with a dozen kickoffs is a dozen ramps). It only
reads the calendar's ``start, end, sport, competition, importance``: the uplift is learned, never
read. ``g`` and ``a`` are fitted by alternating ridge least squares (``g`` ridge- and
smoothness-penalised towards 0, ``a`` towards 1, so a competition seen rarely gets its sport's
shape) on ``y / (S × B) - 1`` of past rows, ``B`` a slow level (half-life
``baseline_halflife_minutes``). The fit is refitted every ``event_refit_minutes``, and each
refit re-cleans the baseline with the current fit before it (the uplift and the baseline are
estimated together; from one week to the next, how big each evening's fixtures are varies, which
separates them). The fit used from row ``s`` on sees rows ``< s - k - 1`` only.

The peak's **quantiles** are empirical: for every past decision whose window has closed
(rows ``≤ i - k - 1``), the ratio realised peak / forecast peak; at row ``i`` the quantiles of
those ratios over the last ``calibration_days`` scale the point forecast. With a calendar, every
window is put in a **pool** by the phase of the fixture that dominates its forecast peak (none,
pre-match ramp, in play, after the match), and each pool is calibrated on its own past windows:
in-play windows carry the goal spikes no calendar can time, pre-match ones the error of the
ramp's size. Fixture windows also report the extra ``event_levels`` (e.g. p99.9), NaN
elsewhere. Until enough windows have closed the quantiles are NaN (the planner falls back to
its target utilisation).

Causal by construction (every input of row ``i`` ends at row ``i - 1``, the calendar is known in
advance); ``tests/test_replay.py`` checks that truncating the series, or changing its future,
never changes an earlier row, with and without a calendar.

Example:
    >>> import numpy as np, pandas as pd
    >>> ds = pd.date_range("2026-01-01", periods=3 * 288, freq="5min", tz="UTC")
    >>> y = 700 + 300 * np.sin(2 * np.pi * np.arange(ds.size) / 288)
    >>> fc = lead_peak_forecast(ds, y, lead_seconds=300)
    >>> fc.rows_ahead, bool(abs(fc.point[-1] / y[-2:].max() - 1) < 0.02)
    (1, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import FrameError
from models.forecasting.events import normalise_events
from models.forecasting.lead_peak_fixtures import (
    MIN_MULTIPLIER,
    build_fixtures,
    daily_profile,
    fixture_shape,
)

__all__ = [
    "DEFAULT_EVENT_LEVELS",
    "DEFAULT_LEVELS",
    "POOLS",
    "LeadPeakConfig",
    "LeadPeakForecast",
    "lead_peak_forecast",
]

DAY_SECONDS = 86_400
DEFAULT_LEVELS: tuple[float, ...] = (
    0.5,
    0.7,
    0.8,
    0.85,
    0.9,
    0.93,
    0.95,
    0.96,
    0.97,
    0.98,
    0.99,
    0.995,
)
DEFAULT_EVENT_LEVELS: tuple[float, ...] = (0.998, 0.999)
#: calibration pools of a decision window (``LeadPeakForecast.pool``)
POOLS: tuple[str, ...] = ("none", "pre", "live", "post")
_NS_PER_MIN = 60_000_000_000


@dataclass(frozen=True)
class LeadPeakConfig:
    """Knobs of :func:`lead_peak_forecast` (defaults measured in ``benchmarks/bench_replay.py``).

    Attributes:
        seasons: days averaged into the time-of-day profile.
        smooth_minutes: half-width of the profile's smoothing window.
        level_halflife_minutes: half-life of the level's exponential weighting.
        calibration_days: how far back realised/forecast ratios calibrate the quantiles.
        min_calibration: closed windows needed before quantiles are reported.
        event_min_calibration: closed windows of a fixture pool needed before it gets its own
            quantiles (until then it shares everyone's).
        levels: the quantile levels reported, increasing, in (0, 1).
        event_levels: extra levels reported for fixture windows only (NaN elsewhere).
        event_refit_minutes: how often the fixture model is refitted (past rows only).
        event_ridge: ridge penalty of the sport shapes ``g``.
        event_smoothing: penalty on the differences of adjacent phase bins of ``g``.
        competition_ridge: penalty pulling each competition's amplitude ``a`` towards 1.
        baseline_halflife_minutes: half-life of the slow level the fixture uplift is measured
            against.
        event_history_days: how many days of past rows each fixture refit learns from.
        event_share: a window whose forecast peak owes less than this share to fixtures is
            calibrated (and weighted) as an ordinary one.
        fixture_pre_minutes, fixture_fine_minutes, fixture_bin_minutes, fixture_live_minutes,
            fixture_post_minutes: the fixture window and its phase bins (see the module doc).
    """

    seasons: int = 7
    smooth_minutes: float = 10.0
    level_halflife_minutes: float = 20.0
    calibration_days: float = 7.0
    min_calibration: int = 50
    event_min_calibration: int = 30
    levels: tuple[float, ...] = DEFAULT_LEVELS
    event_levels: tuple[float, ...] = DEFAULT_EVENT_LEVELS
    event_refit_minutes: float = 360.0
    event_ridge: float = 1.0
    event_smoothing: float = 3.0
    competition_ridge: float = 3.0
    baseline_halflife_minutes: float = 360.0
    event_history_days: float = 28.0
    event_share: float = 0.05
    fixture_pre_minutes: float = 75.0
    fixture_fine_minutes: float = 20.0
    fixture_bin_minutes: float = 5.0
    fixture_live_minutes: float = 120.0
    fixture_post_minutes: float = 45.0

    def __post_init__(self) -> None:
        if self.seasons < 1:
            raise ValueError(f"seasons must be at least 1, got {self.seasons!r}")
        for name in (
            "smooth_minutes",
            "level_halflife_minutes",
            "calibration_days",
            "event_refit_minutes",
            "event_ridge",
            "event_smoothing",
            "competition_ridge",
            "baseline_halflife_minutes",
            "event_history_days",
            "event_share",
            "fixture_pre_minutes",
            "fixture_fine_minutes",
            "fixture_live_minutes",
            "fixture_post_minutes",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.fixture_bin_minutes) and self.fixture_bin_minutes > 0):
            raise ValueError(f"fixture_bin_minutes must be > 0, got {self.fixture_bin_minutes!r}")
        for name in ("levels", "event_levels"):
            levels = np.asarray(getattr(self, name), dtype=float)
            if (
                (name == "levels" and levels.size == 0)
                or not ((levels > 0) & (levels < 1)).all()
                or (np.diff(levels) <= 0).any()
            ):
                raise ValueError(
                    f"{name} must be increasing values in (0, 1), got {getattr(self, name)!r}"
                )
        if set(self.levels) & set(self.event_levels):
            raise ValueError("event_levels must not repeat a value of levels")

    def all_levels(self) -> np.ndarray:
        """``levels`` and ``event_levels`` together, increasing (the rows of the quantiles)."""
        return np.sort(np.asarray([*self.levels, *self.event_levels], dtype=float))


@dataclass(frozen=True)
class LeadPeakForecast:
    """Per-row forecast of the peak load over ``rows i .. i + rows_ahead``.

    Attributes:
        point: the point forecast of the peak (NaN only before the first observation).
        levels: the quantile levels of ``quantiles``' rows (``levels`` and ``event_levels``).
        quantiles: ``(len(levels), n)`` peak quantiles; NaN while uncalibrated, and for the
            event-only levels outside fixture windows.
        rows_ahead: ``k``: the window is rows ``i .. i + k``.
        step_seconds: the series' step.
        event_multiplier: the fixture uplift at the window's peak, ``1 + E`` (1 without events).
        in_event: whether the window's forecast peak owes at least ``event_share`` to fixtures.
        pool: the window's calibration pool, an index into :data:`POOLS`.
    """

    point: np.ndarray
    levels: np.ndarray
    quantiles: np.ndarray
    rows_ahead: int
    step_seconds: int
    event_multiplier: np.ndarray
    in_event: np.ndarray
    pool: np.ndarray


def _step_seconds(ds: pd.DatetimeIndex) -> int:
    if ds.size < 2:
        raise FrameError("lead_peak_forecast needs at least 2 timestamps")
    diffs = np.diff(ds.asi8)
    if (diffs <= 0).any():
        raise FrameError("timestamps must be strictly increasing (sort and de-duplicate first)")
    step = int(np.median(diffs) // 1_000_000_000)
    if step <= 0:
        raise FrameError("the series' step must be at least one second")
    if (diffs % (step * 1_000_000_000)).any():
        raise FrameError(
            f"timestamps are not on a regular {step}s grid; missing rows are fine, "
            "off-grid rows are not"
        )
    return step


def _forward_max(values: pd.Series, k: int) -> np.ndarray:
    """``max(values[i .. i + k])`` ignoring NaN (NaN if all are)."""
    return values[::-1].rolling(k + 1, min_periods=1).max()[::-1].to_numpy()


def lead_peak_forecast(
    ds: pd.DatetimeIndex | pd.Series | np.ndarray,
    y: np.ndarray | pd.Series,
    lead_seconds: float,
    events: pd.DataFrame | None = None,
    config: LeadPeakConfig | None = None,
) -> LeadPeakForecast:
    """Forecast, for every row, the peak load over the lead window, from earlier rows only.

    Args:
        ds: strictly increasing timestamps on a regular grid (rows may be missing).
        y: the load at each timestamp (≥ 0; NaN = not observed).
        lead_seconds: how long a new replica takes to become ready (the startup delay).
        events: optional fixture calendar (``start, end, sport, competition, importance``);
            it is used when the step tiles a day and the lead is shorter than one.
        config: knobs; defaults when ``None``.

    Raises:
        FrameError: fewer than 2 rows, unsorted or off-grid timestamps, negative values, a
            malformed calendar.
        ValueError: ``lead_seconds`` negative or not finite.
    """
    cfg = config or LeadPeakConfig()
    if not (math.isfinite(lead_seconds) and lead_seconds >= 0):
        raise ValueError(f"lead_seconds must be a finite number >= 0, got {lead_seconds!r}")
    index = pd.DatetimeIndex(pd.to_datetime(ds, utc=True)).as_unit("ns")
    values = np.asarray(y, dtype=float)
    if values.shape != (index.size,):
        raise FrameError(f"ds has {index.size} rows but y has shape {values.shape}")
    if (values[np.isfinite(values)] < 0).any():
        raise FrameError("load values must be >= 0")
    values = np.where(np.isfinite(values), values, np.nan)
    step = _step_seconds(index)
    k = max(math.ceil(lead_seconds / step), 0)
    # Work on the full regular grid (missing rows become NaN, so "a day back" is always
    # `period` rows back) extended k rows past the end: the last decisions' windows reach
    # there, and the profile of those rows is known from the past
    step_ns = step * 1_000_000_000
    rows = ((index.asi8 - index.asi8[0]) // step_ns).astype(np.int64)
    grid = pd.date_range(index[0], periods=int(rows[-1]) + k + 1, freq=pd.Timedelta(seconds=step))
    on_grid = np.full(grid.size, np.nan)
    on_grid[rows] = values
    out = _forecast_grid(grid, on_grid, step, k, events, cfg)
    point, quantiles, event_peak, pool = out
    return LeadPeakForecast(
        point=point[rows],
        levels=cfg.all_levels(),
        quantiles=quantiles[:, rows],
        rows_ahead=k,
        step_seconds=step,
        event_multiplier=event_peak[rows],
        in_event=pool[rows] > 0,
        pool=pool[rows],
    )


def _forecast_grid(
    index: pd.DatetimeIndex,
    values: np.ndarray,
    step: int,
    k: int,
    events: pd.DataFrame | None,
    cfg: LeadPeakConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Point, quantiles (``cfg.all_levels()``), fixture multiplier at the window's peak and
    calibration pool on a regular grid (NaN = no value)."""
    period = round(DAY_SECONDS / step)
    # Profile smoothing reads period - smooth rows back; it must stay before row i - 1 for
    # every j <= i + k, so smooth + k < period
    smooth = min(int(cfg.smooth_minutes * 60 // step), max(period - k - 1, 0))
    tiles = period > k + 1 and DAY_SECONDS % step == 0
    fx = None
    if events is not None and len(events):
        evs = normalise_events(events)  # validates the calendar even when it cannot be used
        fx = build_fixtures(index, evs, step, cfg) if tiles else None
    uplift = np.zeros(values.size)
    if fx is not None:
        profile, uplift, by_phase = fixture_shape(values, fx, period, smooth, k, step, cfg)
    elif tiles:
        profile = daily_profile(values, period, cfg.seasons, smooth)
    else:  # steps that do not tile a day, or a lead of a day or more: no daily profile
        profile = np.full(values.size, np.nan)

    halflife = max(cfg.level_halflife_minutes * 60 / step, 0.5)
    load = pd.Series(values)
    observed_level = load.ewm(halflife=halflife, ignore_na=True).mean().shift(1).to_numpy()
    multiplier = np.maximum(1.0 + uplift, MIN_MULTIPLIER)
    shape = profile * multiplier
    with np.errstate(invalid="ignore", divide="ignore"):
        level = pd.Series(values / shape).ewm(halflife=halflife, ignore_na=True).mean().shift(1)
        point = level.to_numpy() * _forward_max(pd.Series(shape), k)
    fallback = np.fmax(observed_level, load.shift(1).to_numpy())
    point = np.where(np.isfinite(point) & (point >= 0), point, fallback)

    realised = _forward_max(load, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = pd.Series(np.where(point > 0, realised / point, np.nan))
    window = max(int(cfg.calibration_days * DAY_SECONDS // step), cfg.min_calibration)
    levels = cfg.all_levels()
    extra = np.isin(levels, np.asarray(cfg.event_levels, dtype=float))
    multipliers = np.full((levels.size, values.size), np.nan)
    multipliers[~extra] = _calibrate(ratio, window, cfg.min_calibration, levels[~extra], k)
    pool = np.zeros(values.size, dtype=np.int64)
    peak_mult = np.ones(values.size)
    if fx is not None:
        # the window's pool: the phase that adds most to the row of its forecast peak, if
        # fixtures make at least event_share of that row's load
        at_peak = _forward_argmax(shape, k)
        peak_mult = multiplier[at_peak]
        share = uplift[at_peak] / peak_mult
        dominant = np.argmax(by_phase[:, at_peak], axis=0) + 1
        pool = np.where(share >= cfg.event_share, dominant, 0)
        for p in range(1, len(POOLS)):
            if not (pool == p).any():
                continue
            own = _calibrate(ratio.where(pool == p), window, cfg.event_min_calibration, levels, k)
            usable = (pool == p)[None, :] & np.isfinite(own)
            # event-only levels need the pool's own calibration; the others fall back to all
            multipliers = np.where(usable, own, multipliers)
    quantiles = point[None, :] * multipliers
    return point, quantiles, peak_mult, pool


def _forward_argmax(values: np.ndarray, k: int) -> np.ndarray:
    """Index of the first maximum of ``values[i .. i + k]`` (NaN counts as lowest)."""
    n = values.size
    padded = np.concatenate([np.where(np.isfinite(values), values, -np.inf), np.full(k, -np.inf)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, k + 1)
    return np.minimum(np.arange(n) + np.argmax(windows, axis=1), n - 1)


def _calibrate(
    ratio: pd.Series, window: int, min_count: int, levels: np.ndarray, k: int
) -> np.ndarray:
    """Rolling quantiles of realised/forecast ratios that are known at each row: a ratio is
    known once its whole window has been observed, so row i sees ratios <= i - k - 1."""
    rolling = ratio.rolling(window, min_periods=min_count)
    return np.stack([rolling.quantile(q).shift(k + 1).to_numpy() for q in levels])
