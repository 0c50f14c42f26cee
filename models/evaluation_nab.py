"""NAB scoring: the Numenta Anomaly Benchmark's window-based score, as pure functions.

Written from the published method (Lavin & Ahmad 2015; Ahmad et al. 2017, NAB v1.1):

* A file of ``n`` rows has labelled anomaly windows (inclusive row spans). Its first
  ``min(floor(0.15 n), 0.15 * 5000)`` rows are a probation period: nothing there is scored.
* A row *detects* when its anomaly score is ``>= threshold``.
* Inside a window ``[lo, hi]`` of width ``W``, a detection at row ``i`` is worth
  ``A_tp * sigma(i)`` with the scaled sigmoid ``sigma = (2 / (1 + e^{5y}) - 1) / (2 / (1 + e^{-5}) - 1)``
  and ``y = -(hi - i + 1) / W``: 1 at the left edge, ~0 at the right edge (early pays). Only the
  best (earliest) detection of a window counts; a window without a detection costs ``-A_fn``.
* A detection outside every window costs ``A_fp`` times ``-1``, or, within 3 window widths after
  the preceding window, ``2 / (1 + e^{5x}) - 1`` with ``x = (i - hi) / (W - 1)`` (a late detection
  of the previous anomaly costs less). Every such row counts.
* The raw score sums over files; one threshold per profile is chosen for the whole corpus by
  maximising it over every distinct score value (and "never fire").
* Normalised score ``100 * (S - S_null) / (S_perfect - S_null)`` with ``S_null = -A_fn *``
  (windows with a scorable row) and ``S_perfect = A_tp *`` (all windows).

Example:
    >>> f = file_geometry(20, [(10, 13)], probation=0.0)
    >>> r = score_corpus([f], [np.r_[np.zeros(10), 1.0, np.zeros(9)]])["standard"]
    >>> round(r.score, 3), r.threshold
    (100.0, 1.0)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "PROFILES",
    "FileGeometry",
    "NabResult",
    "file_geometry",
    "load_corpus",
    "probation_length",
    "score_corpus",
    "sweep",
]

#: NAB application profiles (``config/profiles.json``): weights of TP, FN and FP.
PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fn": 1.0, "fp": 0.11},
    "reward_low_FP_rate": {"tp": 1.0, "fn": 1.0, "fp": 0.22},
    "reward_low_FN_rate": {"tp": 1.0, "fn": 2.0, "fp": 0.11},
}


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


_MAX_TP = float(2.0 * _sigmoid(5.0) - 1.0)


def probation_length(n: int, fraction: float = 0.15) -> float:
    """Rows at the start of a file that are never scored: ``min(floor(f n), f * 5000)``."""
    return min(math.floor(fraction * n), fraction * 5000)


@dataclass(frozen=True)
class FileGeometry:
    """Profile-independent per-row weights of one file (scorable rows only).

    ``win`` is the window index of a row (-1 outside), ``tp_unit`` its TP value per unit of
    ``A_tp``, ``fp_unit`` its (negative) FP value per unit of ``A_fp``; ``n_windows`` counts
    all windows, ``live`` the windows with at least one scorable row.
    """

    n: int
    start: int
    win: np.ndarray
    tp_unit: np.ndarray
    fp_unit: np.ndarray
    n_windows: int
    live: int


def file_geometry(
    n: int, spans: Sequence[tuple[int, int]], probation: float = 0.15
) -> FileGeometry:
    """Per-row NAB weights of a file of ``n`` rows with inclusive window ``spans`` (row indices)."""
    spans = sorted((int(a), int(b)) for a, b in spans)
    for lo, hi in spans:
        if not 0 <= lo <= hi < n:
            raise ValueError(f"window ({lo}, {hi}) is not inside a file of {n} rows")
    win = np.full(n, -1, dtype=np.int64)
    tp_unit = np.zeros(n)
    fp_unit = np.full(n, -1.0)
    idx = np.arange(n)
    for k, (lo, hi) in enumerate(spans):
        width = hi - lo + 1
        rows = idx[lo : hi + 1]
        win[lo : hi + 1] = k
        tp_unit[lo : hi + 1] = (2.0 * _sigmoid(5.0 * (hi - rows + 1) / width) - 1.0) / _MAX_TP
        end = spans[k + 1][0] if k + 1 < len(spans) else n
        if width > 1 and end > hi + 1:
            x = (idx[hi + 1 : end] - hi) / (width - 1)
            fp_unit[hi + 1 : end] = np.where(x > 3.0, -1.0, 2.0 * _sigmoid(-5.0 * x) - 1.0)
    prob = probation_length(n, probation)
    start = int(math.ceil(prob))  # rows with index >= prob are scored
    live = sum(1 for _, hi in spans if hi >= prob)
    return FileGeometry(n, start, win[start:], tp_unit[start:], fp_unit[start:], len(spans), live)


def sweep(
    files: Sequence[FileGeometry], scores: Sequence[np.ndarray], profile: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw corpus score for every candidate threshold.

    Returns ``(thresholds, raw)``: ``thresholds`` descending, starting with ``inf`` (never
    fire), then every distinct score; ``raw[j]`` is the total when rows ``>= thresholds[j]``
    detect.
    """
    if len(files) != len(scores):
        raise ValueError(f"{len(files)} files but {len(scores)} score arrays")
    a_parts, delta_parts = [], []
    live = 0
    for g, s in zip(files, scores, strict=True):
        s = np.asarray(s, dtype=float)
        if s.shape != (g.n,):
            raise ValueError(f"a file has {g.n} rows but {s.shape} scores")
        s = s[g.start :]
        live += g.live
        # FP rows: each adds its own (negative) value once the threshold reaches it
        delta = np.where(g.win < 0, profile["fp"] * g.fp_unit, 0.0)
        # window rows: the window's value moves from -fn to the running max of detected values
        for k in np.unique(g.win[g.win >= 0]):
            rows = np.flatnonzero(g.win == k)
            rows = rows[np.argsort(-s[rows], kind="stable")]
            best = np.maximum.accumulate(np.maximum(profile["tp"] * g.tp_unit[rows], -profile["fn"]))
            delta[rows] = np.diff(np.r_[-profile["fn"], best])
        a_parts.append(s)
        delta_parts.append(delta)
    base = -profile["fn"] * live
    a = np.concatenate(a_parts) if a_parts else np.zeros(0)
    if a.size == 0:
        return np.array([np.inf]), np.array([base])
    order = np.argsort(-a, kind="stable")
    a_sorted = a[order]
    csum = np.cumsum(np.concatenate(delta_parts)[order])
    last = np.r_[a_sorted[1:] != a_sorted[:-1], True]
    return np.r_[np.inf, a_sorted[last]], np.r_[base, base + csum[last]]


@dataclass(frozen=True)
class NabResult:
    """One profile's outcome: normalised ``score``, the chosen ``threshold`` and raw totals."""

    score: float
    threshold: float
    raw: float
    null: float
    perfect: float


def score_corpus(
    files: Sequence[FileGeometry],
    scores: Sequence[np.ndarray],
    profiles: dict[str, dict[str, float]] | None = None,
) -> dict[str, NabResult]:
    """NAB score per profile, with one threshold per profile optimised over all ``files``.

    Among equal best totals the highest threshold wins.
    """
    out = {}
    for name, prof in (profiles or PROFILES).items():
        thr, raw = sweep(files, scores, prof)
        j = int(np.argmax(raw))
        null = -prof["fn"] * sum(g.live for g in files)
        perfect = prof["tp"] * sum(g.n_windows for g in files)
        denom = perfect - null
        score = 100.0 * (raw[j] - null) / denom if denom else float("nan")
        out[name] = NabResult(float(score), float(thr[j]), float(raw[j]), null, perfect)
    return out


def load_corpus(
    root: str | Path, files: Sequence[str] | None = None, labels: str = "combined_windows.json"
) -> tuple[list[str], list[pd.DataFrame], list[FileGeometry]]:
    """Read a NAB tree (``data/``, ``labels/``): relative paths, data frames and geometries.

    Window timestamps are matched to the first row carrying them (a few files repeat one).
    """
    root = Path(root)
    windows = json.loads((root / "labels" / labels).read_text())
    rels = sorted(files if files is not None else windows)
    frames, geoms = [], []
    for rel in rels:
        df = pd.read_csv(root / "data" / rel)
        ts = pd.to_datetime(df["timestamp"])
        first = pd.Series(np.arange(len(ts))).groupby(ts.to_numpy()).min()
        spans = []
        for lo, hi in windows[rel]:
            try:
                spans.append((int(first[pd.Timestamp(lo)]), int(first[pd.Timestamp(hi)])))
            except KeyError as exc:
                raise ValueError(f"{rel}: window {lo}..{hi} matches no row timestamp") from exc
        frames.append(df)
        geoms.append(file_geometry(len(df), spans))
    return rels, frames, geoms
