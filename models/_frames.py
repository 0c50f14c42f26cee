"""Private helpers shared by the models: split a long frame per series, place points on a grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.errors import FrameError

SERIES_COLUMNS = ("unique_id", "ds", "y")


@dataclass(frozen=True)
class Series:
    """One series of a long frame: timestamps as int64 ns (sorted, unique) and float values."""

    unique_id: str
    ds_ns: np.ndarray
    y: np.ndarray


def split_series(frame: pd.DataFrame, *, who: str) -> list[Series]:
    """Split a canonical frame into per-series arrays, dropping missing ``y`` (they are gaps).

    Sorts when needed; rejects what cannot be repaired safely with a :class:`FrameError`.
    """
    if not isinstance(frame, pd.DataFrame):
        raise FrameError(f"{who}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in SERIES_COLUMNS if c not in frame.columns]
    if missing:
        raise FrameError(
            f"{who}: missing column(s) {missing}; pass a long frame with columns "
            f"{list(SERIES_COLUMNS)}"
        )
    if not isinstance(frame["ds"].dtype, pd.DatetimeTZDtype):
        raise FrameError(
            f"{who}: column 'ds' must be timezone-aware UTC timestamps, got {frame['ds'].dtype}; "
            "use pd.to_datetime(..., utc=True)"
        )
    ids = frame["unique_id"]
    first = ids.iloc[0] if len(ids) else None
    if isinstance(first, str) and first == ids.iloc[-1] and ids.nunique(dropna=False) == 1:
        # one series, as the tick passes them (thousands of calls a tick): no factorize
        codes, names = np.zeros(len(ids), dtype=np.intp), np.array([first], dtype=object)
    else:
        # integer codes (sorted like the ids) make the sort and the split cheap on 10^6 rows
        codes, names = pd.factorize(ids.astype(str), sort=True)
    ds = pd.DatetimeIndex(frame["ds"]).tz_convert("UTC").as_unit("ns").asi8
    try:
        y = frame["y"].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise FrameError(f"{who}: column 'y' must be numeric ({exc})") from exc
    keep = np.isfinite(y)
    codes, ds, y = codes[keep], ds[keep], y[keep]
    if codes.size == 0:
        return []
    order = np.lexsort((ds, codes))
    codes, ds, y = codes[order], ds[order], y[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    bounds = np.r_[starts, codes.size]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        d = ds[a:b]
        if d.size > 1 and np.any(d[1:] == d[:-1]):
            raise FrameError(
                f"{who}: series '{names[codes[a]]}' has duplicate timestamps; the frame must be "
                "unique per (unique_id, ds)"
            )
        out.append(Series(str(names[codes[a]]), d, y[a:b]))
    return out


def median_step_ns(ds_ns: np.ndarray) -> int:
    """Median positive gap of sorted int64 ns timestamps (0 when there is none)."""
    gaps = np.diff(ds_ns)
    gaps = gaps[gaps > 0]
    return int(np.median(gaps)) if gaps.size else 0


def grid_positions(ds_ns: np.ndarray, anchor_ns: int, step_ns: int) -> np.ndarray:
    """Index of each timestamp on the grid ``anchor + k * step`` (off-grid points snap)."""
    return np.rint((ds_ns - anchor_ns) / step_ns).astype(np.int64)


def on_grid(ds_ns: np.ndarray, y: np.ndarray, step_ns: int) -> np.ndarray:
    """Values on the regular grid from the first to the last timestamp, NaN where missing.

    When two points snap to the same grid slot, the later one wins.
    """
    pos = grid_positions(ds_ns, int(ds_ns[0]), step_ns)
    values = np.full(int(pos[-1]) + 1, np.nan)
    values[pos] = y
    return values


def to_utc(ns: np.ndarray) -> pd.DatetimeIndex:
    """int64 nanoseconds → ``datetime64[ns, UTC]``."""
    return pd.DatetimeIndex(np.asarray(ns, dtype="datetime64[ns]")).tz_localize("UTC")


def forecast_frame(
    parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    horizon: int,
    model: str,
    level: float,
) -> pd.DataFrame:
    """The forecast frame from per-series ``(unique_id, ds_ns, yhat, lower, upper)`` arrays."""
    rows = horizon * len(parts)
    # the string columns are built as str arrays: a DataFrame.astype afterwards copied every
    # column and was most of a one-series forecast's cost (1,000 of them a tick)
    return pd.DataFrame(
        {
            "unique_id": pd.array(np.repeat([p[0] for p in parts], horizon), dtype=str),
            "ds": to_utc(np.concatenate([p[1] for p in parts])),
            "yhat": np.concatenate([p[2] for p in parts]),
            "yhat_lower": np.concatenate([p[3] for p in parts]),
            "yhat_upper": np.concatenate([p[4] for p in parts]),
            "model": pd.array(np.full(rows, model, dtype=object), dtype=str),
            "level": np.full(rows, float(level)),
        }
    )


def anomaly_frame(parts: list[dict[str, Any]], detector: str) -> pd.DataFrame:
    """The anomaly frame (the columns of ``models.base.ANOMALY_COLUMNS``) of scored series.

    Each part is one series: ``unique_id`` (str), ``ds_ns`` (int64 ns), the float arrays ``y``,
    ``expected``, ``lower``, ``upper`` and ``score``, the bool array ``is_anomaly`` and ``kind``
    (kind names, None where no anomaly). The frame is built once for all of them: a frame per
    series cost more than scoring the one new point a tick brings each.
    """
    sizes = [len(p["score"]) for p in parts]

    def cat(key: str, dtype: Any) -> np.ndarray:
        if not parts:
            return np.empty(0, dtype=dtype)
        return np.concatenate([np.asarray(p[key], dtype=dtype) for p in parts])

    ids = np.repeat(np.array([p["unique_id"] for p in parts], dtype=object), sizes)
    return pd.DataFrame(
        {
            "unique_id": pd.array(ids, dtype=str),
            "ds": to_utc(cat("ds_ns", np.int64)),
            "y": cat("y", float),
            "expected": cat("expected", float),
            "lower": cat("lower", float),
            "upper": cat("upper", float),
            "score": cat("score", float),
            "is_anomaly": cat("is_anomaly", bool),
            "kind": pd.Series(cat("kind", object), dtype=object),
            "detector": pd.array(np.full(sum(sizes), detector, dtype=object), dtype=str),
        }
    )
