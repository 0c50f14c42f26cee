"""Causal forecast of the peak load over a lead window, with calibrated quantiles.

A capacity decision taken at row ``i`` of a load series (time ``t_i``) must cover the load until
the *next* decision's replicas are ready, i.e. rows ``i .. i + k`` with ``k = ceil(lead / step)``,
and it knows rows ``< i`` only (the row dated ``t_i`` is the interval that starts now and is not
complete yet). For every row this module forecasts that peak, strictly causally:

* **profile** ``S[j]``: the mean load at the same time of day over the last ``seasons`` days,
  smoothed over ``± smooth_minutes`` (centred, so it only ever reads data at least a day old);
* **level** ``L_i``: an exponentially weighted mean of ``y / S`` over rows ``< i`` (half-life
  ``level_halflife_minutes``): today's traffic relative to the profile;
* **events** (optional): a ridge fit of ``log(y / (S × level))`` on fixture-phase features
  (:func:`models.forecasting.events.event_features`), refitted every ``event_refit_minutes`` on
  past rows only, so a kickoff the calendar announces raises the forecast before it happens;
* **peak** ``= L_i × max(S[j] × event[j] for j in i .. i + k)``.

The peak's **quantiles** are empirical: for every past decision whose window has closed
(rows ``≤ i - k - 1``), the ratio realised peak / forecast peak; at row ``i`` the quantiles of
those ratios over the last ``calibration_days`` scale the point forecast. Until enough windows
have closed the quantiles are NaN (the planner falls back to its target utilisation).

Everything is vectorised over the whole series and causal by construction (every input of row
``i`` is shifted so it ends at row ``i - 1``); ``tests/test_lead_peak.py`` checks that
truncating the series never changes an earlier row.

Example:
    >>> import numpy as np, pandas as pd
    >>> ds = pd.date_range("2026-01-01", periods=3 * 288, freq="5min", tz="UTC")
    >>> y = 700 + 300 * np.sin(2 * np.pi * np.arange(ds.size) / 288)
    >>> fc = lead_peak_forecast(ds, y, lead_seconds=300)
    >>> fc.rows_ahead, bool(abs(fc.point[-1] / y[-1] - 1) < 0.05)  # a day later, same shape
    (1, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import FrameError
from models.forecasting.events import event_classes, event_features, normalise_events

__all__ = ["DEFAULT_LEVELS", "LeadPeakConfig", "LeadPeakForecast", "lead_peak_forecast"]

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


@dataclass(frozen=True)
class LeadPeakConfig:
    """Knobs of :func:`lead_peak_forecast` (defaults measured in ``benchmarks/bench_replay.py``).

    Attributes:
        seasons: days averaged into the time-of-day profile.
        smooth_minutes: half-width of the profile's smoothing window.
        level_halflife_minutes: half-life of the level's exponential weighting.
        calibration_days: how far back realised/forecast ratios calibrate the quantiles.
        min_calibration: closed windows needed before quantiles are reported.
        event_min_calibration: closed fixture windows needed before they get their own
            quantiles (until then they share everyone's).
        levels: the quantile levels reported, increasing, in (0, 1).
        event_refit_minutes: how often the fixture effect is refitted (past rows only).
        event_ridge: ridge penalty of the fixture effect (shrinks rare classes to zero).
    """

    seasons: int = 7
    smooth_minutes: float = 10.0
    level_halflife_minutes: float = 20.0
    calibration_days: float = 7.0
    min_calibration: int = 50
    event_min_calibration: int = 30
    levels: tuple[float, ...] = DEFAULT_LEVELS
    event_refit_minutes: float = 360.0
    event_ridge: float = 3.0

    def __post_init__(self) -> None:
        if self.seasons < 1:
            raise ValueError(f"seasons must be at least 1, got {self.seasons!r}")
        for name in (
            "smooth_minutes",
            "level_halflife_minutes",
            "calibration_days",
            "event_refit_minutes",
            "event_ridge",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        levels = np.asarray(self.levels, dtype=float)
        if (
            levels.size == 0
            or not ((levels > 0) & (levels < 1)).all()
            or (np.diff(levels) <= 0).any()
        ):
            raise ValueError(f"levels must be increasing values in (0, 1), got {self.levels!r}")


@dataclass(frozen=True)
class LeadPeakForecast:
    """Per-row forecast of the peak load over ``rows i .. i + rows_ahead``.

    Attributes:
        point: the point forecast of the peak (NaN only before the first observation).
        levels: the quantile levels of ``quantiles``' rows.
        quantiles: ``(len(levels), n)`` peak quantiles; NaN while uncalibrated.
        rows_ahead: ``k``: the window is rows ``i .. i + k``.
        step_seconds: the series' step.
        event_multiplier: the fixture effect on the window's peak (1 without events).
        in_event: whether the window touches a fixture's pre/live/post phase.
    """

    point: np.ndarray
    levels: np.ndarray
    quantiles: np.ndarray
    rows_ahead: int
    step_seconds: int
    event_multiplier: np.ndarray
    in_event: np.ndarray


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


def _profile(y: np.ndarray, period: int, seasons: int, smooth: int) -> np.ndarray:
    """Mean of the (smoothed) load at ``j - d × period`` for ``d = 1 .. seasons``."""
    smoothed = (
        pd.Series(y).rolling(2 * smooth + 1, center=True, min_periods=1).median().to_numpy()
        if smooth > 0
        else y
    )
    n = y.size
    sums, counts = np.zeros(n), np.zeros(n)
    for d in range(1, seasons + 1):
        if d * period >= n:
            break
        past = smoothed[: n - d * period]
        ok = np.isfinite(past)
        sums[d * period :] += np.where(ok, past, 0.0)
        counts[d * period :] += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def _event_log_effect(
    ds: pd.DatetimeIndex,
    log_resid: np.ndarray,
    events: pd.DataFrame,
    refit_rows: int,
    ridge: float,
    rows_ahead: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row fixture effect on ``log(load)``, from ridge fits on rows before each refit, and
    whether each row is inside some fixture's window.

    The fit used from row ``start`` on sees rows ``< start - rows_ahead - 1`` only: a decision
    at row ``i`` reads the effect up to row ``i + rows_ahead``, and must not learn from row
    ``i`` itself.
    """
    # classes from the whole calendar (it is known in advance), not from the rows present, so
    # truncating the load series never changes an earlier row
    classes = event_classes(events)
    X = event_features(ds, events, classes, bin_minutes=15).to_numpy(dtype=float)
    effect = np.zeros(ds.size)
    in_event = X.any(axis=1)
    if not in_event.any():
        return effect, in_event
    ok = np.isfinite(log_resid)
    Xr = np.where(ok[:, None], X, 0.0)
    r = np.where(ok, log_resid, 0.0)
    # normal equations accumulated block by block: each refit adds only the new rows
    gram = np.zeros((X.shape[1], X.shape[1]))
    moment = np.zeros(X.shape[1])
    seen = 0
    for start in range(refit_rows, ds.size, refit_rows):
        upto = max(start - rows_ahead - 1, 0)
        if upto > seen:
            block = Xr[seen:upto]
            active = block.any(axis=1)
            gram += block[active].T @ block[active]
            moment += block[active].T @ r[seen:upto][active]
            seen = upto
        used = np.diag(gram) > 0
        if not used.any():
            continue
        beta = np.linalg.solve(
            gram[np.ix_(used, used)] + ridge * np.eye(int(used.sum())), moment[used]
        )
        stop = min(start + refit_rows, ds.size)
        effect[start:stop] = X[start:stop][:, used] @ beta
    return effect, in_event


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
        events: optional fixture calendar (``start, end, sport, competition, importance``).
        config: knobs; defaults when ``None``.

    Raises:
        FrameError: fewer than 2 rows, unsorted or off-grid timestamps, negative values.
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
    point, quantiles, event_peak, in_window = _forecast_grid(grid, on_grid, step, k, events, cfg)
    return LeadPeakForecast(
        point=point[rows],
        levels=np.asarray(cfg.levels, dtype=float),
        quantiles=quantiles[:, rows],
        rows_ahead=k,
        step_seconds=step,
        event_multiplier=event_peak[rows],
        in_event=in_window[rows],
    )


def _forecast_grid(
    index: pd.DatetimeIndex,
    values: np.ndarray,
    step: int,
    k: int,
    events: pd.DataFrame | None,
    cfg: LeadPeakConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Point, quantiles, event multiplier and fixture-window flag of the peak on a regular grid
    (NaN = no value)."""
    period = round(DAY_SECONDS / step)
    # Profile smoothing reads period - smooth rows back; it must stay before row i - 1 for
    # every j <= i + k, so smooth + k < period
    smooth = min(int(cfg.smooth_minutes * 60 // step), max(period - k - 1, 0))
    if period > k + 1 and DAY_SECONDS % step == 0:
        profile = _profile(values, period, cfg.seasons, smooth)
    else:  # steps that do not tile a day, or a lead of a day or more: no daily profile
        profile = np.full(values.size, np.nan)

    halflife = max(cfg.level_halflife_minutes * 60 / step, 0.5)
    load = pd.Series(values)
    observed_level = load.ewm(halflife=halflife, ignore_na=True).mean().shift(1).to_numpy()

    event_mult = np.ones(values.size)
    in_event = np.zeros(values.size, dtype=bool)
    if events is not None and len(events):
        evs = normalise_events(events)
        with np.errstate(invalid="ignore", divide="ignore"):
            rough = pd.Series(values / profile).ewm(halflife=DAY_SECONDS / step, ignore_na=True)
            log_resid = np.log(values / (profile * rough.mean().shift(1).to_numpy()))
        refit = max(int(cfg.event_refit_minutes * 60 // step), 1)
        effect, in_event = _event_log_effect(index, log_resid, evs, refit, cfg.event_ridge, k)
        event_mult = np.exp(effect)

    shape = profile * event_mult
    with np.errstate(invalid="ignore", divide="ignore"):
        level = pd.Series(values / shape).ewm(halflife=halflife, ignore_na=True).mean().shift(1)
        point = level.to_numpy() * _forward_max(pd.Series(shape), k)
    fallback = np.fmax(observed_level, load.shift(1).to_numpy())
    point = np.where(np.isfinite(point) & (point >= 0), point, fallback)

    realised = _forward_max(load, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = pd.Series(np.where(point > 0, realised / point, np.nan))
    window = max(int(cfg.calibration_days * DAY_SECONDS // step), cfg.min_calibration)
    levels = np.asarray(cfg.levels, dtype=float)
    multipliers = _calibrate(ratio, window, cfg.min_calibration, levels, k)
    # a window that touches a fixture is calibrated on such windows only: kickoff forecasts
    # miss by more than quiet-hour ones, and one shared quantile would hide it
    in_window = _forward_max(pd.Series(in_event.astype(float)), k) > 0
    if in_window.any():
        events_only = _calibrate(
            ratio.where(in_window), window, cfg.event_min_calibration, levels, k
        )
        usable = in_window[None, :] & np.isfinite(events_only)
        multipliers = np.where(usable, events_only, multipliers)
    quantiles = point[None, :] * multipliers
    event_peak = _forward_max(pd.Series(event_mult), k)
    return point, quantiles, event_peak, in_window


def _calibrate(
    ratio: pd.Series, window: int, min_count: int, levels: np.ndarray, k: int
) -> np.ndarray:
    """Rolling quantiles of realised/forecast ratios that are known at each row: a ratio is
    known once its whole window has been observed, so row i sees ratios <= i - k - 1."""
    rolling = ratio.rolling(window, min_periods=min_count)
    return np.stack([rolling.quantile(q).shift(k + 1).to_numpy() for q in levels])
