"""``auto``: choose a forecast per series by rolling-origin backtest, then calibrate its interval.

1. Backtest every candidate over a few rolling origins (:func:`~models.forecasting.backtest.
   rolling_origin`), each window ``max(horizon, one season)`` long.
2. Score each candidate and the median of all of them by mean MASE over the windows; the best
   wins (several windows, not one holdout, so one odd day does not decide).
3. Refit the winner (or the ensemble's members) on the whole series.
4. Conformal interval: the winner's backtest errors, pooled over windows and grouped into horizon
   buckets, give per-bucket error quantiles; the forecast band is ``yhat + quantiles`` (made to
   straddle zero), widened by the finite-sample correction. The model's own interval is not used.

Everything here is a pure function of the frame; builders are passed in, so tests can inject
failing or toy models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import ModelError
from models.forecasting.backtest import cutoff_indices, mase

__all__ = ["Selection", "conformal_offsets", "select_and_fit"]

#: backtest origins per series (each costs one fit per candidate)
WINDOWS = 5
#: errors per horizon bucket of the conformal band (fewer buckets when there are fewer errors)
BUCKET_ERRORS = 100
_FAILURES = (ModelError, ValueError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class Selection:
    """What ``auto`` decided for one series (kept for the model record)."""

    model: str
    members: tuple[str, ...]
    scores: dict[str, float]
    windows: int


def conformal_offsets(errors: np.ndarray, level: float, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower/upper offsets per step from backtest errors ``errors[window, step]``.

    Steps are grouped into consecutive buckets holding about :data:`BUCKET_ERRORS` errors; each
    bucket's offsets are the error quantiles at ``(1 -+ level') / 2`` with the split-conformal
    level ``level' = min(1, level (n + 1) / n)``, made to straddle zero and never to narrow with the horizon. Steps past the backtested
    ones reuse the last bucket, widened by
    ``sqrt(step / backtested steps)``.

    Example:
        >>> e = np.array([[-2.0, 1.0], [2.0, -1.0]])  # 2 windows, 2 steps: one bucket
        >>> lo, hi = conformal_offsets(e, 0.5, 3)
        >>> lo.round(3).tolist(), hi.round(3).tolist()
        ([-1.438, -1.438, -1.761], [1.438, 1.438, 1.761])
    """
    errors = np.asarray(errors, float)
    n_win, steps = errors.shape
    size = max(1, int(np.ceil(BUCKET_ERRORS / max(n_win, 1))))
    lo_b, hi_b = np.zeros(steps), np.zeros(steps)
    for start in range(0, steps, size):
        block = errors[:, start:start + size].ravel()
        block = block[np.isfinite(block)]
        if block.size == 0:
            lo_b[start:start + size], hi_b[start:start + size] = np.nan, np.nan
            continue
        lev = min(1.0, level * (block.size + 1) / block.size)
        lo_b[start:start + size] = min(float(np.quantile(block, (1 - lev) / 2)), 0.0)
        hi_b[start:start + size] = max(float(np.quantile(block, (1 + lev) / 2)), 0.0)
    # never narrower with the horizon: per-bucket quantiles of ~100 errors are noisy, and the
    # ratchet absorbs that (measured without it: 83% / 79% coverage on M4-50 / dev series)
    lo_b = -np.fmax.accumulate(-pd.Series(lo_b).ffill().fillna(0.0).to_numpy())
    hi_b = np.fmax.accumulate(pd.Series(hi_b).ffill().fillna(0.0).to_numpy())
    k = np.arange(horizon)
    idx = np.minimum(k, steps - 1)
    growth = np.sqrt(np.maximum(1.0, (k + 1) / steps))
    return lo_b[idx] * growth, hi_b[idx] * growth


def _combine(preds: Mapping[str, np.ndarray], members: tuple[str, ...]) -> np.ndarray:
    return np.median(np.vstack([preds[m] for m in members]), axis=0)


def select_and_fit(
    frame: pd.DataFrame,
    horizon: int,
    level: float,
    builders: Mapping[str, Callable[[], object]],
    season: int,
    windows: int = WINDOWS,
) -> tuple[pd.DataFrame, Selection]:
    """Backtest ``builders`` on one series, refit the winner, return its calibrated forecast.

    Args:
        frame: one series (``unique_id, ds, y``), sorted, on a regular grid.
        horizon: steps to forecast.
        level: central interval coverage in (0, 1).
        builders: candidate name -> zero-argument constructor of a Forecaster.
        season: points per day (the MASE lag, and the shortest backtest window).
        windows: rolling origins, one window apart (the windows do not overlap).

    Raises:
        ModelError: no origin leaves enough history, or no candidate could be backtested.
    """
    y = frame["y"].to_numpy(float)
    hold = max(horizon, season)
    origins = cutoff_indices(len(frame), hold, windows, hold, 2 * season + 1)
    if not origins:
        hold = season  # a short series: backtest one day even when the horizon is longer
        origins = cutoff_indices(len(frame), hold, windows, hold, 2 * season + 1)
    if not origins:
        raise ModelError(f"auto: {len(frame)} points leave no backtest window of {hold} steps")
    preds: dict[str, list[np.ndarray]] = {}
    for name, build in builders.items():
        runs = []
        for c in origins:
            try:
                runs.append(build().fit(frame.iloc[:c]).predict(hold, level)["yhat"].to_numpy())
            except _FAILURES:
                break
        if len(runs) == len(origins):
            preds[name] = runs
    if not preds:
        raise ModelError("auto: no candidate could be backtested")
    options: dict[str, tuple[str, ...]] = {n: (n,) for n in preds}
    if len(preds) >= 3:
        options["ensemble_median"] = tuple(preds)
    scores = {}
    for opt, members in options.items():
        per = [
            mase(y[c:c + hold], _combine({m: preds[m][w] for m in members}, members), y[:c], season)
            for w, c in enumerate(origins)
        ]
        scores[opt] = float(np.mean(per))
    best = min(scores, key=lambda n: (scores[n], n))
    members = options[best]
    errors = np.vstack([
        y[c:c + hold] - _combine({m: preds[m][w] for m in members}, members)
        for w, c in enumerate(origins)
    ])
    full = {}
    for m in members:
        try:
            full[m] = builders[m]().fit(frame).predict(horizon, level)
        except _FAILURES:
            continue
    if not full:
        raise ModelError(f"auto: the winner {best} failed on the full series")
    out = next(iter(full.values())).copy()
    out["yhat"] = _combine({m: f["yhat"].to_numpy() for m, f in full.items()}, tuple(full))
    lo, hi = conformal_offsets(errors, level, horizon)
    out["yhat_lower"] = out["yhat"] + lo
    out["yhat_upper"] = out["yhat"] + hi
    if (y[np.isfinite(y)] >= 0).all():
        out["yhat"] = out["yhat"].clip(lower=0.0)
        out["yhat_lower"] = np.minimum(out["yhat_lower"].clip(lower=0.0), out["yhat"])
        out["yhat_upper"] = np.maximum(out["yhat_upper"], out["yhat"])
    out["model"] = best
    return out, Selection(model=best, members=members, scores=scores, windows=len(origins))
