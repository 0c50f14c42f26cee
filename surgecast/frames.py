"""The canonical series frame ``unique_id, ds, y`` and its one validation function.

Every boundary (collector output, file load, API input) calls :func:`validate_series`. It repairs
what is safe and says so (sorting, exact duplicates, timezone conversion, missing values) and
rejects what is not (missing columns, non-numeric values, conflicting duplicates) with a
:class:`~surgecast.errors.DataError` that names the column and rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from surgecast.errors import DataError

__all__ = ["SERIES_COLUMNS", "ValidatedSeries", "empty_series", "is_canonical", "validate_series"]

SERIES_COLUMNS = ("unique_id", "ds", "y")
_MAX_ROWS_IN_MESSAGE = 5


@dataclass
class ValidatedSeries:
    """A canonical frame plus the list of repairs made to reach it (empty when none)."""

    frame: pd.DataFrame
    repairs: list[str] = field(default_factory=list)


def empty_series() -> pd.DataFrame:
    """An empty canonical frame with the right dtypes."""
    return pd.DataFrame(
        {
            "unique_id": pd.Series([], dtype=object),
            "ds": pd.Series([], dtype="datetime64[ns, UTC]"),
            "y": pd.Series([], dtype=float),
        }
    )


def _rows(index: pd.Index) -> str:
    shown = ", ".join(str(i) for i in list(index[:_MAX_ROWS_IN_MESSAGE]))
    more = len(index) - _MAX_ROWS_IN_MESSAGE
    return shown + (f" (and {more} more)" if more > 0 else "")


def _to_utc(ds: pd.Series, source: str, repairs: list[str]) -> pd.Series:
    if isinstance(ds.dtype, pd.DatetimeTZDtype):
        if str(ds.dt.tz) != "UTC":
            repairs.append(f"{source}: converted ds from {ds.dt.tz} to UTC")
            ds = ds.dt.tz_convert("UTC")
        return ds.astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_any_dtype(ds):
        repairs.append(f"{source}: ds had no timezone; taken as UTC")
        return ds.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_numeric_dtype(ds):
        raise DataError(
            f"{source}: column 'ds' holds numbers, not timestamps; convert epoch values with "
            "pd.to_datetime(..., unit='s', utc=True) first"
        )
    parsed = pd.to_datetime(ds, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna() & ds.notna()
    if bad.any():
        raise DataError(
            f"{source}: column 'ds' has values that are not timestamps at rows {_rows(ds.index[bad])}"
            f" (first: {ds[bad].iloc[0]!r}); use ISO 8601 such as 2026-11-28T17:00:00Z"
        )
    if ds.isna().any():
        raise DataError(f"{source}: column 'ds' is empty at rows {_rows(ds.index[ds.isna()])}")
    return parsed.astype("datetime64[ns, UTC]")


def validate_series(frame: pd.DataFrame, *, source: str = "input") -> ValidatedSeries:
    """Return the canonical form of ``frame`` and the repairs made, or raise ``DataError``.

    Args:
        frame: a long frame with at least ``unique_id``, ``ds`` and ``y``.
        source: what the frame is (a file name, a collector), used in messages.

    Example:
        >>> import pandas as pd
        >>> raw = pd.DataFrame({"unique_id": ["a", "a"], "ds": ["2026-01-01T00:01Z",
        ...     "2026-01-01T00:00Z"], "y": [2, 1]})
        >>> validate_series(raw).frame["y"].tolist()
        [1.0, 2.0]
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in SERIES_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; a series frame needs columns "
            f"{list(SERIES_COLUMNS)} (long format, one row per series and timestamp)"
        )
    repairs: list[str] = []
    out = frame.loc[:, list(SERIES_COLUMNS)].copy()
    if len(out) == 0:
        return ValidatedSeries(empty_series(), repairs)
    out.index = pd.RangeIndex(len(out))

    uid_missing = out["unique_id"].isna() | (out["unique_id"].astype(str).str.strip() == "")
    if uid_missing.any():
        raise DataError(
            f"{source}: column 'unique_id' is empty at rows {_rows(out.index[uid_missing])}"
        )
    out["unique_id"] = out["unique_id"].astype(str)
    out["ds"] = _to_utc(out["ds"], source, repairs)

    y = pd.to_numeric(out["y"], errors="coerce")
    non_numeric = y.isna() & out["y"].notna()
    if non_numeric.any():
        # a textual "nan" is a missing value, not garbage (only text columns can hold it)
        text = out["y"][non_numeric].astype(str).str.strip().str.lower()
        non_numeric[non_numeric] = ~text.isin({"nan", "none", ""}).to_numpy()
    if non_numeric.any():
        first = out["y"][non_numeric].iloc[0]
        raise DataError(
            f"{source}: column 'y' has non-numeric values at rows {_rows(out.index[non_numeric])}"
            f" (first: {first!r}); y must be a number"
        )
    out["y"] = y.astype(float)
    not_finite = ~np.isfinite(out["y"].to_numpy())
    if not_finite.any():
        n_nan = int(out["y"].isna().sum())
        n_inf = int(not_finite.sum()) - n_nan
        parts = [f"{n} {what}" for n, what in ((n_nan, "missing (NaN)"), (n_inf, "infinite")) if n]
        repairs.append(
            f"{source}: dropped {' and '.join(parts)} value(s); they are not observations"
        )
        out = out[~not_finite]

    if not (out["unique_id"].is_monotonic_increasing and _sorted_within(out)):
        repairs.append(f"{source}: sorted rows by unique_id and ds")
        out = out.sort_values(["unique_id", "ds"], kind="stable")

    dup_key = out.duplicated(["unique_id", "ds"], keep=False)
    if dup_key.any():
        dups = out[dup_key]
        spread = dups.groupby(["unique_id", "ds"], sort=False)["y"].nunique()
        conflicting = spread[spread > 1]
        if len(conflicting):
            uid, ds = conflicting.index[0]
            values = dups[(dups["unique_id"] == uid) & (dups["ds"] == ds)]["y"].tolist()
            raise DataError(
                f"{source}: {len(conflicting)} (unique_id, ds) pair(s) have conflicting values, "
                f"first {uid!r} at {ds.isoformat()}: {values}; keep one value per timestamp"
            )
        before = len(out)
        out = out.drop_duplicates(["unique_id", "ds"], keep="first")
        repairs.append(f"{source}: dropped {before - len(out)} exact duplicate row(s)")

    return ValidatedSeries(out.reset_index(drop=True), repairs)


def is_canonical(frame: pd.DataFrame, unique_id: str) -> bool:
    """Whether :func:`validate_series` would find nothing to repair or reject in ``frame``, one
    series' points: ``unique_id`` on every row, UTC timestamps strictly increasing, finite
    floats. A few array checks, where a validation costs ~2 ms whatever the frame's size; a
    caller with many small canonical frames can validate them together in one call.
    """
    if any(c not in frame for c in SERIES_COLUMNS):
        return False
    ds, y = frame["ds"], frame["y"]
    if not (isinstance(ds.dtype, pd.DatetimeTZDtype) and str(ds.dtype.tz) == "UTC"):
        return False
    if y.dtype.kind != "f":
        return False
    return bool(
        np.isfinite(y.to_numpy()).all()
        and (frame["unique_id"].to_numpy() == unique_id).all()
        and (np.diff(ds.array.asi8) > 0).all()
    )


def _sorted_within(frame: pd.DataFrame) -> bool:
    ds = frame["ds"].to_numpy()
    ids = frame["unique_id"].to_numpy()
    same = ids[1:] == ids[:-1]
    return bool(np.all(~same | (ds[1:] >= ds[:-1])))
