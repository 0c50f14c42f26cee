"""Pure numpy pieces of the seasonal robust z-score (see :mod:`models.anomaly.robust_zscore`).

Example:
    >>> import numpy as np
    >>> anomaly_score(np.array([0.0, 4.0]), 4.0).tolist()
    [0.0, 0.5]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MAD_TO_SIGMA", "MIN_REFERENCE", "anomaly_score", "phase_offsets", "robust_reference",
    "rolling_mean",
]

MAD_TO_SIGMA = 1.4826
# A MAD from fewer values is no measure of spread (one value always has MAD 0).
MIN_REFERENCE = 3


def phase_offsets(season: int, n_seasons: int, k: int) -> np.ndarray:
    """Backward offsets of the reference sample, grouped by season (``n_seasons * (2k + 1)``).

    Example:
        >>> phase_offsets(10, 2, 1).tolist()
        [11, 10, 9, 21, 20, 19]
    """
    j = np.arange(1, n_seasons + 1)[:, None]
    d = np.arange(-k, k + 1)[None, :]
    return (j * season - d).ravel()


def _nan_median_rows(a: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN (sorted to the end), for rows with ``counts >= 1``."""
    srt = np.sort(a, axis=1)
    rows = np.arange(a.shape[0])
    lo = srt[rows, (counts - 1) // 2]
    hi = srt[rows, counts // 2]
    return (lo + hi) / 2.0


def robust_reference(
    values: np.ndarray,
    positions: np.ndarray,
    offsets: np.ndarray,
    n_seasons: int,
    min_history_seasons: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median, MAD, size and warm flag of the reference sample of each position.

    ``values`` holds the history on a regular grid (NaN = missing or masked). A position is warm
    when at least ``min_history_seasons`` of its previous seasons have an observation near the
    same phase, and the sample holds at least :data:`MIN_REFERENCE` values; median and MAD are
    NaN where not warm. The MAD is multiplied by ``n / (n - 0.8)``, the usual small-sample
    correction (a raw MAD of 7 values underestimates the spread by about 15 %).

    Example:
        >>> import numpy as np
        >>> v = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0, 0.0, 0.0])
        >>> med, mad, n, warm = robust_reference(v, np.array([6, 7]), phase_offsets(2, 3, 0), 3, 1)
        >>> med.tolist(), mad.round(4).tolist(), n.tolist(), warm.tolist()
        ([2.0, 6.0], [1.3636, 1.3636], [3, 3], [True, True])
    """
    idx = positions[:, None] - offsets[None, :]
    sample = np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)
    present = ~np.isnan(sample)
    count = present.sum(axis=1)
    per_season = present.reshape(len(positions), n_seasons, -1).any(axis=2).sum(axis=1)
    warm = (per_season >= min_history_seasons) & (count >= MIN_REFERENCE)
    med = np.full(len(positions), np.nan)
    mad = np.full(len(positions), np.nan)
    if warm.any():
        s, n = sample[warm], count[warm]
        m = _nan_median_rows(s, n)
        med[warm] = m
        mad[warm] = _nan_median_rows(np.abs(s - m[:, None]), n) * n / (n - 0.8)
    return med, mad, count, warm


def rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Centred mean over ``x[i-w..i+w]`` ignoring NaN (NaN where the window has no value).

    Example:
        >>> import numpy as np
        >>> rolling_mean(np.array([1.0, 9.0, 2.0, np.nan, 3.0]), 1).tolist()
        [5.0, 4.0, 5.5, 2.5, 3.0]
    """
    ok = ~np.isnan(x)

    def window_sums(v: np.ndarray) -> np.ndarray:
        c = np.r_[0.0, np.cumsum(np.pad(v, w))]
        return c[2 * w + 1 :] - c[: -2 * w - 1]

    sums, counts = window_sums(np.where(ok, x, 0.0)), window_sums(ok.astype(float))
    out = np.full(x.size, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0.5)
    return out


def anomaly_score(z: np.ndarray, threshold: float) -> np.ndarray:
    """Map ``|z|`` to [0, 1): ``1 - 2 ** -((z / threshold) ** 2)``; ``|z| = threshold`` ↦ 0.5.

    Example:
        >>> import numpy as np
        >>> anomaly_score(np.array([0.0, 4.0, -8.0]), 4.0).tolist()
        [0.0, 0.5, 0.9375]
    """
    return 1.0 - np.exp2(-np.square(z / threshold))
