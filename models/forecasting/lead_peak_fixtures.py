"""The fixture model of :mod:`models.forecasting.lead_peak`: how scheduled fixtures lift the
load, fitted from the past only.

Each fixture adds ``importance × amplitude[competition] × shape[sport, phase bin]`` over its
window (bins of 1 minute for the last 20 minutes before kickoff, 5 minutes elsewhere: the ramp,
the match and an open-ended late bin, and the time after the final whistle); overlapping
fixtures add up. Amplitudes and shapes are fitted by alternating ridge least squares, refitted
on a schedule on rows before each refit, and the time-of-day profile is rebuilt from the load
with the fitted uplift divided out, so a past evening's kickoffs do not leak into tomorrow's
baseline. Only the calendar's ``start, end, sport, competition, importance`` are read.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sparse

from models.forecasting.events import event_class

if TYPE_CHECKING:
    from models.forecasting.lead_peak import LeadPeakConfig

try:  # BLAS threads fight over shared cores for these small solves
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    threadpool_limits = None

__all__ = ["MIN_MULTIPLIER", "build_fixtures", "daily_profile", "fixture_shape"]

_NS_PER_MIN = 60_000_000_000


def daily_profile(y: np.ndarray, period: int, seasons: int, smooth: int) -> np.ndarray:
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


@dataclass(frozen=True)
class _Fixtures:
    """Every (grid row, fixture) pair of the calendar's fixture windows, sorted by row, and the
    fixed sparsity of the two alternating least-squares designs built from them."""

    n: int
    row: np.ndarray  # grid row of each pair
    col: np.ndarray  # sport block × phase bin
    cls: np.ndarray  # competition (class) of the pair's fixture
    imp: np.ndarray  # the fixture's importance
    phase: np.ndarray  # 0 pre-match, 1 in play, 2 after
    n_cols: int
    n_classes: int
    smoothing: np.ndarray  # DᵀD of the adjacent-bin differences within each phase
    shape_keys: tuple[np.ndarray, np.ndarray, np.ndarray]  # (pair -> key, key col, row ptr)
    class_keys: tuple[np.ndarray, np.ndarray, np.ndarray]

    def design(self, weights: np.ndarray, keys: tuple, n_cols: int, lo: int, hi: int):
        """Rows ``lo .. hi - 1`` of the sparse design whose pair ``p`` adds ``weights[p]`` to
        its key."""
        inverse, col, ptr = keys
        data = np.bincount(inverse, weights=weights, minlength=col.size)
        first, stop = ptr[lo], ptr[hi]
        return sparse.csr_matrix(
            (data[first:stop], col[first:stop], ptr[lo : hi + 1] - first), shape=(hi - lo, n_cols)
        )

    def contributions(self, a: np.ndarray, g: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """``(3, hi - lo)``: the uplift each phase (pre, live, post) adds to rows ``lo .. hi - 1``."""
        first, stop = np.searchsorted(self.row, [lo, hi])
        rows = self.row[first:stop] - lo
        phase = self.phase[first:stop]
        w = self.imp[first:stop] * a[self.cls[first:stop]] * g[self.col[first:stop]]
        return np.stack(
            [
                np.bincount(rows, weights=np.where(phase == p, w, 0.0), minlength=hi - lo)
                for p in range(3)
            ]
        )

    def uplift(self, a: np.ndarray, g: np.ndarray, hi: int) -> np.ndarray:
        """``E`` of rows ``< hi``."""
        stop = np.searchsorted(self.row, hi)
        w = self.imp[:stop] * a[self.cls[:stop]] * g[self.col[:stop]]
        return np.bincount(self.row[:stop], weights=w, minlength=hi)[:hi]


def _keys(row: np.ndarray, col: np.ndarray, n_cols: int, n: int) -> tuple:
    inverse_key = row.astype(np.int64) * n_cols + col
    unique, inverse = np.unique(inverse_key, return_inverse=True)
    ptr = np.searchsorted(unique // n_cols, np.arange(n + 1))
    return inverse, (unique % n_cols).astype(np.int64), ptr


def build_fixtures(
    grid: pd.DatetimeIndex, events: pd.DataFrame, step: int, cfg: LeadPeakConfig
) -> _Fixtures | None:
    """The pairs of a normalised calendar on ``grid`` (``None`` if no fixture window touches
    it).

    Sports and competitions are taken from the whole calendar (known in advance), never from
    the rows present, so truncating the load never changes an earlier row."""
    ev = events[events["importance"] > 0].reset_index(drop=True)
    if ev.empty:
        return None
    step_min = step / 60.0
    fine = max(1.0, step_min)
    coarse = max(cfg.fixture_bin_minutes, step_min)
    pre_span, fine_span = (
        cfg.fixture_pre_minutes,
        min(cfg.fixture_fine_minutes, cfg.fixture_pre_minutes),
    )
    n_fine = math.ceil(fine_span / fine)
    n_coarse = math.ceil((pre_span - n_fine * fine) / coarse) if pre_span > n_fine * fine else 0
    # pre-match bin edges (minutes from kickoff, increasing): coarse far out, fine near kickoff
    edges = np.concatenate(
        [-n_fine * fine - coarse * np.arange(n_coarse, 0, -1), -fine * np.arange(n_fine, -1, -1)]
    )
    n_pre = edges.size - 1
    n_live = math.ceil(cfg.fixture_live_minutes / coarse)
    n_post = math.ceil(cfg.fixture_post_minutes / coarse)
    width = n_pre + n_live + 1 + n_post
    sports = sorted(set(ev["sport"]))
    keys = [event_class(s, c) for s, c in zip(ev["sport"], ev["competition"], strict=True)]
    classes = sorted(set(keys))
    sport_of = {s: i for i, s in enumerate(sports)}
    class_of = {c: i for i, c in enumerate(classes)}
    t = grid.as_unit("ns").asi8
    starts = pd.DatetimeIndex(ev["start"]).as_unit("ns").asi8
    ends = pd.DatetimeIndex(ev["end"]).as_unit("ns").asi8
    rows, cols, cls, imp, phases = [], [], [], [], []
    for i in range(len(ev)):
        s, e = int(starts[i]), int(ends[i])
        lo = np.searchsorted(t, s + int(edges[0] * _NS_PER_MIN))
        hi = np.searchsorted(t, e + int(cfg.fixture_post_minutes * _NS_PER_MIN))
        if hi <= lo:
            continue
        tt = t[lo:hi]
        rel = (tt - s) / _NS_PER_MIN
        pre, post = rel < 0, tt >= e
        live = ~pre & ~post
        pos = np.empty(tt.size, dtype=np.int64)
        pos[pre] = np.searchsorted(edges, rel[pre], side="right") - 1
        pos[live] = n_pre + np.minimum(rel[live] // coarse, n_live).astype(np.int64)
        after = (tt[post] - e) / _NS_PER_MIN
        pos[post] = n_pre + n_live + 1 + (after // coarse).astype(np.int64)
        ok = (pos >= 0) & (pos < width)
        m = int(ok.sum())
        rows.append(lo + np.flatnonzero(ok))
        cols.append(sport_of[ev["sport"].iat[i]] * width + pos[ok])
        cls.append(np.full(m, class_of[keys[i]]))
        imp.append(np.full(m, float(ev["importance"].iat[i])))
        phases.append(np.where(pre, 0, np.where(live, 1, 2))[ok])
    if not rows or not sum(r.size for r in rows):
        return None
    row = np.concatenate(rows)
    order = np.argsort(row, kind="stable")
    row, col = row[order], np.concatenate(cols)[order]
    cls_arr = np.concatenate(cls)[order]
    # smoothness: differences of adjacent bins of the same phase (not into the open-ended bin)
    n_cols = len(sports) * width
    segment = np.repeat([0, 1, 2, 3], [n_pre, n_live, 1, n_post])
    diffs = [
        (b * width + j, b * width + j + 1)
        for b in range(len(sports))
        for j in range(width - 1)
        if segment[j] == segment[j + 1]
    ]
    D = np.zeros((len(diffs), n_cols))
    for r, (j0, j1) in enumerate(diffs):
        D[r, j0], D[r, j1] = -1.0, 1.0
    n = grid.size
    return _Fixtures(
        n=n,
        row=row,
        col=col,
        cls=cls_arr,
        imp=np.concatenate(imp)[order],
        phase=np.concatenate(phases)[order],
        n_cols=n_cols,
        n_classes=len(classes),
        smoothing=D.T @ D,
        shape_keys=_keys(row, col, n_cols, n),
        class_keys=_keys(row, cls_arr, len(classes), n),
    )


def _fit_fixtures(
    fx: _Fixtures,
    target: np.ndarray,
    lo: int,
    a: np.ndarray,
    g: np.ndarray,
    cfg: LeadPeakConfig,
    iterations: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Alternating ridge fits of the sport shapes ``g`` and the competition amplitudes ``a`` on
    ``target`` (rows ``lo .. lo + len(target) - 1``; NaN rows left out)."""
    hi = lo + target.size
    ok = np.isfinite(target)
    r = np.where(ok, target, 0.0)
    mask = sparse.diags(ok.astype(float))
    for _ in range(iterations):
        X = mask @ fx.design(fx.imp * a[fx.cls], fx.shape_keys, fx.n_cols, lo, hi)
        lhs = (X.T @ X).toarray() + cfg.event_ridge * np.eye(fx.n_cols)
        g = np.linalg.solve(lhs + cfg.event_smoothing * fx.smoothing, X.T @ r)
        Z = mask @ fx.design(fx.imp * g[fx.col], fx.class_keys, fx.n_classes, lo, hi)
        lhs = (Z.T @ Z).toarray() + cfg.competition_ridge * np.eye(fx.n_classes)
        a = np.linalg.solve(lhs, Z.T @ r + cfg.competition_ridge)
    return a, g


MIN_MULTIPLIER = 0.25  # a fit never predicts less than a quarter of the baseline


def _clean_profile(
    values: np.ndarray,
    uplift: np.ndarray,
    known: int,
    lo: int,
    hi: int,
    period: int,
    smooth: int,
    seasons: int,
) -> np.ndarray:
    """The profile of ``y / (1 + E)`` for rows ``lo .. hi - 1``, from rows ``< known`` only
    (exactly what :func:`_profile` gives on the whole series, reading only what it needs)."""
    first = max(lo - seasons * period - smooth, 0)
    clean = np.full(hi - first, np.nan)
    end = min(known, hi)
    if end > first:
        clean[: end - first] = values[first:end] / np.maximum(
            1.0 + uplift[first:end], MIN_MULTIPLIER
        )
    return daily_profile(clean, period, seasons, smooth)[lo - first :]


def fixture_shape(
    values: np.ndarray, fx: _Fixtures, period: int, smooth: int, k: int, step: int, cfg
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the cleaned profile, the fixture uplift ``E`` and its split by phase
    (:meth:`_Fixtures.contributions`), each from the fit of the row's refit block (trained on
    rows ``< block start - k - 1``)."""
    n = values.size
    profile, uplift, by_phase = np.full(n, np.nan), np.zeros(n), np.zeros((3, n))
    # a block's profile reads cleaned rows at least period - smooth back: they must precede it
    block = max(1, min(int(cfg.event_refit_minutes * 60 // step), period - smooth - k - 1))
    history = max(int(cfg.event_history_days * period), period)
    a, g = np.ones(fx.n_classes), np.zeros(fx.n_cols)
    halflife = max(cfg.baseline_halflife_minutes * 60 / step, 0.5)
    warmup = int(4 * halflife)
    limit = threadpool_limits(1) if threadpool_limits is not None else contextlib.nullcontext()
    with limit:
        for start in range(0, n, block):
            stop = min(start + block, n)
            upto = max(start - k - 1, 0)
            lo = max(upto - history, 0)
            if fx.shape_keys[2][upto] > fx.shape_keys[2][lo]:
                # re-clean the baseline with the current fit, then refit against it
                first = max(lo - warmup, 0)
                current = fx.uplift(a, g, upto)
                base = _clean_profile(
                    values, current, upto, first, upto, period, smooth, cfg.seasons
                )
                current = current[first:]
                y = values[first:upto]
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = pd.Series(y / np.maximum(1 + current, MIN_MULTIPLIER) / base)
                    slow = ratio.ewm(halflife=halflife, ignore_na=True).mean().shift(1).to_numpy()
                    target = (y / (base * slow) - 1.0)[lo - first :]
                target = np.where(np.isfinite(target), target, np.nan)
                a, g = _fit_fixtures(fx, target, lo, a, g, cfg)
            now = fx.uplift(a, g, stop)
            profile[start:stop] = _clean_profile(
                values, now, start, start, stop, period, smooth, cfg.seasons
            )
            uplift[start:stop] = now[start:stop]
            by_phase[:, start:stop] = fx.contributions(a, g, start, stop)
    return profile, uplift, by_phase
