"""Rolling-origin backtests and the M4 error metrics, as pure functions on arrays and frames.

``auto`` model selection (:mod:`models.forecasting.selection`) and the ``surgecast backtest``
command share these: cut a series at several origins, fit on what came before each, score the
next ``horizon`` points. Metrics follow the M4 definitions (sMAPE in percent; MASE scaled by the
in-sample seasonal-naive error).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["coverage", "cutoff_indices", "mase", "rolling_origin", "smape"]


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent, M4 style: ``mean(200 |y - yhat| / (|y| + |yhat|))``.

    Points where both are zero count as a perfect forecast.

    Example:
        >>> smape(np.array([100.0, 0.0]), np.array([50.0, 0.0]))
        33.33333333333333
    """
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    den = np.abs(y) + np.abs(yhat)
    ratio = np.divide(2.0 * np.abs(y - yhat), den, out=np.zeros_like(den), where=den > 0)
    return float(100.0 * np.mean(ratio))


def mase(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray, m: int) -> float:
    """Mean absolute error scaled by the in-sample seasonal-naive MAE at lag ``m``.

    Falls back to lag 1 when ``insample`` is not longer than ``m``; a zero scale (a constant
    history) is replaced by 1 so the result stays finite.

    Example:
        >>> mase(np.array([3.0]), np.array([1.0]), np.array([0.0, 1.0, 2.0, 3.0]), 2)
        1.0
    """
    insample = np.asarray(insample, float)
    insample = insample[np.isfinite(insample)]
    lag = m if insample.size > m else 1
    scale = float(np.mean(np.abs(insample[lag:] - insample[:-lag]))) if insample.size > lag else 0.0
    err = float(np.mean(np.abs(np.asarray(y, float) - np.asarray(yhat, float))))
    return err / (scale if scale > 0 else 1.0)


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of ``y`` inside ``[lower, upper]`` (bounds included).

    Example:
        >>> coverage(np.array([1.0, 5.0]), np.array([0.0, 0.0]), np.array([2.0, 2.0]))
        0.5
    """
    y = np.asarray(y, float)
    return float(np.mean((y >= np.asarray(lower, float)) & (y <= np.asarray(upper, float))))


def cutoff_indices(n: int, horizon: int, cutoffs: int, step: int, min_train: int) -> list[int]:
    """Origins ``n - horizon - j * step`` for ``j = 0..cutoffs-1``, oldest first.

    Origins that would leave fewer than ``min_train`` points before them are dropped.

    Example:
        >>> cutoff_indices(100, 10, 3, 5, 50)
        [80, 85, 90]
        >>> cutoff_indices(100, 10, 3, 30, 50)
        [60, 90]
    """
    out = [n - horizon - j * step for j in range(cutoffs)]
    return sorted(c for c in out if c >= min_train)


def rolling_origin(
    frame: pd.DataFrame, horizon: int, cutoffs: int, step: int | None = None
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Split one series' canonical frame into ``(train, test)`` pairs at rolling origins.

    Args:
        frame: one series, rows sorted by ``ds`` (``unique_id, ds, y``).
        horizon: points in each test window.
        cutoffs: number of origins, the last one ``horizon`` points before the end.
        step: points between consecutive origins (default ``horizon``: windows do not overlap).

    Origins leaving fewer than ``horizon`` training points are skipped, so the list may be
    shorter than ``cutoffs`` (or empty) for short series. Windows are returned oldest first.

    Example:
        >>> f = pd.DataFrame({"unique_id": "a", "ds": range(10), "y": range(10)})
        >>> [(len(tr), te["y"].tolist()) for tr, te in rolling_origin(f, 3, 2)]
        [(4, [4, 5, 6]), (7, [7, 8, 9])]
    """
    if horizon < 1 or cutoffs < 1:
        raise ValueError(f"horizon and cutoffs must be >= 1, got {horizon} and {cutoffs}")
    step = horizon if step is None else int(step)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    idx = cutoff_indices(len(frame), horizon, cutoffs, step, horizon)
    return [(frame.iloc[:c], frame.iloc[c:c + horizon]) for c in idx]
