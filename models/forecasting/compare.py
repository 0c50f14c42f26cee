"""Compare catalogue forecasters on one series by rolling-origin backtest (for notebooks and
reports): one row per model with sMAPE, MASE, interval coverage and fit time.

The models are built by name from :mod:`models.forecasting.catalog`, the same table the
service's retrain job chooses from, so what a notebook compares is what the service can run.

Example:
    >>> import numpy as np, pandas as pd
    >>> ds = pd.date_range("2026-01-05", periods=6 * 288, freq="5min", tz="UTC")
    >>> y = 100 + 50 * np.sin(2 * np.pi * np.arange(ds.size) / 288)
    >>> frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": y})
    >>> table = compare_forecasters(frame, ["seasonal_naive", "seasonal_mean_1d"], horizon=12,
    ...                             cutoffs=2)
    >>> list(table.columns), table["windows"].tolist()
    (['model', 'windows', 'smape', 'mase', 'coverage', 'fit_seconds'], [2, 2])
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.forecasting.backtest import coverage, mase, rolling_origin, smape
from models.forecasting.catalog import build
from models.frequency import infer_step, season_length

__all__ = ["compare_forecasters"]

COLUMNS = ["model", "windows", "smape", "mase", "coverage", "fit_seconds"]


def compare_forecasters(
    frame: pd.DataFrame,
    names: Sequence[str],
    horizon: int,
    cutoffs: int,
    level: float = 0.9,
) -> pd.DataFrame:
    """Backtest the catalogue models ``names`` on one series (``unique_id, ds, y``).

    Args:
        frame: one series, sorted by ``ds``.
        names: catalogue names (``models.forecasting.catalog.CATALOG``).
        horizon: points per test window.
        cutoffs: rolling origins (the last ends at the series' end).
        level: interval level whose coverage is reported.

    Returns:
        One row per model (in ``names`` order): windows backtested, mean sMAPE (%), MASE,
        coverage of the ``level`` interval, mean fit+predict seconds. A model that fails on a
        window skips that window; a model that fails on all has ``windows == 0`` and NaNs.

    Raises:
        KeyError: an unknown model name.
        ValueError: ``frame`` holds more than one series, or no window fits.
    """
    if frame["unique_id"].nunique() != 1:
        raise ValueError("compare_forecasters takes one series; group the frame first")
    for name in names:
        build(name)  # unknown names fail fast, before any fitting
    frame = frame.sort_values("ds").reset_index(drop=True)
    season = season_length(infer_step(frame["ds"]))
    splits = rolling_origin(frame, horizon, cutoffs)
    if not splits:
        raise ValueError(
            f"no backtest window of {horizon} points fits in {len(frame)} points; lower the "
            "horizon or the cutoffs"
        )
    rows = []
    for name in names:
        per = []
        for train, test in splits:
            began = time.perf_counter()
            try:
                fc = build(name).fit(train.reset_index(drop=True)).predict(horizon, level=level)
            except Exception:  # one model failing on one window must not stop the comparison
                continue
            seconds = time.perf_counter() - began
            y = test["y"].to_numpy(float)
            ok = np.isfinite(y)
            yhat, lo, hi = (fc[c].to_numpy(float)[ok] for c in ("yhat", "yhat_lower", "yhat_upper"))
            per.append((smape(y[ok], yhat), mase(y[ok], yhat, train["y"].to_numpy(float), season),
                        coverage(y[ok], lo, hi), seconds))
        if per:
            s, m, c, t = (float(np.mean(v)) for v in zip(*per, strict=True))
            rows.append([name, len(per), s, m, c, t])
        else:
            rows.append([name, 0, np.nan, np.nan, np.nan, np.nan])
    return pd.DataFrame(rows, columns=COLUMNS)
