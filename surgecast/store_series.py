"""Series-shaped tables of the store: observed points, forecasts and anomalies."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from surgecast.errors import DataError
from surgecast.frames import validate_series
from surgecast.store_base import (
    StoreBase,
    check_limit,
    float_column,
    reject_duplicates,
    require_columns,
    text_column,
    to_frame,
    where_range,
)
from surgecast.store_codec import TimestampLike, series_to_ns, to_ns
from surgecast.store_schema import anomalies, forecasts, points

__all__ = ["ANOMALY_COLUMNS", "FORECAST_COLUMNS", "SeriesStore"]

log = logging.getLogger(__name__)

FORECAST_COLUMNS = ("unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model", "level")
ANOMALY_COLUMNS = (
    "unique_id",
    "ds",
    "y",
    "expected",
    "lower",
    "upper",
    "score",
    "is_anomaly",
    "kind",
    "detector",
)
_POINTS_SPEC = {"unique_id": "str", "ds": "time", "y": "float"}
_FORECAST_SPEC = {
    "unique_id": "str",
    "ds": "time",
    "yhat": "float",
    "yhat_lower": "float",
    "yhat_upper": "float",
    "model": "str",
    "level": "float",
    "created_at": "time",
}
ANOMALY_SPEC = {  # the columns (and types) of an anomalies frame

    "unique_id": "str",
    "ds": "time",
    "y": "float",
    "expected": "float",
    "lower": "float",
    "upper": "float",
    "score": "float",
    "is_anomaly": "bool",
    "kind": "object",
    "detector": "str",
}


class SeriesStore(StoreBase):
    """Points, forecasts and anomalies; see :class:`surgecast.store.Store` for the whole API."""

    # -- points ------------------------------------------------------------------------------
    def upsert_points(self, frame: pd.DataFrame) -> int:
        """Insert or update observations; re-ingesting the same window changes nothing.

        Args:
            frame: a canonical series frame ``unique_id, ds, y`` (validated and repaired here
                with :func:`surgecast.frames.validate_series`).

        Returns:
            The number of rows inserted or whose ``y`` changed: 0 when the same data is ingested
            again, so the count is also a cheap "anything new?" signal.

        Raises:
            DataError: the frame breaks the series contract.
            StoreError: the database failed.
        """
        canonical = _canonical(frame)
        if canonical.empty:
            return 0
        # plain Python scalars: drivers bind them without per-value conversion hooks
        uids = canonical["unique_id"].tolist()
        ds = series_to_ns(canonical["ds"], source="upsert_points").tolist()
        ys = canonical["y"].tolist()
        stmt = self._bulk_insert(points, ["unique_id", "ds", "y"])
        stmt = stmt.on_conflict_do_update(
            index_elements=[points.c.unique_id, points.c.ds],
            set_={"y": stmt.excluded.y},
            # skip identical rows: no write amplification and the rowcount means "changed"
            where=points.c.y.is_distinct_from(stmt.excluded.y),
        )
        return self._bulk(stmt, {"unique_id": uids, "ds": ds, "y": ys}, "upsert points")

    def read_points(
        self,
        unique_ids: str | Sequence[str] | None = None,
        start: TimestampLike | None = None,
        end: TimestampLike | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Read observations with ``start <= ds < end`` as a canonical frame.

        Args:
            unique_ids: one series, several, or ``None`` for all.
            start: inclusive lower bound (``None``: open). Naive values are taken as UTC.
            end: exclusive upper bound (``None``: open).
            limit: keep only the first ``limit`` rows of the sorted result.

        Returns:
            Columns ``unique_id, ds, y``, ``ds`` as ``datetime64[ns, UTC]``, sorted by
            ``unique_id, ds``.

        Example:
            >>> store.read_points("api:rps", start="2026-01-01T00:00Z")  # doctest: +SKIP
        """
        stmt = select(points.c.unique_id, points.c.ds, points.c.y)
        if unique_ids is not None:
            ids = [unique_ids] if isinstance(unique_ids, str) else [str(u) for u in unique_ids]
            stmt = stmt.where(points.c.unique_id.in_(ids))
        stmt = where_range(stmt, points.c.ds, start, end)
        stmt = stmt.order_by(points.c.unique_id, points.c.ds).limit(check_limit(limit))
        rows = self._fetch(stmt, "read points")
        return to_frame(rows, _POINTS_SPEC)

    def watermarks(self) -> dict[str, pd.Timestamp]:
        """The newest stored ``ds`` per series: where the next collection should resume."""
        stmt = select(points.c.unique_id, func.max(points.c.ds)).group_by(points.c.unique_id)
        rows = self._fetch(stmt, "read watermarks")
        return {uid: pd.Timestamp(newest, unit="ns", tz="UTC") for uid, newest in rows}

    def series_summary(self) -> pd.DataFrame:
        """One row per series: ``unique_id, first_ds, last_ds, n_points``, sorted by unique_id."""
        stmt = (
            select(points.c.unique_id, func.min(points.c.ds), func.max(points.c.ds), func.count())
            .group_by(points.c.unique_id)
            .order_by(points.c.unique_id)
        )
        rows = self._fetch(stmt, "summarise series")
        spec = {"unique_id": "str", "first_ds": "time", "last_ds": "time", "n_points": "int"}
        return to_frame(rows, spec)

    # -- forecasts ---------------------------------------------------------------------------
    def save_forecast(self, frame: pd.DataFrame, created_at: TimestampLike) -> int:
        """Store a forecast; per ``(unique_id, ds)`` the newest ``created_at`` wins.

        Args:
            frame: ``unique_id, ds, yhat, yhat_lower, yhat_upper, model`` and optionally ``level``
                (the interval level, e.g. 0.9). NaN bounds are stored as NULL.
            created_at: when the forecast was made. Saving an older forecast over a newer one
                leaves the newer one in place; an equal ``created_at`` replaces (a re-run).

        Returns:
            The number of rows inserted or replaced.
        """
        source = "save_forecast"
        require_columns(frame, FORECAST_COLUMNS[:-1], source=source)
        created_ns = to_ns(created_at, field="created_at")
        if frame.empty:
            return 0
        ds = series_to_ns(frame["ds"], source=source)
        keys = pd.DataFrame({"unique_id": frame["unique_id"].to_numpy(), "ds": ds})
        reject_duplicates(keys, ["unique_id", "ds"], source=source)
        level = (
            float_column(frame, "level", source=source)
            if "level" in frame.columns
            else [None] * len(frame)
        )
        columns: dict[str, list[Any]] = {
            "unique_id": text_column(frame, "unique_id", source=source),
            "ds": ds.tolist(),
            "yhat": float_column(frame, "yhat", source=source),
            "yhat_lower": float_column(frame, "yhat_lower", source=source),
            "yhat_upper": float_column(frame, "yhat_upper", source=source),
            "model": text_column(frame, "model", source=source),
            "level": level,
        }
        columns["created_at"] = [created_ns] * len(frame)
        stmt = self._bulk_insert(forecasts, list(columns))
        updated = {c: stmt.excluded[c] for c in (*FORECAST_COLUMNS[2:], "created_at")}
        stmt = stmt.on_conflict_do_update(
            index_elements=[forecasts.c.unique_id, forecasts.c.ds],
            set_=updated,
            where=forecasts.c.created_at <= stmt.excluded.created_at,
        )
        return self._bulk(stmt, columns, "save the forecast")

    def read_forecast(
        self, unique_id: str, start: TimestampLike | None = None, end: TimestampLike | None = None
    ) -> pd.DataFrame:
        """The stored forecast of one series with ``start <= ds < end``, sorted by ``ds``.

        Returns:
            Columns ``unique_id, ds, yhat, yhat_lower, yhat_upper, model, level, created_at``;
            empty for an unknown series.
        """
        stmt = select(*(forecasts.c[c] for c in _FORECAST_SPEC)).where(
            forecasts.c.unique_id == unique_id
        )
        stmt = where_range(stmt, forecasts.c.ds, start, end).order_by(forecasts.c.ds)
        rows = self._fetch(stmt, "read the forecast")
        return to_frame(rows, _FORECAST_SPEC)

    # -- anomalies ---------------------------------------------------------------------------
    def save_anomalies(self, frame: pd.DataFrame) -> int:
        """Store detector output; a later save of ``(unique_id, ds, detector)`` replaces it.

        Args:
            frame: ``unique_id, ds, y, expected, lower, upper, score, is_anomaly, detector`` and
                optionally ``kind`` (spike, drop, level_shift, ratio, absent, or missing).
                Normal points may be saved too (``is_anomaly`` False) to keep the scores.

        Returns:
            The number of rows inserted or replaced.
        """
        source = "save_anomalies"
        required = [c for c in ANOMALY_COLUMNS if c != "kind"]
        require_columns(frame, required, source=source)
        if frame.empty:
            return 0
        ds = series_to_ns(frame["ds"], source=source)
        keys = pd.DataFrame(
            {
                "unique_id": frame["unique_id"].to_numpy(),
                "ds": ds,
                "detector": frame["detector"].to_numpy(),
            }
        )
        reject_duplicates(keys, ["unique_id", "ds", "detector"], source=source)
        flags = frame["is_anomaly"]
        if flags.isna().any() or not flags.isin([True, False]).all():
            raise DataError(f"{source}: column 'is_anomaly' must hold only True or False")
        columns: dict[str, list[Any]] = {
            "unique_id": text_column(frame, "unique_id", source=source),
            "ds": ds.tolist(),
            **{
                c: float_column(frame, c, source=source)
                for c in ("y", "expected", "lower", "upper", "score")
            },
            "is_anomaly": [bool(f) for f in flags.tolist()],
            "kind": (
                text_column(frame, "kind", source=source, nullable=True)
                if "kind" in frame.columns
                else [None] * len(frame)
            ),
            "detector": text_column(frame, "detector", source=source),
        }
        stmt = self._bulk_insert(anomalies, list(columns))
        stmt = stmt.on_conflict_do_update(
            index_elements=[anomalies.c.unique_id, anomalies.c.ds, anomalies.c.detector],
            set_={
                c: stmt.excluded[c]
                for c in ("y", "expected", "lower", "upper", "score", "is_anomaly", "kind")
            },
        )
        return self._bulk(stmt, columns, "save anomalies")

    def read_anomalies(
        self,
        unique_id: str | None = None,
        start: TimestampLike | None = None,
        end: TimestampLike | None = None,
        only_anomalies: bool = True,
        limit: int = 1000,
    ) -> pd.DataFrame:
        """Stored anomaly rows with ``start <= ds < end``: the newest ``limit``, oldest first.

        Args:
            unique_id: one series, or ``None`` for all.
            start: inclusive lower bound on ``ds``.
            end: exclusive upper bound on ``ds``.
            only_anomalies: drop rows the detector scored as normal.
            limit: at most this many rows, keeping the most recent (an incident view wants the
                latest, not the first thousand of last year).

        Returns:
            The anomaly frame columns, sorted by ``ds, unique_id, detector``; ``kind`` is
            ``None`` where the detector gave none.
        """
        cols = [anomalies.c[c] for c in ANOMALY_COLUMNS]
        stmt = select(*cols)
        if unique_id is not None:
            stmt = stmt.where(anomalies.c.unique_id == unique_id)
        if only_anomalies:
            stmt = stmt.where(anomalies.c.is_anomaly.is_(True))
        stmt = where_range(stmt, anomalies.c.ds, start, end)
        order = (anomalies.c.ds, anomalies.c.unique_id, anomalies.c.detector)
        stmt = stmt.order_by(*(c.desc() for c in order)).limit(check_limit(limit))
        rows = self._fetch(stmt, "read anomalies")
        return to_frame(rows[::-1], ANOMALY_SPEC)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as a canonical series frame, validating only when it is not one already.

    Frames normally arrive validated by the collector; ``validate_series`` costs seconds on 600k
    rows, so a vectorised check that already-canonical input passes in milliseconds comes first.
    """
    if _is_canonical(frame):
        return frame
    checked = validate_series(frame, source="upsert_points")
    for repair in checked.repairs:
        log.debug("upsert_points repaired its input: %s", repair)
    return checked.frame


def _is_canonical(frame: Any) -> bool:
    """True if ``frame`` is sorted, unique, UTC, finite, with non-empty string ids."""
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        return False
    try:
        uid, ds, y = frame["unique_id"], frame["ds"], frame["y"]
    except KeyError:
        return False
    if not (
        pd.api.types.is_string_dtype(uid)
        and not uid.dtype == object
        and isinstance(ds.dtype, pd.DatetimeTZDtype)
        and str(ds.dt.tz) == "UTC"
        and y.dtype == np.float64
        and bool(np.isfinite(y.to_numpy()).all())
        and not uid.isna().any()
        and bool((uid.str.strip().str.len() > 0).all())
        and uid.is_monotonic_increasing
    ):
        return False
    codes, _ = pd.factorize(uid)
    stamps = ds.dt.as_unit("ns").astype("int64").to_numpy()
    same = codes[1:] == codes[:-1]
    # strictly increasing within a series: sorted and free of duplicates in one pass
    return bool(np.all(~same | (stamps[1:] > stamps[:-1])))
